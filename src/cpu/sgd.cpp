#include "cpu/sgd.h"

namespace mlpx::cpu {

template <typename T>
void sgd_step(int64_t n, T* p, const T* g, T* momentum_buffer, const math::SgdHyper& h) {
  const auto c = math::sgd_coefficients<T>(h);
  if (momentum_buffer == nullptr) {
    for (int64_t i = 0; i < n; ++i) p[i] = math::sgd_update(p[i], g[i], c);
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    p[i] = math::sgd_momentum_update(p[i], g[i], momentum_buffer[i], c);
}

template void sgd_step(int64_t, float*, const float*, float*, const math::SgdHyper&);
template void sgd_step(int64_t, double*, const double*, double*, const math::SgdHyper&);

}  // namespace mlpx::cpu
