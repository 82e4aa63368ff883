// Row-major GEMM on the GPU through cuBLAS. Internal.
#pragma once

#include <cstdint>

namespace mlpx::cuda {
// c[M,N] = alpha * op(a) * op(b) + beta * c, row-major float32, on `device`'s stream.
void gemm(int device, bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
          float alpha, const float* a, const float* b, float beta, float* c);
}  // namespace mlpx::cuda
