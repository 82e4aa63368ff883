// The one place where an op chooses its backend. A Tensor-level op checks its arguments, then
//   dispatch(op, t, [&] { cuda::op(...float32 pointers..., t.device()); },
//                   [&](auto zero) { using T = decltype(zero); cpu::op<T>(...); });
// A CPU-only build links kernels/stub.cpp, whose cuda:: entry points throw CudaError, so the
// ops carry no #if. Internal.
#pragma once

#include <cstdint>
#include <string_view>

#include "mlpx/error.h"
#include "mlpx/tensor.h"

namespace mlpx::detail {

// On a CUDA device runs on_cuda() (the kernels take float32 only); on the CPU runs
// on_cpu(T{}) with T = float or double, the dtype of `t`.
template <typename OnCuda, typename OnCpu>
void dispatch(std::string_view op, const Tensor& t, OnCuda&& on_cuda, OnCpu&& on_cpu) {
  if (t.device().is_cuda()) {
    MLPX_CHECK(t.dtype() == DType::kFloat32, ShapeError, op, " on ", t.device().str(),
               ": expected float32, found ", t.describe());
    on_cuda();
  } else if (t.dtype() == DType::kFloat64) {
    on_cpu(double{});
  } else {
    MLPX_CHECK(t.dtype() == DType::kFloat32, ShapeError, op,
               ": expected float32 or float64, found ", t.describe());
    on_cpu(float{});
  }
}

// As dispatch(), for ops that also move int32 data (gathers): on_cuda(T{}) with T = float or
// int32_t, on_cpu(T{}) with T = float, double or int32_t.
template <typename OnCuda, typename OnCpu>
void dispatch_any(std::string_view op, const Tensor& t, OnCuda&& on_cuda, OnCpu&& on_cpu) {
  if (t.dtype() == DType::kInt32) {
    if (t.device().is_cuda()) {
      on_cuda(int32_t{});
    } else {
      on_cpu(int32_t{});
    }
    return;
  }
  dispatch(
      op, t, [&] { on_cuda(float{}); }, on_cpu);
}

}  // namespace mlpx::detail
