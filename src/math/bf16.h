// bfloat16: float32's sign and 8-bit exponent with a 7-bit mantissa (the top 16 bits of a
// float32). The one rounding formula of precision "bf16", shared by the CPU loops
// (src/cpu/bf16.cpp), the CUDA kernel (kernels/bf16.cu) and the GEMMs that feed on them.
#pragma once

#include <cstdint>
#include <cstring>

#include "math/hd.h"

namespace mlpx::math {

MLPX_HD uint32_t float_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);  // the defined way to read a float's bits, on host and device
  return u;
}

MLPX_HD float float_from_bits(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

// x rounded to the nearest bfloat16, ties to even (IEEE's default rounding), as bits:
// - finite values round on the 16 dropped bits; a tie keeps the even mantissa. Values past
//   the largest bfloat16 (3.3895e38) round to infinity, as IEEE rounding does;
// - subnormals round like any other value (no flush to zero, unlike the x86 instruction
//   VCVTNEPS2BF16 and cuBLAS's conversions with flush-to-zero flags);
// - infinities stay infinities; a NaN stays a NaN of its sign, made quiet (the payload's top
//   bits kept), so that truncating its payload can never turn it into an infinity.
MLPX_HD uint16_t bf16_bits(float x) {
  const uint32_t u = float_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  // Adding 0x7fff rounds a remainder above one half up and one below down; the mantissa's
  // lowest kept bit added to that makes a remainder of exactly one half round to even.
  const uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(rounded >> 16);
}

// The float32 whose top 16 bits are `bits` (exact: every bfloat16 is a float32).
MLPX_HD float bf16_to_float(uint16_t bits) {
  return float_from_bits(static_cast<uint32_t>(bits) << 16);
}

// x rounded to the nearest bfloat16, as a float32.
MLPX_HD float round_to_bf16(float x) { return bf16_to_float(bf16_bits(x)); }

}  // namespace mlpx::math
