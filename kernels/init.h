// Launcher of the weight-initialisation kernel (kernels/init.cu). Internal.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "mlpx/math/init.h"

namespace mlpx::cuda {
void init_values(float* out, int64_t n, Init init, double scale, uint64_t seed, uint64_t stream,
                 cudaStream_t cuda_stream);
}  // namespace mlpx::cuda
