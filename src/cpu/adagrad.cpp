#include "cpu/adagrad.h"

namespace mlpx::cpu {

template <typename T>
void adagrad_step(int64_t n, T* p, const T* g, T* sum, const math::AdagradHyper& h) {
  const auto c = math::adagrad_coefficients<T>(h);
  for (int64_t i = 0; i < n; ++i) p[i] = math::adagrad_update(p[i], g[i], sum[i], c);
}

template void adagrad_step(int64_t, float*, const float*, float*, const math::AdagradHyper&);
template void adagrad_step(int64_t, double*, const double*, double*, const math::AdagradHyper&);

}  // namespace mlpx::cpu
