#include "cpu/adam.h"

#include <type_traits>

#include "cpu/vector_clones.h"

namespace mlpx::cpu {

namespace {

template <typename T>
inline void adam_loop(int64_t n, T* p, const T* g, T* exp_avg, T* exp_avg_sq,
                      const math::AdamCoefficients<T>& c) {
  for (int64_t i = 0; i < n; ++i)
    p[i] = math::adam_update(p[i], g[i], exp_avg[i], exp_avg_sq[i], c);
}

// float32, the training path: one clone per vector width (two divisions and a square root per
// element make this loop compute-bound, so the width counts).
MLPX_VECTOR_CLONES void adam_loop_f32(int64_t n, float* p, const float* g, float* exp_avg,
                                      float* exp_avg_sq, const math::AdamCoefficients<float>& c) {
  adam_loop(n, p, g, exp_avg, exp_avg_sq, c);
}

}  // namespace

template <typename T>
void adam_step(int64_t n, T* p, const T* g, T* exp_avg, T* exp_avg_sq, const math::AdamHyper& h,
               int64_t t) {
  const auto c = math::adam_coefficients<T>(h, t);
  if constexpr (std::is_same_v<T, float>) {
    adam_loop_f32(n, p, g, exp_avg, exp_avg_sq, c);
  } else {
    adam_loop(n, p, g, exp_avg, exp_avg_sq, c);
  }
}

template void adam_step(int64_t, float*, const float*, float*, float*, const math::AdamHyper&,
                        int64_t);
template void adam_step(int64_t, double*, const double*, double*, double*, const math::AdamHyper&,
                        int64_t);

}  // namespace mlpx::cpu
