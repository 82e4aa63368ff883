#include "mlpx/linear.h"

#include "cpu/linear.h"
#include "memory.h"
#include "mlpx/error.h"
#include "mlpx/gemm.h"
#if MLPX_WITH_CUDA
#include "cuda/runtime.h"
#include "kernels/linear.h"
#endif

namespace mlpx {

namespace {

void check_defined(const char* op, const char* name, const Tensor& t) {
  MLPX_CHECK(t.defined(), ShapeError, op, ": expected ", name, ", found an undefined tensor");
}

// `t` must have `shape` and the dtype and device of `ref`.
void check_tensor(const char* op, const char* name, const Tensor& t, const Shape& shape,
                  const Tensor& ref) {
  check_defined(op, name, t);
  MLPX_CHECK(t.shape() == shape && t.dtype() == ref.dtype() && t.device() == ref.device(),
             ShapeError, op, ": expected ", name, " ", shape_str(shape), " ",
             dtype_name(ref.dtype()), " ", ref.device().str(), ", found ", t.describe());
}

// float32 anywhere, float64 on the CPU only.
void check_float(const char* op, const Tensor& t) {
  MLPX_CHECK(t.dtype() == DType::kFloat32 || (t.dtype() == DType::kFloat64 && t.device().is_cpu()),
             ShapeError, op, ": expected float32 (or float64 on the CPU), found ", t.describe());
}

void check_2d(const char* op, const char* name, const Tensor& t) {
  check_defined(op, name, t);
  MLPX_CHECK(t.dim() == 2, ShapeError, op, ": expected ", name, " to be 2-D, found ", t.describe());
}

}  // namespace

void add_bias(Tensor& y, const Tensor& bias) {
  check_2d("add_bias", "y", y);
  check_float("add_bias", y);
  check_tensor("add_bias", "bias", bias, {y.cols()}, y);
  if (y.device().is_cuda()) {
#if MLPX_WITH_CUDA
    cuda::add_bias(y.data<float>(), bias.data<float>(), y.rows(), y.cols(),
                   cuda::stream_of(y.device()));
    return;
#else
    detail::fail_without_cuda("add_bias");
#endif
  }
  if (y.dtype() == DType::kFloat64) {
    cpu::add_bias(y.data<double>(), bias.data<double>(), y.rows(), y.cols());
  } else {
    cpu::add_bias(y.data<float>(), bias.data<float>(), y.rows(), y.cols());
  }
}

void sum_rows(const Tensor& x, Tensor& sums) {
  check_2d("sum_rows", "x", x);
  check_float("sum_rows", x);
  check_tensor("sum_rows", "sums", sums, {x.cols()}, x);
  if (x.device().is_cuda()) {
#if MLPX_WITH_CUDA
    cuda::sum_rows(x.data<float>(), sums.data<float>(), x.rows(), x.cols(),
                   cuda::stream_of(x.device()));
    return;
#else
    detail::fail_without_cuda("sum_rows");
#endif
  }
  if (x.dtype() == DType::kFloat64) {
    cpu::sum_rows(x.data<double>(), sums.data<double>(), x.rows(), x.cols());
  } else {
    cpu::sum_rows(x.data<float>(), sums.data<float>(), x.rows(), x.cols());
  }
}

void linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y) {
  check_2d("linear_forward", "x", x);
  check_float("linear_forward", x);
  check_2d("linear_forward", "weight", weight);
  const int64_t batch = x.rows(), in = x.cols(), out = weight.rows();
  check_tensor("linear_forward", "weight", weight, {out, in}, x);
  check_tensor("linear_forward", "bias", bias, {out}, x);
  check_tensor("linear_forward", "y", y, {batch, out}, x);
  gemm(x, false, weight, true, y);
  add_bias(y, bias);
}

void linear_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, Tensor& dweight,
                     Tensor& dbias, Tensor* dx) {
  check_2d("linear_backward", "x", x);
  check_float("linear_backward", x);
  check_2d("linear_backward", "weight", weight);
  const int64_t batch = x.rows(), in = x.cols(), out = weight.rows();
  check_tensor("linear_backward", "weight", weight, {out, in}, x);
  check_tensor("linear_backward", "dy", dy, {batch, out}, x);
  check_tensor("linear_backward", "dweight", dweight, {out, in}, x);
  check_tensor("linear_backward", "dbias", dbias, {out}, x);
  if (dx != nullptr) check_tensor("linear_backward", "dx", *dx, {batch, in}, x);
  gemm(dy, true, x, false, dweight);                       // dW[out, in] = dy^T x
  sum_rows(dy, dbias);                                     // db[out] = sum over rows of dy
  if (dx != nullptr) gemm(dy, false, weight, false, *dx);  // dx[B, in] = dy W
}

}  // namespace mlpx
