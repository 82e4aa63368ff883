// CPU loop of the Adagrad step (formula in mlpx/math/adagrad.h). Internal.
#pragma once

#include <cstdint>

#include "math/adagrad.h"

namespace mlpx::cpu {
// p, g, sum: [n].
template <typename T>
void adagrad_step(int64_t n, T* p, const T* g, T* sum, const math::AdagradHyper& h);
}  // namespace mlpx::cpu
