#include "mlpx/optimizer.h"

#include <climits>
#include <cmath>

#include "cpu/adagrad.h"
#include "cpu/adam.h"
#include "cpu/rmsprop.h"
#include "cpu/sgd.h"
#include "memory.h"
#include "mlpx/error.h"
#if MLPX_WITH_CUDA
#include "cuda/runtime.h"
#include "kernels/adagrad.h"
#include "kernels/adam.h"
#include "kernels/nonfinite.h"
#include "kernels/rmsprop.h"
#include "kernels/sgd.h"
#endif

namespace mlpx {

namespace {
struct OptimizerName {
  OptimizerType type;
  const char* name;
};
constexpr OptimizerName kOptimizerNames[] = {
    {OptimizerType::kSgd, "sgd"},         {OptimizerType::kAdagrad, "adagrad"},
    {OptimizerType::kRmsprop, "rmsprop"}, {OptimizerType::kAdam, "adam"},
    {OptimizerType::kAdamW, "adamw"},
};

// The state buffers of each optimizer, named as torch.optim names them.
std::vector<std::string> state_names(const OptimizerConfig& config) {
  switch (config.type) {
    case OptimizerType::kSgd:
      return config.momentum > 0 ? std::vector<std::string>{"momentum_buffer"}
                                 : std::vector<std::string>{};
    case OptimizerType::kAdagrad:
      return {"sum"};
    case OptimizerType::kRmsprop:
      return {"square_avg"};
    case OptimizerType::kAdam:
    case OptimizerType::kAdamW:
      return {"exp_avg", "exp_avg_sq"};
  }
  return {};
}

math::SgdHyper sgd_hyper(const OptimizerConfig& c, double lr) {
  return {lr, c.momentum, c.weight_decay, c.nesterov};
}
math::AdagradHyper adagrad_hyper(const OptimizerConfig& c, double lr) {
  return {lr, c.effective_eps(), c.weight_decay};
}
math::RmspropHyper rmsprop_hyper(const OptimizerConfig& c, double lr) {
  return {lr, c.alpha, c.effective_eps(), c.weight_decay};
}
math::AdamHyper adam_hyper(const OptimizerConfig& c, double lr) {
  return {lr, c.beta1, c.beta2, c.effective_eps(), c.weight_decay, c.type == OptimizerType::kAdamW};
}

template <typename T>
void cpu_step(const OptimizerConfig& config, int64_t n, T* p, const T* g,
              const std::vector<std::pair<std::string, Tensor>>& state, double lr, int64_t t) {
  auto buffer = [&](size_t i) { return state[i].second.data<T>(); };
  switch (config.type) {
    case OptimizerType::kSgd:
      cpu::sgd_step<T>(n, p, g, state.empty() ? nullptr : buffer(0), sgd_hyper(config, lr));
      return;
    case OptimizerType::kAdagrad:
      cpu::adagrad_step<T>(n, p, g, buffer(0), adagrad_hyper(config, lr));
      return;
    case OptimizerType::kRmsprop:
      cpu::rmsprop_step<T>(n, p, g, buffer(0), rmsprop_hyper(config, lr));
      return;
    case OptimizerType::kAdam:
    case OptimizerType::kAdamW:
      cpu::adam_step<T>(n, p, g, buffer(0), buffer(1), adam_hyper(config, lr), t);
      return;
  }
}

#if MLPX_WITH_CUDA
void cuda_step(const OptimizerConfig& config, int64_t n, float* p, const float* g,
               const std::vector<std::pair<std::string, Tensor>>& state, double lr,
               int32_t* step_counter, const int32_t* skip, cudaStream_t stream) {
  auto buffer = [&](size_t i) { return state[i].second.data<float>(); };
  switch (config.type) {
    case OptimizerType::kSgd:
      cuda::sgd_step(n, p, g, state.empty() ? nullptr : buffer(0), sgd_hyper(config, lr),
                     step_counter, skip, stream);
      return;
    case OptimizerType::kAdagrad:
      cuda::adagrad_step(n, p, g, buffer(0), adagrad_hyper(config, lr), step_counter, skip, stream);
      return;
    case OptimizerType::kRmsprop:
      cuda::rmsprop_step(n, p, g, buffer(0), rmsprop_hyper(config, lr), step_counter, skip, stream);
      return;
    case OptimizerType::kAdam:
    case OptimizerType::kAdamW:
      cuda::adam_step(n, p, g, buffer(0), buffer(1), adam_hyper(config, lr), step_counter, skip,
                      stream);
      return;
  }
}
#endif
}  // namespace

OptimizerType parse_optimizer(const std::string& name) {
  for (const auto& entry : kOptimizerNames) {
    if (name == entry.name) return entry.type;
  }
  throw ValueError("optimizer: expected one of sgd, adagrad, rmsprop, adam, adamw; found '" + name +
                   "'");
}

std::string optimizer_name(OptimizerType type) {
  for (const auto& entry : kOptimizerNames) {
    if (type == entry.type) return entry.name;
  }
  return "?";
}

double OptimizerConfig::effective_eps() const {
  if (eps) return *eps;
  return type == OptimizerType::kAdagrad ? 1e-10 : 1e-8;
}

void OptimizerConfig::validate() const {
  const std::string name = optimizer_name(type);
  MLPX_CHECK(std::isfinite(lr) && lr >= 0, ValueError,
             "optimizer lr: expected a finite value >= 0, found ", lr);
  MLPX_CHECK(beta1 >= 0 && beta1 < 1, ValueError,
             "optimizer beta1: expected a value in [0, 1), found ", beta1);
  MLPX_CHECK(beta2 >= 0 && beta2 < 1, ValueError,
             "optimizer beta2: expected a value in [0, 1), found ", beta2);
  const double e = effective_eps();
  MLPX_CHECK(std::isfinite(e) && e > 0, ValueError,
             "optimizer eps: expected a finite value > 0, found ", e);
  MLPX_CHECK(alpha >= 0 && alpha < 1, ValueError,
             "optimizer alpha: expected a value in [0, 1), found ", alpha);
  MLPX_CHECK(std::isfinite(momentum) && momentum >= 0, ValueError,
             "optimizer momentum: expected a finite value >= 0, found ", momentum);
  MLPX_CHECK(type == OptimizerType::kSgd || momentum == 0, ValueError,
             "optimizer momentum: expected 0 for ", name, " (momentum applies to sgd), found ",
             momentum);
  MLPX_CHECK(!nesterov || type == OptimizerType::kSgd, ValueError,
             "optimizer nesterov: expected false for ", name,
             " (nesterov applies to sgd), found true");
  MLPX_CHECK(!nesterov || momentum > 0, ValueError,
             "optimizer nesterov: expected momentum > 0 with nesterov, found momentum ", momentum);
  MLPX_CHECK(std::isfinite(weight_decay) && weight_decay >= 0, ValueError,
             "optimizer weight_decay: expected a finite value >= 0, found ", weight_decay);
}

Optimizer::Optimizer(const OptimizerConfig& config, int64_t num_params, DType dtype, Device device)
    : config_(config), num_params_(num_params), dtype_(dtype) {
  config_.validate();
  MLPX_CHECK(num_params >= 0, ShapeError, "optimizer: expected num_params >= 0, found ",
             num_params);
  MLPX_CHECK(dtype == DType::kFloat32 || (dtype == DType::kFloat64 && device.is_cpu()), ShapeError,
             "optimizer on ", device.str(), ": expected float32",
             device.is_cpu() ? " or float64" : "", ", found ", dtype_name(dtype));
  for (const std::string& name : state_names(config_)) {
    state_.emplace_back(name, Tensor::zeros({num_params}, dtype, device));
  }
  step_counter_ = Tensor::zeros({2}, DType::kInt32, device);
}

void Optimizer::step(Tensor& params, const Tensor& grads, double lr, const Tensor* skip) {
  const Device device = step_counter_.device();
  const DType dtype = dtype_;
  MLPX_CHECK(params.defined() && params.numel() == num_params_ && grads.defined() &&
                 grads.numel() == num_params_,
             ShapeError, "optimizer step: expected params and grads of ", num_params_,
             " elements, found params ", params.describe(), " and grads ", grads.describe());
  MLPX_CHECK(params.device() == device && grads.device() == device && params.dtype() == dtype &&
                 grads.dtype() == dtype,
             ShapeError, "optimizer step: expected params and grads in ", dtype_name(dtype), " on ",
             device.str(), ", found params ", params.describe(), " and grads ", grads.describe());
  MLPX_CHECK(std::isfinite(lr) && lr >= 0, ValueError,
             "optimizer step lr: expected a finite value >= 0, found ", lr);
  MLPX_CHECK(steps_ < INT32_MAX, ValueError, "optimizer step: the step counter would pass ",
             INT32_MAX);
  if (skip != nullptr) {
    MLPX_CHECK(skip->defined() && skip->dtype() == DType::kInt32 && skip->numel() >= 1 &&
                   skip->device() == device,
               ShapeError, "optimizer step: expected an int32 skip flag on ", device.str(),
               ", found ", skip->describe());
    // The CPU reads the flag here; the GPU kernel reads it when it runs.
    if (device.is_cpu() && skip->data<int32_t>()[0] != 0) return;
  }
  const int64_t t = steps_ + 1;
  if (device.is_cuda()) {
#if MLPX_WITH_CUDA
    MLPX_CHECK(dtype == DType::kFloat32, ShapeError, "optimizer step on ", device.str(),
               ": expected float32, found ", dtype_name(dtype));
    cuda_step(config_, num_params_, params.data<float>(), grads.data<float>(), state_, lr,
              step_counter_.data<int32_t>(), skip ? skip->data<int32_t>() : nullptr,
              cuda::stream_of(device));
#else
    detail::fail_without_cuda("optimizer step");
#endif
  } else if (dtype == DType::kFloat64) {
    cpu_step<double>(config_, num_params_, params.data<double>(), grads.data<double>(), state_, lr,
                     t);
  } else {
    cpu_step<float>(config_, num_params_, params.data<float>(), grads.data<float>(), state_, lr, t);
  }
  steps_ = t;
  if (device.is_cpu()) step_counter_.data<int32_t>()[0] = static_cast<int32_t>(steps_);
}

void Optimizer::sync_steps() { steps_ = step_counter_.to(Device::cpu()).data<int32_t>()[0]; }

std::vector<std::pair<std::string, Tensor>> Optimizer::state() const { return state_; }

void flag_nonfinite(const Tensor& loss, const Tensor& grads, Tensor& flag) {
  MLPX_CHECK(loss.defined() && grads.defined() && flag.defined(), ShapeError,
             "flag_nonfinite: expected loss, grads and flag, found an undefined tensor");
  const Device device = flag.device();
  MLPX_CHECK(loss.numel() == 1 && grads.dim() == 1 && loss.dtype() == grads.dtype() &&
                 (loss.dtype() == DType::kFloat32 || loss.dtype() == DType::kFloat64) &&
                 flag.dtype() == DType::kInt32 && flag.numel() == 4 && loss.device() == device &&
                 grads.device() == device,
             ShapeError,
             "flag_nonfinite: expected loss [1] and grads [N] of one float dtype and flag int32 "
             "[4] on one device, found loss ",
             loss.describe(), ", grads ", grads.describe(), ", flag ", flag.describe());
  if (device.is_cuda()) {
#if MLPX_WITH_CUDA
    MLPX_CHECK(loss.dtype() == DType::kFloat32, ShapeError, "flag_nonfinite on ", device.str(),
               ": expected float32, found ", dtype_name(loss.dtype()));
    cuda::flag_nonfinite(loss.data<float>(), grads.data<float>(), grads.numel(),
                         flag.data<int32_t>(), cuda::stream_of(device));
    return;
#else
    detail::fail_without_cuda("flag_nonfinite");
#endif
  }
  auto any_nonfinite = [](const auto* v, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(v[i])) return true;
    }
    return false;
  };
  const int64_t n = grads.numel();
  const bool bad =
      loss.dtype() == DType::kFloat64
          ? any_nonfinite(loss.data<double>(), 1) || any_nonfinite(grads.data<double>(), n)
          : any_nonfinite(loss.data<float>(), 1) || any_nonfinite(grads.data<float>(), n);
  int32_t* f = flag.data<int32_t>();
  f[0] = bad ? 1 : 0;
  f[2] += f[0];
}

