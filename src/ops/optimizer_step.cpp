#include "ops/optimizer_step.h"

namespace mlpx::ops::detail {

void check_optimizer_step(std::string_view op, const OptimizerStep& step, size_t state_buffers) {
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
  check_tensor(op, "step_counter", step.step_counter, {2}, DType::kInt32, step.params.device());
  if (step.skip.defined()) {
    MLPX_CHECK(step.skip.dtype() == DType::kInt32 && step.skip.numel() >= 1 &&
                   step.skip.device() == step.params.device(),
               ShapeError, op, ": expected an int32 skip flag on ", step.params.device().str(),
               ", found ", step.skip.describe());
  }
}

}  // namespace mlpx::ops::detail
