#include "cpu/nonfinite.h"

#include <cmath>

namespace mlpx::cpu {

template <typename T>
void flag_nonfinite(const T* loss, const T* grads, int64_t n, int32_t* flag) {
  bool bad = !std::isfinite(loss[0]);
  for (int64_t i = 0; i < n && !bad; ++i) bad = !std::isfinite(grads[i]);
  flag[0] = bad ? 1 : 0;
  flag[2] += flag[0];
}

template void flag_nonfinite(const float*, const float*, int64_t, int32_t*);
template void flag_nonfinite(const double*, const double*, int64_t, int32_t*);

}  // namespace mlpx::cpu
