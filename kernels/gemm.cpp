#include "kernels/gemm.h"

#include <algorithm>
#include <climits>

#include "kernels/check.h"
#include "kernels/runtime.h"
#include "mlpx/error.h"

namespace mlpx::cuda {

void gemm(int device, bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
          float alpha, const float* a, const float* b, float beta, float* c, Precision precision) {
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
  // The compute type, not a handle-wide mode, decides TF32: one call cannot leak into another.
  const cublasComputeType_t compute =
      precision == Precision::kTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F_PEDANTIC;
  MLPX_CUDA_CHECK(cublasGemmEx(ctx.blas, transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                               transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, b,
                               CUDA_R_32F, ldb, a, CUDA_R_32F, lda, &beta, c, CUDA_R_32F,
                               std::max(N, 1), compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace mlpx::cuda
