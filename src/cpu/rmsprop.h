// CPU loop of the RMSprop step (formula in mlpx/math/rmsprop.h). Internal.
#pragma once

#include <cstdint>

#include "math/rmsprop.h"

namespace mlpx::cpu {
// p, g, square_avg: [n].
template <typename T>
void rmsprop_step(int64_t n, T* p, const T* g, T* square_avg, const math::RmspropHyper& h);
}  // namespace mlpx::cpu
