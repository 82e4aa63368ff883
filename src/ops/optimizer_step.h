// The Tensor-level optimizer step: one entry for every member of MLPX_OPTIMIZERS (rules in
// src/math/optimizers.h): the checks, the step counter and the skip flag, then one pass over
// the flat parameter buffer (one kernel launch on the GPU). Internal.
#pragma once

#include <cstdint>
#include <vector>

#include "mlpx/optimizer.h"
#include "mlpx/tensor.h"

namespace mlpx::ops {

// The tensors of one optimizer step, all on one device:
//   params, grads: flat [n], float32 (or float64 on the CPU);
//   state: the optimizer's buffers (flat [n], params' dtype), in the order its rule names them;
//   step_counter: int32 [2]: [0] the steps taken so far (this step is t = [0] + 1), advanced
//     by the step; [1] the GPU kernel's scratch (kernels/optimizer_step.cuh), 0 between steps;
//   skip: undefined (never skip) or int32 [>= 1], read when the step runs: non-zero leaves
//     params, state and step_counter as they were.
//   scalars: undefined (rate lr, gradient scale 1) or float64 [2], read when the step runs:
//     [0] the rate, [1] the factor of every gradient (clip_grad_norm's scale);
//   cycle: onecycle's plan (total_steps 0: none): the rate and momentum of step t come from it;
//   decays: undefined (every parameter decays) or [n] of params' dtype, 1 where weight_decay
//     applies and 0 where it does not.
//   bf16_params: nullptr, or (float32) [n] bits on params' device (host memory on the CPU) the
//     step overwrites with the new params rounded to bfloat16 in the same pass (Sequential's
//     copy for its bf16 GEMMs).
struct OptimizerStep {
  Tensor params, grads;
  std::vector<Tensor> state;
  Tensor step_counter, skip;
  Tensor scalars;
  OneCyclePlan cycle;
  Tensor decays;
  uint16_t* bf16_params = nullptr;
};

// The names of the state buffers `config` keeps, as torch.optim names them (sgd with momentum
// "momentum_buffer"; adagrad "sum"; rmsprop "square_avg"; adam/adamw "exp_avg", "exp_avg_sq";
// none for plain sgd).
std::vector<std::string> optimizer_state_names(const OptimizerConfig& config);

// One step of config.type at learning rate lr; `step.state` holds the buffers of
// optimizer_state_names(config), in that order.
void optimizer_step(const OptimizerConfig& config, double lr, const OptimizerStep& step);

}  // namespace mlpx::ops
