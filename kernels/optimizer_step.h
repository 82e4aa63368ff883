// Launcher of every optimizer's step kernel (kernels/optimizer_step.cu; rules in
// src/math/optimizers.h). Internal.
#pragma once

#include <cstdint>

#include "mlpx/device.h"
#include "mlpx/enums.h"
#include "mlpx/optimizer.h"

namespace mlpx::cuda {

// One launch of `type` at learning rate lr: p, g: [n]; state: the rule's buffers for `config`
// ([n] each); step_counter: int32 [2] on the device, whose first element gives the step number
// t - 1 (kernels/optimizer_step.cuh). skip: nullptr, or an int32 on the device; non-zero: the
// step changes nothing.
void optimizer_step(OptimizerType type, const OptimizerConfig& config, double lr, int64_t n,
                    float* p, const float* g, float* const* state, int32_t* step_counter,
                    const int32_t* skip, Device device);

}  // namespace mlpx::cuda
