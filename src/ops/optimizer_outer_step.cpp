#include "ops/optimizer_outer_step.h"

#include <string>

#include "core/check.h"
#include "cpu/optimizer_outer_step.h"
#include "mlpx/error.h"

namespace mlpx::ops {

namespace {

template <typename T>
void outer_step_on_cpu(const OptimizerConfig& config, double lr, const OptimizerStep& step,
                       const std::vector<OuterProductGrad>& outer) {
  std::vector<cpu::OuterProductBlock<T>> blocks;
  for (const OuterProductGrad& block : outer) {
    blocks.push_back({block.offset, block.row_factor.numel(), block.col_factor.numel(),
                      block.row_factor.data<T>(), block.col_factor.data<T>()});
  }
  std::vector<T*> state;
  for (const Tensor& buffer : step.state) state.push_back(buffer.data<T>());
  int32_t* counter = step.step_counter.data<int32_t>();
  cpu::optimizer_outer_step<T>(config.type, config, lr, step.params.numel(), step.params.data<T>(),
                               step.grads.data<T>(), state.data(),
                               static_cast<int64_t>(counter[0]) + 1, blocks);
  counter[0] += 1;
}

}  // namespace

void optimizer_outer_step(const OptimizerConfig& config, double lr, const OptimizerStep& step,
                          const std::vector<OuterProductGrad>& outer) {
  using ::mlpx::detail::check_tensor;
  const std::string op = optimizer_name(config.type) + " step (outer-product gradients)";
  ::mlpx::detail::check_float(op, "params", step.params);
  MLPX_CHECK(step.params.device().is_cpu(), ValueError, op, ": expected CPU tensors, found ",
             step.params.describe());
  MLPX_CHECK(step.params.dim() == 1, ShapeError, op, ": expected flat params [n], found ",
             step.params.describe());
  check_tensor(op, "grads (like params)", step.grads, step.params.shape(), step.params);
  MLPX_CHECK(step.state.size() == optimizer_state_names(config).size(), ShapeError, op,
             ": expected ", optimizer_state_names(config).size(), " state buffer(s), found ",
             step.state.size());
  for (const Tensor& buffer : step.state) {
    check_tensor(op, "state buffer (like params)", buffer, step.params.shape(), step.params);
  }
  check_tensor(op, "step_counter", step.step_counter, {2}, DType::kInt32, step.params.device());
  MLPX_CHECK(!step.skip.defined(), ValueError, op, ": expected no skip flag, found ",
             step.skip.describe());
  for (const OuterProductGrad& block : outer) {
    check_tensor(op, "row factor", block.row_factor, {block.row_factor.numel()}, step.params);
    check_tensor(op, "column factor", block.col_factor, {block.col_factor.numel()}, step.params);
  }
  if (step.params.dtype() == DType::kFloat64) {
    outer_step_on_cpu<double>(config, lr, step, outer);
  } else {
    outer_step_on_cpu<float>(config, lr, step, outer);
  }
}

}  // namespace mlpx::ops
