// Row-major GEMM on the CPU through CBLAS (OpenBLAS). Internal.
#pragma once

#include <cstdint>

namespace mlpx::cpu {
// c[M,N] = alpha * op(a) * op(b) + beta * c with op(a): [M,K], op(b): [K,N], row-major,
// dense (leading dimension = row length).
template <typename T>
void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          const T* b, T beta, T* c);
// OpenBLAS's thread count for every later CPU GEMM of the process; and what it is now.
void set_gemm_threads(int threads);
int gemm_threads();
}  // namespace mlpx::cpu
