// Launcher of the non-finite check of train.on_nonfinite "skip" (kernels/nonfinite.cu).
// Internal.
#pragma once

#include <cstdint>

#include "mlpx/device.h"

namespace mlpx::cuda {
// flag[0] = (loss[0] or any of grads[0..n) is NaN or Inf); flag[2] += flag[0]; flag[1] and
// flag[3]: scratch, 0 between launches. One launch, integer atomics only, no host synchronisation.
void flag_nonfinite(const float* loss, const float* grads, int64_t n, int32_t* flag, Device device);
}  // namespace mlpx::cuda
