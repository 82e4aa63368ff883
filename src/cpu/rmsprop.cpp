#include "cpu/rmsprop.h"

#include <type_traits>

#include "cpu/vector_clones.h"

namespace mlpx::cpu {

namespace {

template <typename T>
inline void rmsprop_loop(int64_t n, T* p, const T* g, T* square_avg,
                         const math::RmspropCoefficients<T>& c) {
  for (int64_t i = 0; i < n; ++i) p[i] = math::rmsprop_update(p[i], g[i], square_avg[i], c);
}

// float32, the training path: one clone per vector width (cpu/vector_clones.h).
MLPX_VECTOR_CLONES void rmsprop_loop_f32(int64_t n, float* p, const float* g, float* square_avg,
                                         const math::RmspropCoefficients<float>& c) {
  rmsprop_loop(n, p, g, square_avg, c);
}

}  // namespace

template <typename T>
void rmsprop_step(int64_t n, T* p, const T* g, T* square_avg, const math::RmspropHyper& h) {
  const auto c = math::rmsprop_coefficients<T>(h);
  if constexpr (std::is_same_v<T, float>) {
    rmsprop_loop_f32(n, p, g, square_avg, c);
  } else {
    rmsprop_loop(n, p, g, square_avg, c);
  }
}

template void rmsprop_step(int64_t, float*, const float*, float*, const math::RmspropHyper&);
template void rmsprop_step(int64_t, double*, const double*, double*, const math::RmspropHyper&);

}  // namespace mlpx::cpu
