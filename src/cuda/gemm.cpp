#include "cuda/gemm.h"

#include <algorithm>
#include <climits>

#include "cuda/check.h"
#include "cuda/runtime.h"
#include "mlpx/error.h"

namespace mlpx::cuda {

void gemm(int device, bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
          float alpha, const float* a, const float* b, float beta, float* c) {
  if (m == 0 || n == 0) return;
  Context& ctx = context(device);
  MLPX_CUDA_CHECK(cudaSetDevice(device));
  MLPX_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX, ShapeError,
             "gemm: expected M, N, K <= ", INT_MAX, " for cuBLAS, found ", m, ", ", n, ", ", k);
  if (k == 0 && beta == 0.0f) {
    MLPX_CUDA_CHECK(cudaMemsetAsync(c, 0, sizeof(float) * m * n, ctx.stream));
    return;
  }
  // cuBLAS is column-major: a row-major C[M,N] is a column-major C^T[N,M], and
  // C^T = op(B)^T op(A)^T, so pass B first with the same transpose flags.
  const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
  const int lda = transpose_a ? std::max(M, 1) : std::max(K, 1);
  const int ldb = transpose_b ? std::max(K, 1) : std::max(N, 1);
  MLPX_CUDA_CHECK(cublasSgemm(ctx.blas, transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                              transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, b, ldb, a,
                              lda, &beta, c, std::max(N, 1)));
}

}  // namespace mlpx::cuda
