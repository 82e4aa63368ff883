// CPU loop of the Adam / AdamW step (formula in mlpx/math/adam.h). Internal.
#pragma once

#include <cstdint>

#include "math/adam.h"

namespace mlpx::cpu {
// p, g, exp_avg, exp_avg_sq: [n]; t: the number of this step, from 1.
template <typename T>
void adam_step(int64_t n, T* p, const T* g, T* exp_avg, T* exp_avg_sq, const math::AdamHyper& h,
               int64_t t);
}  // namespace mlpx::cpu
