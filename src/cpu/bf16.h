// CPU loops of the bfloat16 rounding (formula in mlpx/math/bf16.h). Internal.
#pragma once

#include <cstdint>

namespace mlpx::cpu {

// out[i] = x[i] rounded to the nearest bfloat16 (ties to even), as a float32. out may equal x.
void round_to_bf16(const float* x, float* out, int64_t n);

// bits[i] = the bfloat16 bits of x[i] rounded to nearest even (the input of a bf16 GEMM).
void round_to_bf16_bits(const float* x, uint16_t* bits, int64_t n);

// out[i] = the float32 whose top 16 bits are bits[i] (exact).
void bf16_to_float(const uint16_t* bits, float* out, int64_t n);

}  // namespace mlpx::cpu
