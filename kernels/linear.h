// Launchers of the Linear layer's bias kernels (kernels/linear.cu). Internal.
#pragma once

#include <cstdint>

#include "mlpx/device.h"

namespace mlpx::cuda {

// y[rows, cols] += bias[cols] on every row (float32).
void add_bias(float* y, const float* bias, int64_t rows, int64_t cols, Device device);

// sums[cols] = column sums of x[rows, cols] in the fixed order of mlpx/math/linear.h: no
// atomics, the same bits on every run (and the same bits as the CPU loop).
void sum_rows(const float* x, float* sums, int64_t rows, int64_t cols, Device device);

}  // namespace mlpx::cuda
