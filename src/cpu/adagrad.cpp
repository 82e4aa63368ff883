#include "cpu/adagrad.h"

#include <type_traits>

#include "cpu/vector_clones.h"

namespace mlpx::cpu {

namespace {

template <typename T>
inline void adagrad_loop(int64_t n, T* p, const T* g, T* sum,
                         const math::AdagradCoefficients<T>& c) {
  for (int64_t i = 0; i < n; ++i) p[i] = math::adagrad_update(p[i], g[i], sum[i], c);
}

// float32, the training path: one clone per vector width (cpu/vector_clones.h).
MLPX_VECTOR_CLONES void adagrad_loop_f32(int64_t n, float* p, const float* g, float* sum,
                                         const math::AdagradCoefficients<float>& c) {
  adagrad_loop(n, p, g, sum, c);
}

}  // namespace

template <typename T>
void adagrad_step(int64_t n, T* p, const T* g, T* sum, const math::AdagradHyper& h) {
  const auto c = math::adagrad_coefficients<T>(h);
  if constexpr (std::is_same_v<T, float>) {
    adagrad_loop_f32(n, p, g, sum, c);
  } else {
    adagrad_loop(n, p, g, sum, c);
  }
}

template void adagrad_step(int64_t, float*, const float*, float*, const math::AdagradHyper&);
template void adagrad_step(int64_t, double*, const double*, double*, const math::AdagradHyper&);

}  // namespace mlpx::cpu
