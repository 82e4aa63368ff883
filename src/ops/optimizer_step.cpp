#include "ops/optimizer_step.h"

#include <string>

#include "core/check.h"
#include "core/dispatch.h"
#include "cpu/optimizer_step.h"
#include "kernels/optimizer_step.h"
#include "math/optimizers.h"
#include "mlpx/error.h"

namespace mlpx::ops {

namespace {

void check_optimizer_step(const std::string& op, const OptimizerStep& step, size_t state_buffers) {
  using ::mlpx::detail::check_tensor;
  ::mlpx::detail::check_float(op, "params", step.params);
  MLPX_CHECK(step.params.dim() == 1, ShapeError, op, ": expected flat params [n], found ",
             step.params.describe());
  check_tensor(op, "grads (like params)", step.grads, step.params.shape(), step.params);
  MLPX_CHECK(step.state.size() == state_buffers, ShapeError, op, ": expected ", state_buffers,
             " state buffer(s), found ", step.state.size());
  for (const Tensor& buffer : step.state) {
    check_tensor(op, "state buffer (like params)", buffer, step.params.shape(), step.params);
  }
  MLPX_CHECK(step.bf16_params == nullptr || step.params.dtype() == DType::kFloat32, ValueError, op,
             ": expected a bf16 copy only beside float32 params, found ", step.params.describe());
  check_tensor(op, "step_counter", step.step_counter, {2}, DType::kInt32, step.params.device());
  if (step.scalars.defined()) {
    check_tensor(op, "scalars", step.scalars, {2}, DType::kFloat64, step.params.device());
  }
  if (step.decays.defined()) {
    check_tensor(op, "decays (like params)", step.decays, step.params.shape(), step.params);
  }
  if (step.skip.defined()) {
    MLPX_CHECK(step.skip.dtype() == DType::kInt32 && step.skip.numel() >= 1 &&
                   step.skip.device() == step.params.device(),
               ShapeError, op, ": expected an int32 skip flag on ", step.params.device().str(),
               ", found ", step.skip.describe());
  }
}

// Raw pointers of the state buffers in the dtype T.
template <typename T>
std::vector<T*> state_pointers(const OptimizerStep& step) {
  std::vector<T*> pointers;
  for (const Tensor& buffer : step.state) pointers.push_back(buffer.data<T>());
  return pointers;
}

}  // namespace

std::vector<std::string> optimizer_state_names(const OptimizerConfig& config) {
  return math::visit(config.type, [&](auto member) {
    using Member = decltype(member);
    const int buffers = Member::state_buffers(Member::hyper(config, config.lr));
    return std::vector<std::string>(std::begin(Member::kStateNames),
                                    std::begin(Member::kStateNames) + buffers);
  });
}

void optimizer_step(const OptimizerConfig& config, double lr, const OptimizerStep& step) {
  const std::string op = optimizer_name(config.type) + " step";
  check_optimizer_step(op, step, optimizer_state_names(config).size());
  const int64_t n = step.params.numel();
  ::mlpx::detail::dispatch(
      op, step.params,
      [&] {
        // The kernel reads the step counter, the skip flag and the scalars itself.
        const std::vector<float*> state = state_pointers<float>(step);
        cuda::optimizer_step(
            config.type, config, lr, n, step.params.data<float>(), step.grads.data<float>(),
            state.data(), step.step_counter.data<int32_t>(),
            step.skip.defined() ? step.skip.data<int32_t>() : nullptr,
            step.scalars.defined() ? step.scalars.data<double>() : nullptr, step.cycle,
            step.decays.defined() ? step.decays.data<float>() : nullptr, step.params.device(),
            step.bf16_params);
      },
      [&](auto zero) {
        using T = decltype(zero);
        if (step.skip.defined() && step.skip.data<int32_t>()[0] != 0) return;
        int32_t* counter = step.step_counter.data<int32_t>();
        const std::vector<T*> state = state_pointers<T>(step);
        const double* scalars = step.scalars.defined() ? step.scalars.data<double>() : nullptr;
        cpu::optimizer_step<T>(
            config.type, config, scalars != nullptr ? scalars[0] : lr, n, step.params.data<T>(),
            step.grads.data<T>(), state.data(), static_cast<int64_t>(counter[0]) + 1, step.cycle,
            static_cast<T>(scalars != nullptr ? scalars[1] : 1.0),
            step.decays.defined() ? step.decays.data<T>() : nullptr, step.bf16_params);
        counter[0] += 1;
      });
}

}  // namespace mlpx::ops
