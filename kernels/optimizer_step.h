// Launcher of every optimizer's step kernel (kernels/optimizer_step.cu; rules in
// src/math/optimizers.h). Internal.
#pragma once

#include <cstdint>

#include "mlpx/device.h"
#include "mlpx/enums.h"
#include "mlpx/optimizer.h"
#include "mlpx/schedule.h"

namespace mlpx::cuda {

// One launch of `type` at learning rate lr: p, g: [n]; state: the rule's buffers for `config`
// ([n] each); step_counter: int32 [2] on the device, whose first element gives the step number
// t - 1 (kernels/optimizer_step.cuh). skip: nullptr, or an int32 on the device; non-zero: the
// step changes nothing. scalars: nullptr (rate lr, gradient scale 1) or float64 [2] on the
// device, read by the kernel: [0] the rate, [1] the factor of every gradient. cycle: onecycle's
// plan (total_steps 0: none), evaluated at the device's step number. decays: nullptr (every
// parameter decays) or [n] on the device, 0 where weight_decay does not apply. bf16_p: nullptr,
// or [n] on the device that the same pass overwrites with the new p's math::bf16_bits (the bf16
// GEMMs' copy of the weights); a skipped step leaves it as it leaves p.
void optimizer_step(OptimizerType type, const OptimizerConfig& config, double lr, int64_t n,
                    float* p, const float* g, float* const* state, int32_t* step_counter,
                    const int32_t* skip, const double* scalars, const OneCyclePlan& cycle,
                    const float* decays, Device device, uint16_t* bf16_p = nullptr);

}  // namespace mlpx::cuda
