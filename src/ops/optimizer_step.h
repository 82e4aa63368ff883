// The Tensor-level optimizer steps (one stem each: src/ops/sgd.cpp, adagrad.cpp, rmsprop.cpp,
// adam.cpp), and what they share: the checks, the step counter and the skip flag. Each step
// is one pass over the flat parameter buffer (one kernel launch on the GPU). Internal.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/check.h"
#include "core/dispatch.h"
#include "math/adagrad.h"
#include "math/adam.h"
#include "math/rmsprop.h"
#include "math/sgd.h"
#include "mlpx/error.h"
#include "mlpx/tensor.h"

namespace mlpx::ops {

// The tensors of one optimizer step, all on one device:
//   params, grads: flat [n], float32 (or float64 on the CPU);
//   state: the optimizer's buffers (flat [n], params' dtype), in the order its step reads them;
//   step_counter: int32 [2]: [0] the steps taken so far (this step is t = [0] + 1), advanced
//     by the step; [1] the GPU kernel's scratch (kernels/optimizer_step.cuh), 0 between steps;
//   skip: undefined (never skip) or int32 [>= 1], read when the step runs: non-zero leaves
//     params, state and step_counter as they were.
struct OptimizerStep {
  Tensor params, grads;
  std::vector<Tensor> state;
  Tensor step_counter, skip;
};

void sgd_step(const OptimizerStep& step, const math::SgdHyper& hyper);          // state: [momentum]
void adagrad_step(const OptimizerStep& step, const math::AdagradHyper& hyper);  // [sum]
void rmsprop_step(const OptimizerStep& step, const math::RmspropHyper& hyper);  // [square_avg]
void adam_step(const OptimizerStep& step, const math::AdamHyper& hyper);  // [exp_avg, exp_avg_sq]

namespace detail {

void check_optimizer_step(std::string_view op, const OptimizerStep& step, size_t state_buffers);

// Checks `step`, then runs on_cuda() on a CUDA device (the kernel reads the counter and the
// skip flag itself), or on the CPU reads the skip flag, runs on_cpu(T{}, t) and advances the
// counter.
template <typename OnCuda, typename OnCpu>
void run_optimizer_step(std::string_view op, const OptimizerStep& step, size_t state_buffers,
                        OnCuda&& on_cuda, OnCpu&& on_cpu) {
  check_optimizer_step(op, step, state_buffers);
  ::mlpx::detail::dispatch(op, step.params, on_cuda, [&](auto zero) {
    if (step.skip.defined() && step.skip.data<int32_t>()[0] != 0) return;
    int32_t* counter = step.step_counter.data<int32_t>();
    on_cpu(zero, static_cast<int64_t>(counter[0]) + 1);
    counter[0] += 1;
  });
}

// Raw pointers for the kernels: buffer i of the state, and the skip flag (nullptr: never).
inline float* state_ptr(const OptimizerStep& step, size_t i) { return step.state[i].data<float>(); }
inline const int32_t* skip_ptr(const OptimizerStep& step) {
  return step.skip.defined() ? step.skip.data<int32_t>() : nullptr;
}

}  // namespace detail
}  // namespace mlpx::ops
