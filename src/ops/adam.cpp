#include "cpu/adam.h"

#include "kernels/adam.h"
#include "ops/optimizer_step.h"

namespace mlpx::ops {

void adam_step(const OptimizerStep& step, const math::AdamHyper& hyper) {
  const int64_t n = step.params.numel();
  detail::run_optimizer_step(
      "adam step", step, 2,
      [&] {
        cuda::adam_step(n, step.params.data<float>(), step.grads.data<float>(),
                        detail::state_ptr(step, 0), detail::state_ptr(step, 1), hyper,
                        step.step_counter.data<int32_t>(), detail::skip_ptr(step),
                        step.params.device());
      },
      [&](auto zero, int64_t t) {
        using T = decltype(zero);
        cpu::adam_step<T>(n, step.params.data<T>(), step.grads.data<T>(), step.state[0].data<T>(),
                          step.state[1].data<T>(), hyper, t);
      });
}

}  // namespace mlpx::ops
