// CPU loop of the non-finite check (the twin of kernels/nonfinite.cu). Internal.
#pragma once

#include <cstdint>

namespace mlpx::cpu {
// flag[0] = (loss[0] or any of grads[0..n) is NaN or Inf); flag[2] += flag[0].
template <typename T>
void flag_nonfinite(const T* loss, const T* grads, int64_t n, int32_t* flag);
}  // namespace mlpx::cpu
