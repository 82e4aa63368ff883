#include "ops/gradients.h"

#include "core/check.h"
#include "core/dispatch.h"
#include "cpu/gradients.h"
#include "kernels/gradients.h"
#include "mlpx/error.h"

namespace mlpx::ops {

Tensor norm_scratch(Device device) {
  return Tensor::zeros({cuda::kNormBlocks}, DType::kFloat64, device);
}

void clip_scale(const Tensor& grads, double max_norm, Tensor& scalars, Tensor& norm_sum,
                Tensor& scratch) {
  const char* op = "clip_grad_norm";
  ::mlpx::detail::check_float(op, "grads", grads);
  MLPX_CHECK(grads.dim() == 1, ShapeError, op, ": expected flat grads [n], found ",
             grads.describe());
  ::mlpx::detail::check_tensor(op, "scalars", scalars, {2}, DType::kFloat64, grads.device());
  ::mlpx::detail::check_tensor(op, "norm_sum", norm_sum, {1}, DType::kFloat64, grads.device());
  ::mlpx::detail::check_tensor(op, "scratch", scratch, {cuda::kNormBlocks}, DType::kFloat64,
                               grads.device());
  MLPX_CHECK(max_norm > 0, ValueError, op, ": expected max_norm > 0, found ", max_norm);
  ::mlpx::detail::dispatch(
      op, grads,
      [&] {
        cuda::clip_scale(grads.data<float>(), grads.numel(), max_norm, scalars.data<double>(),
                         norm_sum.data<double>(), scratch.data<double>(), grads.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::clip_scale(grads.data<T>(), grads.numel(), max_norm, scalars.data<double>(),
                        norm_sum.data<double>());
      });
}

void add_norm(const Tensor& grads, Tensor& norm_sum, Tensor& scratch) {
  const char* op = "add_norm";
  ::mlpx::detail::check_float(op, "grads", grads);
  MLPX_CHECK(grads.dim() == 1, ShapeError, op, ": expected flat grads [n], found ",
             grads.describe());
  ::mlpx::detail::check_tensor(op, "norm_sum", norm_sum, {1}, DType::kFloat64, grads.device());
  ::mlpx::detail::check_tensor(op, "scratch", scratch, {cuda::kNormBlocks}, DType::kFloat64,
                               grads.device());
  ::mlpx::detail::dispatch(
      op, grads,
      [&] {
        cuda::add_norm(grads.data<float>(), grads.numel(), norm_sum.data<double>(),
                       scratch.data<double>(), grads.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::add_norm(grads.data<T>(), grads.numel(), norm_sum.data<double>());
      });
}

void add_gradients(const Tensor& grads, Tensor& sum) {
  const char* op = "add_gradients";
  ::mlpx::detail::check_float(op, "grads", grads);
  MLPX_CHECK(grads.dim() == 1, ShapeError, op, ": expected flat grads [n], found ",
             grads.describe());
  ::mlpx::detail::check_tensor(op, "sum (like grads)", sum, grads.shape(), grads);
  ::mlpx::detail::dispatch(
      op, grads,
      [&] {
        cuda::add_gradients(grads.data<float>(), sum.data<float>(), grads.numel(), grads.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::add_gradients(grads.data<T>(), sum.data<T>(), grads.numel());
      });
}

}  // namespace mlpx::ops
