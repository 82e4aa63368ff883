// The Tensor-level ops over the flat gradient buffer that a training step runs between the
// backward pass and the optimizer: clip_grad_norm's global norm and scale, and gradient
// accumulation's sum. Internal.
#pragma once

#include "mlpx/tensor.h"

namespace mlpx::ops {

// grads: flat [n], float32 (or float64 on the CPU); scalars: the optimizer's float64 [2]
// (Optimizer::step_scalars()); norm_sum: float64 [1]; all on one device. Computes the L2 norm of
// grads where they lie (no host read on a GPU), writes scalars[1] = min(1, max_norm /
// (norm + 1e-6)) (torch.nn.utils.clip_grad_norm_'s factor, which the optimizer's next step
// multiplies every gradient by), and adds the norm to norm_sum[0].
// scratch: norm_scratch(device), the partial sums of the norm's first pass on a GPU (unused on
// the CPU); one per stream of concurrent norms.
void clip_scale(const Tensor& grads, double max_norm, Tensor& scalars, Tensor& norm_sum,
                Tensor& scratch);

// grads: flat [n], float32 (or float64 on the CPU); norm_sum: float64 [1] on grads' device. Adds
// the L2 norm of grads to norm_sum[0] where they lie (no host read): train.layer_grad_norms'
// per-layer record, by the same reduction as clip_scale's norm.
void add_norm(const Tensor& grads, Tensor& norm_sum, Tensor& scratch);

// The scratch a norm above needs on `device`: float64 [blocks of the first pass].
Tensor norm_scratch(Device device);

// sum += grads, elementwise; both flat [n] of one dtype and device.
void add_gradients(const Tensor& grads, Tensor& sum);

}  // namespace mlpx::ops
