// The skip connection's formula (out = x + y), shared by src/cpu/residual.cpp and
// kernels/residual.cu.
#pragma once

#include "math/hd.h"

namespace mlpx::math {

template <typename T>
MLPX_HD T residual_sum(T x, T y) {
  return x + y;
}

}  // namespace mlpx::math
