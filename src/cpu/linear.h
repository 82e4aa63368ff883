// CPU loops of the Linear layer's bias add and column sums (formulas in mlpx/math/linear.h).
// Internal.
#pragma once

#include <cstdint>

namespace mlpx::cpu {

// y[rows, cols] += bias[cols] on every row.
template <typename T>
void add_bias(T* y, const T* bias, int64_t rows, int64_t cols);

// sums[cols] = column sums of x[rows, cols] in the fixed order of mlpx/math/linear.h.
template <typename T>
void sum_rows(const T* x, T* sums, int64_t rows, int64_t cols);

}  // namespace mlpx::cpu
