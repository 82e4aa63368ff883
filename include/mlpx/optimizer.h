// Optimizers over one flat parameter buffer: each step is ONE kernel launch on the GPU,
// whatever the number of layers, and needs no host synchronisation (the step counter lives
// on the device). Update rules match torch.optim (formulas in src/math/<optimizer>.h).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mlpx/enums.h"
#include "mlpx/schedule.h"
#include "mlpx/tensor.h"

namespace mlpx {

// The members and their names: MLPX_OPTIMIZERS in mlpx/enums.h. gd (full batch), sgd (batch 1)
// and mini-batch gd are all "sgd" fed batches of different sizes.
OptimizerType parse_optimizer(const std::string& name);
std::string optimizer_name(OptimizerType type);

struct OptimizerConfig {
  OptimizerType type = OptimizerType::kAdam;
  double lr = 1e-3;
  double beta1 = 0.9;         // adam, adamw
  double beta2 = 0.999;       // adam, adamw
  std::optional<double> eps;  // unset: the torch default of the type (adagrad 1e-10, else 1e-8)
  double alpha = 0.99;        // rmsprop smoothing constant
  double momentum = 0.0;      // sgd
  bool nesterov = false;      // sgd; needs momentum > 0
  double weight_decay = 0.0;  // L2 added to the gradient; decoupled for adamw
  // Which parameters weight_decay applies to: all, or Linear weights only (Optimizer::set_decays).
  Decay decay = Decay::kAll;

  double effective_eps() const;
  // Throws ValueError naming the first field out of its domain.
  void validate() const;
};

// A block of the flat parameter buffer whose gradient is an outer product (a Linear weight
// [rows, cols] after a batch of one row, Sequential::weight_grad_factors):
// g[offset + r * cols + c] = row_factor[r] * col_factor[c]; factors [rows] and [cols].
struct OuterProductGrad {
  int64_t offset = 0;
  Tensor row_factor, col_factor;
};

class Optimizer {
 public:
  // State buffers for `num_params` parameters, zeroed, on `device` in `dtype`.
  Optimizer(const OptimizerConfig& config, int64_t num_params, DType dtype, Device device);

  // params -= update(grads) at learning rate lr. params, grads: flat [num_params], the
  // optimizer's dtype and device. skip: nullptr (never skip), or int32 [1] on the optimizer's
  // device, read when the step runs: non-zero leaves params, state and the step counter as
  // they were. On the CPU steps() then stays put; on the GPU the host cannot know without a
  // synchronisation, so steps() counts the launch until sync_steps() reads the device counter.
  // bf16_params: nullptr, or (float32) [num_params] bits on the optimizer's device the step
  // overwrites with the new params rounded to bfloat16, in the same pass
  // (Sequential::bf16_params_for_step()).
  void step(Tensor& params, const Tensor& grads, double lr, const Tensor* skip = nullptr,
            uint16_t* bf16_params = nullptr);

  // step() with the gradient of each of `outer` (disjoint blocks) formed from its factors
  // inside the update, never stored; grads gives every other element (its values under the
  // blocks are not read). The same bits as step() on the stored products. CPU only
  // (ValueError on a GPU); no skip flag.
  void step_outer(Tensor& params, const Tensor& grads, const std::vector<OuterProductGrad>& outer,
                  double lr);

  // The rate and gradient scale every step reads where it runs: float64 [2] on the optimizer's
  // device, [0] the rate (step() writes its lr there when it changes: on a GPU a copy and a
  // wait, so at most once per epoch, outside a captured step), [1] the factor every gradient is
  // multiplied by before the update (1; clip_grad_norm's scale, written on the device).
  Tensor& step_scalars() { return scalars_; }
  // Steps from now on take their rate (and, with cycle_momentum, sgd's momentum or adam's beta1)
  // from onecycle's plan at the step counter, not from lr. A plan of 0 steps turns it off.
  void set_one_cycle(const OneCyclePlan& plan);
  const OneCyclePlan& one_cycle() const { return one_cycle_; }
  // optimizer.decay "weights": only the parameters in `decayed` (ranges [begin, end) of the flat
  // buffer) take weight_decay; the others step as with weight_decay 0. Empty: every parameter.
  void set_decayed_ranges(const std::vector<std::pair<int64_t, int64_t>>& decayed);

  // Sets steps() from the device's step counter (one small synchronisation on the GPU): call
  // it after steps that may have been skipped or were replayed from a CUDA graph.
  void sync_steps();
  // The same in two halves, for a caller that reads the counter (int32 [1] on the optimizer's
  // device) with other figures in one read-back: the counter, then steps() from its value.
  const Tensor& step_counter() const { return step_counter_; }
  void set_steps(int64_t counted) { steps_ = counted; }

  const OptimizerConfig& config() const { return config_; }
  int64_t steps() const { return steps_; }  // updates taken so far

  // The state buffers, each flat [num_params], named as torch.optim names them:
  // sgd with momentum "momentum_buffer"; adagrad "sum"; rmsprop "square_avg";
  // adam/adamw "exp_avg", "exp_avg_sq". Empty for plain sgd.
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Restores the step count and the buffers (from a checkpoint): names, shapes and dtype
  // must match state(); values are copied.
  void load_state(int64_t steps, const std::vector<std::pair<std::string, Tensor>>& state);

 private:
  OptimizerConfig config_;
  int64_t num_params_;
  DType dtype_;  // of params, grads and every state buffer
  int64_t steps_ = 0;
  // int32 [2] on the optimizer's device: [0] steps taken, read and advanced by the update
  // kernel; [1] blocks of the running launch that have finished. On the CPU [0] is advanced
  // on the host and mirrors steps_.
  Tensor step_counter_;
  std::vector<std::pair<std::string, Tensor>> state_;
  Tensor scalars_;          // float64 [2]: the rate, the gradient scale (step_scalars())
  double scalars_lr_ = -1;  // the rate last written to scalars_[0]
  OneCyclePlan one_cycle_;
  Tensor decays_;  // [num_params] of dtype_: 1 where weight_decay applies, 0 where not; or none

  friend struct OptimizerTestPeer;  // tests read step_counter_
};

}  // namespace mlpx
