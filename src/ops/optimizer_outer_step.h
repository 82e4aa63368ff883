// The Tensor-level optimizer step whose weight gradients are outer products (a batch of one
// row): cpu/optimizer_outer_step.h behind the checks and the step counter. CPU only: on a GPU
// the stored gradient's extra pass costs little beside the launches. Internal.
#pragma once

#include <vector>

#include "mlpx/optimizer.h"
#include "ops/optimizer_step.h"

namespace mlpx::ops {

// optimizer_step (ops/optimizer_step.h) with the gradient of each of `outer` formed from its
// factors (same dtype and device as step.params) instead of read from step.grads; step.skip
// must be undefined. ValueError for a tensor on a GPU; ShapeError for blocks that overlap or
// leave [0, n).
void optimizer_outer_step(const OptimizerConfig& config, double lr, const OptimizerStep& step,
                          const std::vector<OuterProductGrad>& outer);

}  // namespace mlpx::ops
