// Launchers of the bfloat16 rounding (kernels/bf16.cu; formula in mlpx/math/bf16.h). Internal.
#pragma once

#include <cstdint>

#include "mlpx/device.h"

namespace mlpx::cuda {

// out[i] = x[i] rounded to the nearest bfloat16, as a float32, over n elements on `device`'s
// stream. out may equal x.
void round_to_bf16(const float* x, float* out, int64_t n, Device device);

// bits[i] = the bfloat16 bits of x[i] rounded to nearest even: a bf16 GEMM's input.
void round_to_bf16_bits(const float* x, uint16_t* bits, int64_t n, Device device);

}  // namespace mlpx::cuda
