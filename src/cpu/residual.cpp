#include "cpu/residual.h"

#include "math/residual.h"

namespace mlpx::cpu {

template <typename T>
void residual_add(const T* x, const T* y, T* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = math::residual_sum(x[i], y[i]);
}

template void residual_add(const float*, const float*, float*, int64_t);
template void residual_add(const double*, const double*, double*, int64_t);

}  // namespace mlpx::cpu
