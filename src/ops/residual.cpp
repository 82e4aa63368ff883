#include "mlpx/residual.h"

#include "core/check.h"
#include "core/dispatch.h"
#include "cpu/residual.h"
#include "kernels/residual.h"

namespace mlpx {

void residual_add(const Tensor& x, const Tensor& y, Tensor& out) {
  const char* op = "residual_add";
  detail::check_float(op, "x", x);
  detail::check_like(op, "y (like x)", y, x);
  detail::check_like(op, "out (like x)", out, x);
  detail::dispatch(
      op, x,
      [&] {
        cuda::residual_add(x.data<float>(), y.data<float>(), out.data<float>(), x.numel(),
                           x.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::residual_add(x.data<T>(), y.data<T>(), out.data<T>(), x.numel());
      });
}

}  // namespace mlpx
