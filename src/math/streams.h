// Philox stream numbers: each consumer of random numbers draws from its own stream, so that
// adding one never shifts another's values.
#pragma once

#include <cstdint>

namespace mlpx::math {
inline constexpr uint64_t kStreamInit = 0;                       // + layer index
inline constexpr uint64_t kStreamShuffle = uint64_t{1} << 40;    // + epoch
inline constexpr uint64_t kStreamSplit = uint64_t{2} << 40;      // validation split
inline constexpr uint64_t kStreamSynthetic = uint64_t{3} << 40;  // + part of the data set
inline constexpr uint64_t kStreamDropout = uint64_t{4} << 40;    // + layer (math/dropout.h)
inline constexpr uint64_t kStreamInitBias = uint64_t{5} << 40;   // + layer (torch_default)
}  // namespace mlpx::math
