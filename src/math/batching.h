// Shuffling: a permutation of [0, n) is the order of the rows sorted by a random 64-bit key
// per row (ties by row index), so both backends produce it from the same keys.
#pragma once

#include <cstdint>

#include "math/hd.h"
#include "math/philox.h"

namespace mlpx::math {

MLPX_HD uint64_t permutation_key(uint64_t seed, uint64_t stream, uint64_t row) {
  const Philox4x32 r = philox_block(seed, stream, row);
  return (static_cast<uint64_t>(r.v[0]) << 32) | r.v[1];
}

}  // namespace mlpx::math
