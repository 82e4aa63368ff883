#include "cpu/gradients.h"

#include <cmath>

#include "math/gradients.h"

namespace mlpx::cpu {

namespace {
template <typename T>
double l2_norm(const T* grads, int64_t n) {
  double squares = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double g = static_cast<double>(grads[i]);
    squares += g * g;
  }
  return std::sqrt(squares);
}
}  // namespace

template <typename T>
void clip_scale(const T* grads, int64_t n, double max_norm, double* scalars, double* norm_sum) {
  const double norm = l2_norm(grads, n);
  scalars[1] = math::clip_scale(norm, max_norm);
  norm_sum[0] += norm;
}

template <typename T>
void add_norm(const T* grads, int64_t n, double* norm_sum) {
  norm_sum[0] += l2_norm(grads, n);
}

template <typename T>
void add_gradients(const T* grads, T* sum, int64_t n) {
  for (int64_t i = 0; i < n; ++i) sum[i] += grads[i];
}

template void clip_scale(const float*, int64_t, double, double*, double*);
template void clip_scale(const double*, int64_t, double, double*, double*);
template void add_norm(const float*, int64_t, double*);
template void add_norm(const double*, int64_t, double*);
template void add_gradients(const float*, float*, int64_t);
template void add_gradients(const double*, double*, int64_t);

}  // namespace mlpx::cpu
