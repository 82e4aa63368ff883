// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator. Output block = philox(counter, key); any element of any stream
// is computed directly, so the CPU and the GPU draw the same numbers for the same seed.
#pragma once

#include <cmath>
#include <cstdint>

#include "math/hd.h"

namespace mlpx::math {

struct Philox4x32 {
  uint32_t v[4];
};

inline constexpr uint32_t kPhiloxMul0 = 0xD2511F53u;
inline constexpr uint32_t kPhiloxMul1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxWeyl0 = 0x9E3779B9u;  // golden ratio
inline constexpr uint32_t kPhiloxWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1

MLPX_HD void mulhilo32(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t product = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(product >> 32);
  *lo = static_cast<uint32_t>(product);
}

// Ten rounds of the Philox S-box with the key bumped by the Weyl sequence between rounds.
MLPX_HD Philox4x32 philox4x32_10(Philox4x32 counter, uint32_t key0, uint32_t key1) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo32(kPhiloxMul0, counter.v[0], &hi0, &lo0);
    mulhilo32(kPhiloxMul1, counter.v[2], &hi1, &lo1);
    counter = {{hi1 ^ counter.v[1] ^ key0, lo1, hi0 ^ counter.v[3] ^ key1, lo0}};
    key0 += kPhiloxWeyl0;
    key1 += kPhiloxWeyl1;
  }
  return counter;
}

// The random block for element `index` of stream `stream` under `seed`.
MLPX_HD Philox4x32 philox_block(uint64_t seed, uint64_t stream, uint64_t index) {
  const Philox4x32 counter = {{static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32),
                               static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)}};
  return philox4x32_10(counter, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Uniform double in (0, 1) from two 32-bit words: 53 random bits, never 0 or 1.
MLPX_HD double uniform_open01(uint32_t hi, uint32_t lo) {
  const uint64_t bits = (static_cast<uint64_t>(hi) << 21) | (lo >> 11);  // 53 bits
  return (static_cast<double>(bits) + 0.5) * 0x1p-53;
}

// Standard normal draw for element `index` (Box-Muller, cosine branch, in double so that
// both backends round the same value to float).
MLPX_HD double normal_draw(uint64_t seed, uint64_t stream, uint64_t index) {
  const Philox4x32 r = philox_block(seed, stream, index);
  const double u1 = uniform_open01(r.v[0], r.v[1]);
  const double u2 = uniform_open01(r.v[2], r.v[3]);
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  return sqrt(-2.0 * log(u1)) * cos(kTwoPi * u2);
}

// Uniform draw in [-a, a) for element `index`; exact in integer arithmetic on both backends.
MLPX_HD double uniform_draw(uint64_t seed, uint64_t stream, uint64_t index, double a) {
  const Philox4x32 r = philox_block(seed, stream, index);
  const double u = uniform_open01(r.v[0], r.v[1]);
  return (2.0 * u - 1.0) * a;
}

}  // namespace mlpx::math
