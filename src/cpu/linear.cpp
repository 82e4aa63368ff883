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
  // Columns split over mlpx's threads (cpu/parallel.h), at least 64 at a time and about 65536
  // elements a chunk: each column's sum is formed as on one thread (the same lanes, the same
  // order of rows), so the same bits.
  const int64_t grain = std::max<int64_t>(64, 65536 / std::max<int64_t>(rows, 1));
  parallel_for(cols, grain, [&](int64_t first, int64_t last) {
    const int64_t width = last - first;
    // partial[l * width + c]: lane l's sum of column first + c (rows l, l + kLanes, ...),
    // filled row by row so that x is read in memory order.
    std::vector<T> partial(static_cast<std::size_t>(kLanes * width), T(0));
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols + first;
      T* p = partial.data() + (r % kLanes) * width;
      for (int64_t c = 0; c < width; ++c) p[c] += xr[c];
    }
    T lanes[kLanes];
    for (int64_t c = 0; c < width; ++c) {
      for (int l = 0; l < kLanes; ++l) lanes[l] = partial[l * width + c];
      sums[first + c] = math::combine_column_lanes(lanes);
    }
  });
}

template void add_bias(float*, const float*, int64_t, int64_t);
template void add_bias(double*, const double*, int64_t, int64_t);
template void sum_rows(const float*, float*, int64_t, int64_t);
template void sum_rows(const double*, double*, int64_t, int64_t);

}  // namespace mlpx::cpu
