// CPU loop of every optimizer's step (rules in src/math/optimizers.h). Internal.
#pragma once

#include <cstdint>

#include "mlpx/enums.h"
#include "mlpx/optimizer.h"

namespace mlpx::cpu {

// One step of `type` at learning rate lr over p, g: [n], and the rule's state buffers
// state[0..buffers) ([n] each; buffers is what the rule keeps for `config`); t: the number of
// this step, from 1.
template <typename T>
void optimizer_step(OptimizerType type, const OptimizerConfig& config, double lr, int64_t n, T* p,
                    const T* g, T* const* state, int64_t t);

}  // namespace mlpx::cpu