void Optimizer::load_state(int64_t steps,
                           const std::vector<std::pair<std::string, Tensor>>& state) {
  MLPX_CHECK(steps >= 0 && steps <= INT32_MAX, ValueError,
             "optimizer load_state: expected a step count in [0, ", INT32_MAX, "], found ", steps);
  std::string expected;
  for (const auto& [name, buffer] : state_) expected += (expected.empty() ? "" : ", ") + name;
  MLPX_CHECK(state.size() == state_.size(), ShapeError, "optimizer load_state: expected ",
             state_.size(), " buffer(s) for ", optimizer_name(config_.type), " (", expected,
             "), found ", state.size());
  // Everything is checked before anything is copied: a bad checkpoint leaves the state as it was.
  std::vector<const Tensor*> sources(state_.size(), nullptr);
  for (const auto& [name, src] : state) {
    size_t i = 0;
    while (i < state_.size() && state_[i].first != name) ++i;
    MLPX_CHECK(i < state_.size(), ShapeError, "optimizer load_state: expected buffers named ",
               expected.empty() ? "(none)" : expected, ", found '", name, "'");
    MLPX_CHECK(sources[i] == nullptr, ShapeError, "optimizer load_state: buffer '", name,
               "' given twice");
    const Tensor& dst = state_[i].second;
    MLPX_CHECK(src.defined() && src.shape() == dst.shape() && src.dtype() == dst.dtype(),
               ShapeError, "optimizer load_state: expected '", name, "' as ",
               shape_str(dst.shape()), " ", dtype_name(dst.dtype()), ", found ", src.describe());
    sources[i] = &src;
  }
  for (size_t i = 0; i < state_.size(); ++i) state_[i].second.copy_from(*sources[i]);
  step_counter_.copy_from(
      Tensor::from_vector<int32_t>({static_cast<int32_t>(steps), 0}, {2}, Device::cpu()));
  steps_ = steps;
}

}  // namespace mlpx
