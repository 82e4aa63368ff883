// The Linear layer's non-GEMM parts: bias add and the column sums of the bias gradient.
// The column sum has one fixed order of additions, used by the CPU loop and the CUDA kernel
// alike, so it gives the same bits on every run (and the same bits on both backends).
#pragma once

#include <cstdint>

#include "math/hd.h"

namespace mlpx::math {

// Column sums run in kColumnSumLanes interleaved partial sums: lane l adds rows l, l + L,
// l + 2L, ... in increasing order; then the lanes are combined pairwise as a tree
// (lane l += lane l + L/2, then l + L/4, ... ). On the GPU each lane is one thread.
inline constexpr int kColumnSumLanes = 16;

// The pairwise combination of the lanes' partial sums (in place; the result is in p[0]).
template <typename T>
MLPX_HD T combine_column_lanes(T* p) {
  for (int stride = kColumnSumLanes / 2; stride > 0; stride /= 2) {
    for (int l = 0; l < stride; ++l) p[l] = p[l] + p[l + stride];
  }
  return p[0];
}

template <typename T>
MLPX_HD T bias_add(T y, T bias) {
  return y + bias;
}

}  // namespace mlpx::math
