#include "cpu/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <climits>

#include "mlpx/error.h"

namespace mlpx::cpu {

namespace {
int blas_int(int64_t v, const char* what) {
  MLPX_CHECK(v <= INT_MAX, ShapeError, "gemm: expected ", what, " <= ", INT_MAX,
             " for CBLAS, found ", v);
  return static_cast<int>(v);
}
}  // namespace

template <typename T>
void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          const T* b, T beta, T* c) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // op(a) op(b) is all zeros; BLAS would read no input
    for (int64_t i = 0; i < m * n; ++i) c[i] = beta == T(0) ? T(0) : beta * c[i];
    return;
  }
  const int M = blas_int(m, "M"), N = blas_int(n, "N"), K = blas_int(k, "K");
  const int lda = transpose_a ? std::max(M, 1) : std::max(K, 1);
  const int ldb = transpose_b ? std::max(K, 1) : std::max(N, 1);
  const CBLAS_TRANSPOSE ta = transpose_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = transpose_b ? CblasTrans : CblasNoTrans;
  if (beta == T(0)) std::fill(c, c + m * n, T(0));  // BLAS may compute 0 * NaN
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, N);
  } else {
    cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, N);
  }
}

template void gemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, const float*, float,
                   float*);
template void gemm(bool, bool, int64_t, int64_t, int64_t, double, const double*, const double*,
                   double, double*);

void set_gemm_threads(int threads) { openblas_set_num_threads(threads); }
int gemm_threads() { return openblas_get_num_threads(); }

}  // namespace mlpx::cpu
