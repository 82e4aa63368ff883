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
void clip_scale(const Tensor& grads, double max_norm, Tensor& scalars, Tensor& norm_sum);

// sum += grads, elementwise; both flat [n] of one dtype and device.
void add_gradients(const Tensor& grads, Tensor& sum);

}  // namespace mlpx::ops
