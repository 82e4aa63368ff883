// Launcher of the Adagrad step kernel (kernels/adagrad.cu). Internal.
#pragma once

#include <cstdint>

#include "math/adagrad.h"
#include "mlpx/device.h"

namespace mlpx::cuda {
// One launch: p, g, sum: [n]; step_counter: int32 [2] on the device (kernels/optimizer_step.cuh).
// skip: nullptr, or an int32 on the device; non-zero: the step changes nothing.
void adagrad_step(int64_t n, float* p, const float* g, float* sum, const math::AdagradHyper& h,
                  int32_t* step_counter, const int32_t* skip, Device device);
}  // namespace mlpx::cuda
