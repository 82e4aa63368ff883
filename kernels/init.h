// Launcher of the weight-initialisation kernel (kernels/init.cu). Internal.
#pragma once

#include <cstdint>

#include "math/init.h"
#include "mlpx/device.h"

namespace mlpx::cuda {
void init_values(float* out, int64_t n, Init init, double scale, uint64_t seed, uint64_t stream,
                 Device device);
}  // namespace mlpx::cuda
