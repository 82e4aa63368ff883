// CPU loop of weight initialisation. Internal.
#pragma once

#include <cstdint>

#include "math/init.h"

namespace mlpx::cpu {
template <typename T>
void init_values(T* out, int64_t n, Init init, double scale, uint64_t seed, uint64_t stream);
}  // namespace mlpx::cpu
