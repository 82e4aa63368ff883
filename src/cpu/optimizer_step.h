// CPU loop of every optimizer's step (rules in src/math/optimizers.h). Internal.
#pragma once

#include <cstdint>

#include "mlpx/enums.h"
#include "mlpx/optimizer.h"
#include "mlpx/schedule.h"

namespace mlpx::cpu {

// One step of `type` at learning rate lr over p, g: [n], and the rule's state buffers
// state[0..buffers) ([n] each; buffers is what the rule keeps for `config`); t: the number of
// this step, from 1. cycle: onecycle's plan (total_steps 0: none) that sets the rate (and
// momentum) of step t in place of lr. Every gradient is multiplied by grad_scale. decays: nullptr
// (weight_decay applies to every parameter), or [n] with 0 where it does not. bf16_p: nullptr, or
// [n] that the step overwrites with the new p's bfloat16 bits (math::bf16_bits), chunk by chunk
// while p is in cache (float32 only).
template <typename T>
void optimizer_step(OptimizerType type, const OptimizerConfig& config, double lr, int64_t n, T* p,
                    const T* g, T* const* state, int64_t t, const OneCyclePlan& cycle, T grad_scale,
                    const T* decays, uint16_t* bf16_p = nullptr);

}  // namespace mlpx::cpu
