#include "cpu/rmsprop.h"

namespace mlpx::cpu {

template <typename T>
void rmsprop_step(int64_t n, T* p, const T* g, T* square_avg, const math::RmspropHyper& h) {
  const auto c = math::rmsprop_coefficients<T>(h);
  for (int64_t i = 0; i < n; ++i) p[i] = math::rmsprop_update(p[i], g[i], square_avg[i], c);
}

template void rmsprop_step(int64_t, float*, const float*, float*, const math::RmspropHyper&);
template void rmsprop_step(int64_t, double*, const double*, double*, const math::RmspropHyper&);

}  // namespace mlpx::cpu
