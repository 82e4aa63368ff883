// Launcher of the skip connection's kernel (kernels/residual.cu). Internal.
#pragma once

#include <cstdint>

#include "mlpx/device.h"

namespace mlpx::cuda {

// out[i] = x[i] + y[i] for i < n, float32; out may be x or y.
void residual_add(const float* x, const float* y, float* out, int64_t n, Device device);

}  // namespace mlpx::cuda
