#include "mlpx/gemm.h"

#include "cpu/gemm.h"
#include "memory.h"
#include "mlpx/error.h"
#if MLPX_WITH_CUDA
#include "cuda/gemm.h"
#endif

namespace mlpx {

void gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor& c,
          double alpha, double beta) {
  MLPX_CHECK(a.dim() == 2 && b.dim() == 2 && c.dim() == 2, ShapeError,
             "gemm: expected 2-D operands, found a ", a.describe(), ", b ", b.describe(), ", c ",
             c.describe());
  MLPX_CHECK(a.dtype() == c.dtype() && b.dtype() == c.dtype() && a.device() == c.device() &&
                 b.device() == c.device(),
             ShapeError, "gemm: expected one dtype and device, found a ", a.describe(), ", b ",
             b.describe(), ", c ", c.describe());
  const int64_t m = transpose_a ? a.cols() : a.rows();
  const int64_t k = transpose_a ? a.rows() : a.cols();
  const int64_t kb = transpose_b ? b.cols() : b.rows();
  const int64_t n = transpose_b ? b.rows() : b.cols();
  MLPX_CHECK(k == kb && c.rows() == m && c.cols() == n, ShapeError, "gemm: expected op(a) [", m,
             ", ", k, "] x op(b) [", k, ", ", n, "] -> c [", m, ", ", n, "], found op(b) [", kb,
             ", ", n, "] and c ", shape_str(c.shape()));
  if (c.device().is_cuda()) {
#if MLPX_WITH_CUDA
    MLPX_CHECK(c.dtype() == DType::kFloat32, ShapeError, "gemm on ", c.device().str(),
               ": expected float32, found ", dtype_name(c.dtype()));
    cuda::gemm(c.device().index, transpose_a, transpose_b, m, n, k, static_cast<float>(alpha),
               a.data<float>(), b.data<float>(), static_cast<float>(beta), c.data<float>());
    return;
#else
    detail::fail_without_cuda("gemm");
#endif
  }
  if (c.dtype() == DType::kFloat64) {
    cpu::gemm<double>(transpose_a, transpose_b, m, n, k, alpha, a.data<double>(), b.data<double>(),
                      beta, c.data<double>());
  } else {
    MLPX_CHECK(c.dtype() == DType::kFloat32, ShapeError,
               "gemm: expected float32 or float64, found ", dtype_name(c.dtype()));
    cpu::gemm<float>(transpose_a, transpose_b, m, n, k, static_cast<float>(alpha), a.data<float>(),
                     b.data<float>(), static_cast<float>(beta), c.data<float>());
  }
}

}  // namespace mlpx
