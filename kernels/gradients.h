// Launchers of the kernels over the flat gradient buffer (kernels/gradients.cu; formulas in
// src/math/gradients.h). float32 on `device`'s stream; nothing is read back. Internal.
#pragma once

#include <cstdint>

#include "mlpx/device.h"

namespace mlpx::cuda {

// Blocks of a norm's first pass, and so the float64 elements of its `partials` scratch.
inline constexpr int kNormBlocks = 64;

// Two passes: min(kNormBlocks, ceil(n / 256)) blocks each sum the squares (in double) of one
// fixed chunk of grads [n] into partials[block] (device scratch of kNormBlocks), then one thread
// adds those in order, so the bits depend on n alone; then scalars[1] = math::clip_scale(norm,
// max_norm) and norm_sum[0] += norm, all in device memory.
void clip_scale(const float* grads, int64_t n, double max_norm, double* scalars, double* norm_sum,
                double* partials, Device device);
// The same norm, without a scale: norm_sum[0] += the L2 norm of grads [n].
void add_norm(const float* grads, int64_t n, double* norm_sum, double* partials, Device device);
// sum[i] += grads[i] over [0, n).
void add_gradients(const float* grads, float* sum, int64_t n, Device device);

}  // namespace mlpx::cuda
