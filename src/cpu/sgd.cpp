#include "cpu/sgd.h"

#include <type_traits>

#include "cpu/vector_clones.h"

namespace mlpx::cpu {

namespace {

template <typename T>
inline void sgd_loop(int64_t n, T* p, const T* g, T* momentum_buffer,
                     const math::SgdCoefficients<T>& c) {
  if (momentum_buffer == nullptr) {
    for (int64_t i = 0; i < n; ++i) p[i] = math::sgd_update(p[i], g[i], c);
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    p[i] = math::sgd_momentum_update(p[i], g[i], momentum_buffer[i], c);
}

// float32, the training path: one clone per vector width (cpu/vector_clones.h).
MLPX_VECTOR_CLONES void sgd_loop_f32(int64_t n, float* p, const float* g, float* momentum_buffer,
                                     const math::SgdCoefficients<float>& c) {
  sgd_loop(n, p, g, momentum_buffer, c);
}

}  // namespace

template <typename T>
void sgd_step(int64_t n, T* p, const T* g, T* momentum_buffer, const math::SgdHyper& h) {
  const auto c = math::sgd_coefficients<T>(h);
  if constexpr (std::is_same_v<T, float>) {
    sgd_loop_f32(n, p, g, momentum_buffer, c);
  } else {
    sgd_loop(n, p, g, momentum_buffer, c);
  }
}

template void sgd_step(int64_t, float*, const float*, float*, const math::SgdHyper&);
template void sgd_step(int64_t, double*, const double*, double*, const math::SgdHyper&);

}  // namespace mlpx::cpu
