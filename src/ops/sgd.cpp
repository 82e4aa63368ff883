#include "cpu/sgd.h"

#include "kernels/sgd.h"
#include "ops/optimizer_step.h"

namespace mlpx::ops {

void sgd_step(const OptimizerStep& step, const math::SgdHyper& hyper) {
  // Plain SGD keeps no state; with momentum, one buffer.
  const size_t buffers = hyper.momentum > 0 ? 1 : 0;
  const int64_t n = step.params.numel();
  detail::run_optimizer_step(
      "sgd step", step, buffers,
      [&] {
        cuda::sgd_step(n, step.params.data<float>(), step.grads.data<float>(),
                       buffers ? detail::state_ptr(step, 0) : nullptr, hyper,
                       step.step_counter.data<int32_t>(), detail::skip_ptr(step),
                       step.params.device());
      },
      [&](auto zero, int64_t) {
        using T = decltype(zero);
        cpu::sgd_step<T>(n, step.params.data<T>(), step.grads.data<T>(),
                         buffers ? step.state[0].data<T>() : nullptr, hyper);
      });
}

}  // namespace mlpx::ops
