// CPU loops of shuffling and row gathering. Internal.
#pragma once

#include <cstdint>

namespace mlpx::cpu {
// out[0..n) = the permutation of mlpx/math/batching.h.
void random_permutation(int32_t* out, int64_t n, uint64_t seed, uint64_t stream);
// dst[i, :] = src[indices[i], :] for rows of `width` elements of T.
template <typename T>
void gather_rows(const T* src, const int32_t* indices, T* dst, int64_t rows, int64_t width);
}  // namespace mlpx::cpu
