// Checkpoints in the safetensors format (docs/checkpoints.md): tensors
// layers.{i}.weight [out, in] and layers.{i}.bias [out]; the optimizer's state as
// optimizer.{state}.layers.{i}.weight / .bias; __metadata__ with the config JSON, the step
// and epoch counters and the generator state. Writes are atomic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mlpx/config.h"
#include "mlpx/dataset.h"
#include "mlpx/model.h"
#include "mlpx/optimizer.h"

namespace mlpx {

struct TrainingProgress {
  int64_t epoch = 0;  // epochs completed
  int64_t step = 0;   // optimizer updates taken
  // A checkpoint written part-way through epoch epoch + 1 (run_training stopped by a
  // preemption signal): the batches of that epoch done, and what the epoch's metrics need of
  // them, so that the resumed epoch reports what the uninterrupted one would have. 0 and empty
  // at an epoch's end. batch_losses [epoch_batch]: each batch's mean loss (summed over ranks).
  int64_t epoch_batch = 0;
  std::vector<double> batch_losses;
  double correct = 0.0;        // rows of those batches classified correctly (all ranks)
  int64_t skipped = 0;         // of those steps, how many train.on_nonfinite "skip" skipped
  double grad_norm_sum = 0.0;  // train.clip_grad_norm: those steps' norms before clipping, summed
  // train.layer_grad_norms: those steps' per-layer weight-gradient norms, summed [num_layers]
  std::vector<double> layer_grad_norm_sums;
  // train.accumulate_steps: the gradient sum of a group that the stop cut short (flat
  // [num_params], float32 on the CPU); undefined at a group's end.
  Tensor accumulated_grads{};
};

// Saves `model` (and the optimizer's state when given) with `config` and `progress`; a
// defined `standardization` is saved as input.shift / input.scale [features].
void save_checkpoint(const std::string& path, const Sequential& model, const Optimizer* optimizer,
                     const Config& config, const TrainingProgress& progress,
                     const Standardization& standardization = {});
// The same with the optimizer's state given as flat [num_params] buffers by torch name (a
// data-parallel trainer's, gathered from the ranks' shards: Trainer::optimizer_state()).
void save_checkpoint(const std::string& path, const Sequential& model, OptimizerType optimizer,
                     const std::vector<std::pair<std::string, Tensor>>& optimizer_state,
                     const Config& config, const TrainingProgress& progress,
                     const Standardization& standardization = {});

struct Checkpoint {
  Config config;
  TrainingProgress progress;
  Sequential model;  // on the CPU, float32, its parameters loaded
  // Flat [num_params] buffers by torch name ("exp_avg", ...); empty when none were saved.
  std::vector<std::pair<std::string, Tensor>> optimizer_state;
  Standardization standardization;  // defined when the model was trained on standardized data
};

// Reads and validates everything (format, names, shapes, dtypes, metadata) before building
// anything; IoError naming the file and the problem.
Checkpoint load_checkpoint(const std::string& path);

// Sets `model`'s weights and biases (any device) from a safetensors file of float32 or
// float64 tensors named as PyTorch's nn.Sequential(Linear, activation, Linear, ...)
// .state_dict() names them ('0.weight' [out, in], '0.bias' [out], '2.weight', ...: the Linear
// modules in increasing index order are the model's layers 0, 1, ...), or as mlpx does
// ('layers.{i}.weight'), under one optional prefix ('net.0.weight'). An mlpx checkpoint works
// too: its optimizer state and input statistics are not read. IoError naming the file and the
// first tensor that is unexpected, missing or of the wrong shape; the model is then unchanged.
// A model with a norm or a Linear without a bias takes its weights by the names of its
// checkpoints instead (load_named_tensors below): every parameter, and optionally the batch
// norms' statistics (an mlpx checkpoint of the same model, or a state dict saved under those
// names).
void load_weights(Sequential& model, const std::string& path);

// Sets `model`'s parameters (any device), and its batch norms' running statistics when given,
// from CPU tensors named as its checkpoints name them: every name of parameters()
// (layers.{i}.weight [out, in], layers.{i}.bias [out] where the layer has one,
// layers.{i}.norm.weight and .norm.bias [out]), float32 or float64; and either none or all of
// the buffers (layers.{i}.norm.running_mean and .running_var [out], float32 or float64;
// .num_batches_tracked, int32 [1] or [], as torch's scalar) — none: they keep their values.
// `source` starts each error. IoError naming the first tensor unexpected, given twice,
// missing or of the wrong shape or dtype; the model is then unchanged.
void load_named_tensors(Sequential& model,
                        const std::vector<std::pair<std::string, Tensor>>& tensors,
                        const std::string& source);

}  // namespace mlpx
