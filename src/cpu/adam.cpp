#include "cpu/adam.h"

namespace mlpx::cpu {

template <typename T>
void adam_step(int64_t n, T* p, const T* g, T* exp_avg, T* exp_avg_sq, const math::AdamHyper& h,
               int64_t t) {
  const auto c = math::adam_coefficients<T>(h, t);
  for (int64_t i = 0; i < n; ++i)
    p[i] = math::adam_update(p[i], g[i], exp_avg[i], exp_avg_sq[i], c);
}

template void adam_step(int64_t, float*, const float*, float*, float*, const math::AdamHyper&,
                        int64_t);
template void adam_step(int64_t, double*, const double*, double*, double*, const math::AdamHyper&,
                        int64_t);

}  // namespace mlpx::cpu
