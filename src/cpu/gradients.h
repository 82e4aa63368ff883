// CPU loops over the flat gradient buffer (formulas in src/math/gradients.h). Internal.
#pragma once

#include <cstdint>

namespace mlpx::cpu {

// The L2 norm of grads [n], its squares summed in double, first to last; then
// scalars[1] = math::clip_scale(norm, max_norm) and norm_sum[0] += norm.
template <typename T>
void clip_scale(const T* grads, int64_t n, double max_norm, double* scalars, double* norm_sum);

// norm_sum[0] += the L2 norm of grads [n], its squares summed in double, first to last.
template <typename T>
void add_norm(const T* grads, int64_t n, double* norm_sum);
// sum[i] += grads[i] over [0, n).
template <typename T>
void add_gradients(const T* grads, T* sum, int64_t n);

}  // namespace mlpx::cpu
