// The skip decision of train.on_nonfinite "skip", made on the device without a host
// synchronisation. Internal (the trainer's step plumbing).
#pragma once

#include "mlpx/tensor.h"

namespace mlpx {

// flag[0] = 1 when loss[0] or any element of grads is NaN or Inf, else 0; flag[2] += flag[0]
// counts the skipped steps; flag[1] and flag[3] are scratch (0 between calls). loss: [1];
// grads: flat [N], loss's dtype; flag: int32 [4], zeroed once; one device.
void flag_nonfinite(const Tensor& loss, const Tensor& grads, Tensor& flag);

}  // namespace mlpx
