// Launcher of the SGD step kernel (kernels/sgd.cu). Internal.
#pragma once

#include <cstdint>

#include "math/sgd.h"
#include "mlpx/device.h"

namespace mlpx::cuda {
// One launch: p, g: [n]; momentum_buffer: [n], or null for plain SGD (h.momentum == 0);
// step_counter: int32 [2] on the device (see kernels/optimizer_step.cuh).
// skip: nullptr, or an int32 on the device; non-zero: the step changes nothing.
void sgd_step(int64_t n, float* p, const float* g, float* momentum_buffer, const math::SgdHyper& h,
              int32_t* step_counter, const int32_t* skip, Device device);
}  // namespace mlpx::cuda
