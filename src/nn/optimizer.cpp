#include "mlpx/optimizer.h"

#include <climits>
#include <cmath>

#include "core/names.h"
#include "math/optimizers.h"
#include "mlpx/error.h"
#include "ops/optimizer_outer_step.h"
#include "ops/optimizer_step.h"

namespace mlpx {

namespace {

// "sgd": the members of the table whose rule takes momentum (and nesterov), for messages.
std::string momentum_optimizers() {
  std::string names;
  for (OptimizerType type : math::kOptimizers) {
    math::visit(type, [&](auto member) {
      if (decltype(member)::kTakesMomentum)
        names += (names.empty() ? "" : ", ") + optimizer_name(type);
    });
  }
  return names;
}

// What step() and step_outer() take: the model's params, a finite rate, room on the counter.
void check_step(const Tensor& params, int64_t num_params, DType dtype, double lr, int64_t steps) {
  MLPX_CHECK(params.defined() && params.numel() == num_params && params.dtype() == dtype,
             ShapeError, "optimizer step: expected params of ", num_params, " ", dtype_name(dtype),
             " elements, found ", params.describe());
  MLPX_CHECK(std::isfinite(lr) && lr >= 0, ValueError,
             "optimizer step lr: expected a finite value >= 0, found ", lr);
  MLPX_CHECK(steps < INT32_MAX, ValueError, "optimizer step: the step counter would pass ",
             INT32_MAX);
}

}  // namespace

OptimizerType parse_optimizer(const std::string& name) {
  return detail::parse_enum(detail::kOptimizerNames, name, "optimizer");
}

std::string optimizer_name(OptimizerType type) {
  return detail::enum_name(detail::kOptimizerNames, type);
}

double OptimizerConfig::effective_eps() const {
  if (eps) return *eps;
  return math::visit(type, [](auto member) { return decltype(member)::kDefaultEps; });
}

void OptimizerConfig::validate() const {
  const std::string name = optimizer_name(type);
  MLPX_CHECK(std::isfinite(lr) && lr >= 0, ValueError,
             "optimizer.lr: expected a finite value >= 0, found ", lr);
  MLPX_CHECK(beta1 >= 0 && beta1 < 1, ValueError,
             "optimizer.beta1: expected a value in [0, 1), found ", beta1);
  MLPX_CHECK(beta2 >= 0 && beta2 < 1, ValueError,
             "optimizer.beta2: expected a value in [0, 1), found ", beta2);
  const double e = effective_eps();
  MLPX_CHECK(std::isfinite(e) && e > 0, ValueError,
             "optimizer.eps: expected a finite value > 0, found ", e);
  MLPX_CHECK(alpha >= 0 && alpha < 1, ValueError,
             "optimizer.alpha: expected a value in [0, 1), found ", alpha);
  MLPX_CHECK(std::isfinite(momentum) && momentum >= 0, ValueError,
             "optimizer.momentum: expected a finite value >= 0, found ", momentum);
  const bool takes_momentum =
      math::visit(type, [](auto member) { return decltype(member)::kTakesMomentum; });
  MLPX_CHECK(takes_momentum || momentum == 0, ValueError, "optimizer.momentum: expected 0 for ",
             name, " (momentum applies to ", momentum_optimizers(), "), found ", momentum);
  MLPX_CHECK(!nesterov || takes_momentum, ValueError, "optimizer.nesterov: expected false for ",
             name, " (nesterov applies to ", momentum_optimizers(), "), found true");
  MLPX_CHECK(!nesterov || momentum > 0, ValueError,
             "optimizer.nesterov: expected momentum > 0 with nesterov, found momentum ", momentum);
  MLPX_CHECK(std::isfinite(weight_decay) && weight_decay >= 0, ValueError,
             "optimizer.weight_decay: expected a finite value >= 0, found ", weight_decay);
}

Optimizer::Optimizer(const OptimizerConfig& config, int64_t num_params, DType dtype, Device device)
    : config_(config), num_params_(num_params), dtype_(dtype) {
  config_.validate();
  MLPX_CHECK(num_params >= 0, ShapeError, "optimizer: expected num_params >= 0, found ",
             num_params);
  MLPX_CHECK(dtype == DType::kFloat32 || (dtype == DType::kFloat64 && device.is_cpu()), ShapeError,
             "optimizer on ", device.str(), ": expected float32",
             device.is_cpu() ? " or float64" : "", ", found ", dtype_name(dtype));
  for (const std::string& name : ops::optimizer_state_names(config_)) {
    state_.emplace_back(name, Tensor::zeros({num_params}, dtype, device));
  }
  step_counter_ = Tensor::zeros({2}, DType::kInt32, device);
  scalars_ = Tensor::from_vector<double>({config_.lr, 1.0}, {2}).to(device);
  scalars_lr_ = config_.lr;
}

void Optimizer::set_one_cycle(const OneCyclePlan& plan) {
  MLPX_CHECK(
      plan.total_steps == 0 || !plan.cycle_momentum ||
          math::visit(config_.type, [](auto member) { return decltype(member)::kCyclesMomentum; }),
      ValueError, "schedule.cycle_momentum: expected false for ", optimizer_name(config_.type),
      " (onecycle cycles sgd's momentum or adam's beta1), found true");
  one_cycle_ = plan;
}

void Optimizer::set_decayed_ranges(const std::vector<std::pair<int64_t, int64_t>>& decayed) {
  if (decayed.empty()) {
    decays_ = Tensor();
    return;
  }
  Tensor mask = Tensor::zeros({num_params_}, dtype_);
  for (const auto& [begin, end] : decayed) {
    MLPX_CHECK(0 <= begin && begin <= end && end <= num_params_, ShapeError,
               "optimizer decayed range: expected [begin, end) within [0, ", num_params_,
               "), found [", begin, ", ", end, ")");
    for (int64_t i = begin; i < end; ++i) {
      if (dtype_ == DType::kFloat64) {
        mask.data<double>()[i] = 1.0;
      } else {
        mask.data<float>()[i] = 1.0f;
      }
    }
  }
  decays_ = mask.to(step_counter_.device());
}

void Optimizer::step(Tensor& params, const Tensor& grads, double lr, const Tensor* skip,
                     uint16_t* bf16_params) {
  check_step(params, num_params_, dtype_, lr, steps_);
  // The rate lives where the step runs; a new one is written there (on a GPU: a copy and a
  // wait), which a schedule does once per epoch, never inside a captured step.
  if (lr != scalars_lr_) {
    Tensor written = Tensor::from_vector<double>({lr}, {1}).to(scalars_.device());
    scalars_.rows(0, 1).copy_from(written);
    scalars_lr_ = lr;
  }
  ops::OptimizerStep step;
  step.params = params;
  step.grads = grads;
  step.step_counter = step_counter_;
  if (skip != nullptr) step.skip = *skip;
  step.scalars = scalars_;
  step.cycle = one_cycle_;
  step.decays = decays_;
  step.bf16_params = bf16_params;
  for (const auto& [name, buffer] : state_) step.state.push_back(buffer);
  ops::optimizer_step(config_, lr, step);
  // The CPU advanced the counter in host memory (or left it, for a skipped step); the GPU's
  // counter is read by sync_steps(), so until then steps() counts the launches.
  if (step_counter_.device().is_cpu()) {
    steps_ = step_counter_.data<int32_t>()[0];
  } else {
    ++steps_;
  }
}

void Optimizer::step_outer(Tensor& params, const Tensor& grads,
                           const std::vector<OuterProductGrad>& outer, double lr) {
  check_step(params, num_params_, dtype_, lr, steps_);
  ops::OptimizerStep step;
  step.params = params;
  step.grads = grads;
  step.step_counter = step_counter_;
  for (const auto& [name, buffer] : state_) step.state.push_back(buffer);
  ops::optimizer_outer_step(config_, lr, step, outer);
  steps_ = step_counter_.data<int32_t>()[0];
}

void Optimizer::sync_steps() { steps_ = step_counter_.to(Device::cpu()).data<int32_t>()[0]; }

std::vector<std::pair<std::string, Tensor>> Optimizer::state() const { return state_; }

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
