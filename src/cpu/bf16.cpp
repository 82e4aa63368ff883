#include "cpu/bf16.h"

#include "math/bf16.h"

namespace mlpx::cpu {

void round_to_bf16(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = math::round_to_bf16(x[i]);
}

void round_to_bf16_bits(const float* x, uint16_t* bits, int64_t n) {
  for (int64_t i = 0; i < n; ++i) bits[i] = math::bf16_bits(x[i]);
}

void bf16_to_float(const uint16_t* bits, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = math::bf16_to_float(bits[i]);
}

}  // namespace mlpx::cpu
