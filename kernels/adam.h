// Launcher of the Adam / AdamW step kernel (kernels/adam.cu). Internal.
#pragma once

#include <cstdint>

#include "math/adam.h"
#include "mlpx/device.h"

namespace mlpx::cuda {
// One launch: p, g, exp_avg, exp_avg_sq: [n]; step_counter: int32 [2] on the device, whose
// first element gives the step number t - 1 (kernels/optimizer_step.cuh).
// skip: nullptr, or an int32 on the device; non-zero: the step changes nothing.
void adam_step(int64_t n, float* p, const float* g, float* exp_avg, float* exp_avg_sq,
               const math::AdamHyper& h, int32_t* step_counter, const int32_t* skip, Device device);
}  // namespace mlpx::cuda
