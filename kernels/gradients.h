// Launchers of the kernels over the flat gradient buffer (kernels/gradients.cu; formulas in
// src/math/gradients.h). float32 on `device`'s stream; nothing is read back. Internal.
#pragma once

#include <cstdint>

#include "mlpx/device.h"

namespace mlpx::cuda {

// One block: the L2 norm of grads [n] (squares summed in double, fixed-order tree), then
// scalars[1] = math::clip_scale(norm, max_norm) and norm_sum[0] += norm, all in device memory.
void clip_scale(const float* grads, int64_t n, double max_norm, double* scalars, double* norm_sum,
                Device device);

// sum[i] += grads[i] over [0, n).
void add_gradients(const float* grads, float* sum, int64_t n, Device device);

}  // namespace mlpx::cuda
