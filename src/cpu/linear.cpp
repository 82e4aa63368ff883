#include "cpu/linear.h"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "cpu/parallel.h"
#include "math/linear.h"

namespace mlpx::cpu {

template <typename T>
void add_bias(T* y, const T* bias, int64_t rows, int64_t cols) {
  // Rows split over mlpx's threads (cpu/parallel.h), chunks of about 65536 elements: each
  // element alone, so the same bits.
  parallel_for(rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(cols, 1)),
               [&](int64_t first, int64_t last) {
                 for (int64_t r = first; r < last; ++r) {
                   T* yr = y + r * cols;
                   for (int64_t c = 0; c < cols; ++c) yr[c] = math::bias_add(yr[c], bias[c]);
                 }
               });
}

template <typename T>
void sum_rows(const T* x, T* sums, int64_t rows, int64_t cols) {
  constexpr int kLanes = math::kColumnSumLanes;
  // partial[l * cols + c]: lane l's sum of column c (rows l, l + kLanes, ...), filled row by
  // row so that x is read in memory order.
  std::vector<T> partial(static_cast<std::size_t>(kLanes * cols), T(0));
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* p = partial.data() + (r % kLanes) * cols;
    for (int64_t c = 0; c < cols; ++c) p[c] += xr[c];
  }
  T lanes[kLanes];
  for (int64_t c = 0; c < cols; ++c) {
    for (int l = 0; l < kLanes; ++l) lanes[l] = partial[l * cols + c];
    sums[c] = math::combine_column_lanes(lanes);
  }
}

template void add_bias(float*, const float*, int64_t, int64_t);
template void add_bias(double*, const double*, int64_t, int64_t);
template void sum_rows(const float*, float*, int64_t, int64_t);
template void sum_rows(const double*, double*, int64_t, int64_t);

}  // namespace mlpx::cpu
