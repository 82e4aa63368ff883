// Launcher of the RMSprop step kernel (kernels/rmsprop.cu). Internal.
#pragma once

#include <cstdint>

#include "math/rmsprop.h"
#include "mlpx/device.h"

namespace mlpx::cuda {
// One launch: p, g, square_avg: [n]; step_counter: int32 [2] on the device
// (kernels/optimizer_step.cuh).
// skip: nullptr, or an int32 on the device; non-zero: the step changes nothing.
void rmsprop_step(int64_t n, float* p, const float* g, float* square_avg,
                  const math::RmspropHyper& h, int32_t* step_counter, const int32_t* skip,
                  Device device);
}  // namespace mlpx::cuda
