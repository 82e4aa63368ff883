// CPU loop of the SGD step (formula in mlpx/math/sgd.h). Internal.
#pragma once

#include <cstdint>

#include "math/sgd.h"

namespace mlpx::cpu {
// p, g: [n]; momentum_buffer: [n], or null for plain SGD (h.momentum == 0).
template <typename T>
void sgd_step(int64_t n, T* p, const T* g, T* momentum_buffer, const math::SgdHyper& h);
}  // namespace mlpx::cpu
