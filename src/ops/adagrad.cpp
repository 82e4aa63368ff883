#include "cpu/adagrad.h"

#include "kernels/adagrad.h"
#include "ops/optimizer_step.h"

namespace mlpx::ops {

void adagrad_step(const OptimizerStep& step, const math::AdagradHyper& hyper) {
  const int64_t n = step.params.numel();
  detail::run_optimizer_step(
      "adagrad step", step, 1,
      [&] {
        cuda::adagrad_step(n, step.params.data<float>(), step.grads.data<float>(),
                           detail::state_ptr(step, 0), hyper, step.step_counter.data<int32_t>(),
                           detail::skip_ptr(step), step.params.device());
      },
      [&](auto zero, int64_t) {
        using T = decltype(zero);
        cpu::adagrad_step<T>(n, step.params.data<T>(), step.grads.data<T>(),
                             step.state[0].data<T>(), hyper);
      });
}

}  // namespace mlpx::ops
