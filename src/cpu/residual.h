// CPU loop of the skip connection (math/residual.h). Internal.
#pragma once

#include <cstdint>

namespace mlpx::cpu {

// out[i] = x[i] + y[i] for i < n; out may be x or y.
template <typename T>
void residual_add(const T* x, const T* y, T* out, int64_t n);

}  // namespace mlpx::cpu
