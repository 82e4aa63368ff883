#include "cpu/init.h"

namespace mlpx::cpu {

template <typename T>
void init_values(T* out, int64_t n, Init init, double scale, uint64_t seed, uint64_t stream) {
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<T>(math::init_value(init, scale, seed, stream, static_cast<uint64_t>(i)));
  }
}

template void init_values(float*, int64_t, Init, double, uint64_t, uint64_t);
template void init_values(double*, int64_t, Init, double, uint64_t, uint64_t);

}  // namespace mlpx::cpu
