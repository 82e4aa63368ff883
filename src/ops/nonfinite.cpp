#include "ops/nonfinite.h"

#include "core/check.h"
#include "core/dispatch.h"
#include "cpu/nonfinite.h"
#include "kernels/nonfinite.h"
#include "mlpx/error.h"

namespace mlpx {

void flag_nonfinite(const Tensor& loss, const Tensor& grads, Tensor& flag) {
  detail::check_float("flag_nonfinite", "loss", loss);
  detail::check_tensor("flag_nonfinite", "loss", loss, {1}, loss);
  MLPX_CHECK(grads.defined() && grads.dim() == 1, ShapeError,
             "flag_nonfinite: expected flat grads [N], found ",
             grads.defined() ? grads.describe() : "an undefined tensor");
  detail::check_tensor("flag_nonfinite", "grads", grads, grads.shape(), loss);
  detail::check_tensor("flag_nonfinite", "flag", flag, {4}, DType::kInt32, loss.device());
  detail::dispatch(
      "flag_nonfinite", loss,
      [&] {
        cuda::flag_nonfinite(loss.data<float>(), grads.data<float>(), grads.numel(),
                             flag.data<int32_t>(), loss.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::flag_nonfinite(loss.data<T>(), grads.data<T>(), grads.numel(), flag.data<int32_t>());
      });
}

}  // namespace mlpx
