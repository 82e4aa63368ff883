#include "cpu/batching.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "math/batching.h"

namespace mlpx::cpu {

void random_permutation(int32_t* out, int64_t n, uint64_t seed, uint64_t stream) {
  std::vector<std::pair<uint64_t, int32_t>> keyed(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    keyed[i] = {math::permutation_key(seed, stream, static_cast<uint64_t>(i)),
                static_cast<int32_t>(i)};
  }
  // (key, row) pairs are unique, so this order equals a stable sort by key.
  std::sort(keyed.begin(), keyed.end());
  for (int64_t i = 0; i < n; ++i) out[i] = keyed[i].second;
}

template <typename T>
void gather_rows(const T* src, const int32_t* indices, T* dst, int64_t rows, int64_t width) {
  for (int64_t i = 0; i < rows; ++i) {
    std::memcpy(dst + i * width, src + static_cast<int64_t>(indices[i]) * width, sizeof(T) * width);
  }
}

template void gather_rows(const float*, const int32_t*, float*, int64_t, int64_t);
template void gather_rows(const double*, const int32_t*, double*, int64_t, int64_t);
template void gather_rows(const int32_t*, const int32_t*, int32_t*, int64_t, int64_t);

}  // namespace mlpx::cpu
