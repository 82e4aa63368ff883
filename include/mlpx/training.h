// Training: the Trainer runs epochs of shuffled mini-batches (forward -> loss -> backward ->
// optimizer step) entirely on the model's device; evaluate() measures loss and accuracy;
// run_training() is the whole `mlpx train` job (data, model, epochs, validation, logs,
// checkpoints, test evaluation) for programs that link the library. Nothing here prints:
// progress reaches the caller through callbacks and return values.
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mlpx/checkpoint.h"
#include "mlpx/config.h"
#include "mlpx/dataset.h"
#include "mlpx/model.h"
#include "mlpx/optimizer.h"

namespace mlpx {

// Classification sets are scored by accuracy (r2 and mse NaN), regression sets by R^2 and
// MSE (accuracy NaN).
struct Evaluation {
  double loss = 0.0;
  double accuracy = 0.0;  // fraction of rows whose argmax output is their label
  double r2 = 0.0;        // 1 - MSE / target variance (variance-weighted over the outputs)
  double mse = 0.0;       // mean over rows and outputs of (output - target)^2
  int64_t samples = 0;
  bool regression = false;
};

// Mean loss and accuracy (regression: R^2 and MSE) of `model` on `data` (same device), in
// batches of `batch` rows. Touches no gradient buffer. One host synchronisation at the end.
// (run_training's data-parallel form, where each rank scores its share: src/train/data_parallel.h.)
Evaluation evaluate(const Sequential& model, Loss loss, const Dataset& data, int64_t batch = 4096);

struct EpochMetrics {
  int64_t epoch = 0;  // 1-based
  double lr = 0.0;
  // Means over the epoch's batches run. Classification: accuracy, r2 NaN; regression: r2
  // (from the epoch's MSE and the training set's target variance), accuracy NaN.
  double train_loss = 0.0, train_accuracy = 0.0, train_r2 = 0.0;
  double val_loss = 0.0, val_accuracy = 0.0, val_r2 = 0.0;  // NaN without a validation set
  bool regression = false;
  double samples_per_s = 0.0;
  double elapsed_s = 0.0;     // since the start of training (run_training)
  int64_t steps = 0;          // optimizer updates so far
  int64_t skipped_steps = 0;  // this epoch's steps skipped by train.on_nonfinite "skip"
  int64_t samples = 0;        // training rows this epoch went through
  // train.clip_grad_norm: the mean over this epoch's optimizer steps of the gradients' global L2
  // norm before clipping; NaN without clipping.
  double grad_norm = 0.0;
  // train.layer_grad_norms: per Linear layer (in order), the mean over this epoch's optimizer
  // steps of the L2 norm of the layer's weight gradient before clipping; empty when off.
  std::vector<double> layer_grad_norms;
  bool completed = true;  // false when the progress callback stopped it early
};

// Where the host is inside an epoch; passed to the progress callback after each step.
struct BatchProgress {
  int64_t epoch = 0, epochs = 0;   // 1-based epoch of `epochs`
  int64_t batch = 0, batches = 0;  // batches done of the epoch's total
  int64_t samples = 0;             // samples done in this epoch
  double seconds = 0.0;            // since the epoch began
  // Reads the loss of the last finished batch from the device (one small synchronisation):
  // call it only when it will be shown.
  std::function<double()> last_loss;
};

// Called after each step; returns true to go on, false to end the epoch there.
using ProgressCallback = std::function<bool(const BatchProgress&)>;

class Trainer {
 public:
  // Trains `model` in place (it must outlive the trainer) on `train` (held by value: its
  // tensors are shared handles, so nothing is copied and nothing can dangle). Both on one
  // device; the trainer allocates its batch buffers and the optimizer's state there. A Config
  // passes as its TrainerOptions part. One process alone; run_training's data-parallel trainer
  // (every rank runs its share of each batch, and the gradients are summed over the ranks before
  // the optimizer step) is built by src/train/data_parallel.h.
  Trainer(TrainerOptions options, Sequential& model, Dataset train);
  // The trainer its implementation describes (what src/train/data_parallel.h builds).
  struct Impl;
  explicit Trainer(std::unique_ptr<Impl> impl);
  ~Trainer();
  Trainer(Trainer&&) noexcept;
  Trainer& operator=(Trainer&&) noexcept;
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Runs epoch number epoch() + 1 at learning rate `lr`. No host synchronisation inside,
  // except what `on_progress` asks for. When `on_progress` returns false the epoch ends after
  // that step: the metrics cover the steps run, completed is false and epoch() stays. With
  // train.on_nonfinite "stop", throws Error naming the epoch and step when a batch's loss is
  // NaN or Inf (the model is then not usable); with "skip", such steps change nothing and are
  // counted. On a CUDA device with train.cuda_graph, the epoch's full-size steps after the
  // first are replays of one captured CUDA graph (docs/gpu-speed.md). Every step, on every
  // device, keeps its batch position and its loss slot on the device.
  EpochMetrics run_epoch(double lr, const ProgressCallback& on_progress = nullptr);

  // Steps run as CUDA graph replays so far (0 on the CPU, or with train.cuda_graph false).
  int64_t graph_replays() const;
  // Kernel nodes of the last captured step graph (cudaGraphGetNodes; cuBLAS calls count as the
  // kernels they add), 0 while no step was captured.
  int64_t step_kernel_nodes() const;
  // CUDA graphs captured so far: one per run when nothing a step reads changes between epochs
  // (the rate is in device memory), one per epoch with dropout (its masks' step is an argument).
  int64_t graph_captures() const;
  // Optimizer steps per epoch: the batches, divided by train.accumulate_steps rounded up.
  int64_t steps_per_epoch() const;
  // schedule onecycle: every optimizer step from now on takes its rate (and momentum) from the
  // plan at the optimizer's step counter (mlpx::one_cycle_plan).
  void set_one_cycle(const OneCyclePlan& plan);
  // Whether the gradients are summed by NCCL on the model's GPU (train.collectives).
  bool reduces_on_device() const;

  int64_t epoch() const;
  int64_t batch_size() const;  // the global batch: train.batch_size, or the whole set
  const TrainerOptions& options() const;
  // This rank's optimizer: with train.shard_optimizer on N > 1 ranks, its state covers only
  // this rank's shard of the parameters.
  Optimizer& optimizer();
  // The optimizer's whole state, flat [num_params] buffers by torch name, as a checkpoint
  // stores it. Sharded, the ranks' shards are gathered: every rank must call it at the same
  // point (a collective); the buffers are then on the CPU.
  std::vector<std::pair<std::string, Tensor>> optimizer_state();
  // Continues from a checkpoint's counters and (whole) optimizer state; a sharded trainer keeps
  // its shard of it.
  void restore(int64_t epoch, int64_t steps,
               const std::vector<std::pair<std::string, Tensor>>& optimizer_state);
  // The same from a checkpoint's whole position: with progress.epoch_batch > 0, the next
  // run_epoch continues epoch epoch + 1 at that batch (the same shuffle, dropout masks and
  // metrics as if it had never stopped).
  void restore(const TrainingProgress& progress,
               const std::vector<std::pair<std::string, Tensor>>& optimizer_state);
  // Where training stands, as a checkpoint records it: after a run_epoch that on_progress
  // stopped, part-way through the epoch (epoch_batch > 0); else at an epoch's end.
  TrainingProgress progress() const;

 private:
  std::unique_ptr<Impl> impl_;
};

// What run_training tells its caller as it goes. Every callback may be empty.
struct RunCallbacks {
  // Once, before the first epoch: a description of the job (data, device, batch, optimizer,
  // loss, schedule, the model's summary, and what is being resumed), one item per line.
  std::function<void(const std::vector<std::string>& lines)> on_start;
  // After each step. Data parallel, rank 0's answer is every rank's: false stops all of them
  // after the same step.
  ProgressCallback on_batch;
  std::function<void(const EpochMetrics&)> on_epoch;  // after each epoch and its validation
};

struct RunOptions {
  std::string resume;  // checkpoint to continue from; empty for a fresh run
  // A fresh run's initial weights instead of model.init: a safetensors file of PyTorch's
  // nn.Sequential state_dict() or mlpx's names (load_weights in mlpx/checkpoint.h).
  std::string init_weights;
  RunCallbacks callbacks;
  // The metrics of the epochs before `resume`'s checkpoint (as an earlier RunResult returned
  // them): train.early_stopping and output.keep_best then go on from that history's best epoch
  // and count. Empty: they start afresh at the first epoch run.
  std::vector<EpochMetrics> history;
  // A preemption flag: a signal number that a signal handler stores (0: none). Read between
  // steps; once it is set, the run finishes the step in progress, saves output.checkpoint with
  // its exact position (epoch, batch within the epoch, the epoch's metrics so far; the
  // shuffle and dropout streams are keyed by seed, epoch and batch) and returns with
  // RunResult::signal set. Data parallel, the ranks agree on the step: the flag of any rank
  // stops all of them after the same step, and returns once rank 0 has written; a process
  // that then exits with 128 + the signal's number ends MPI cleanly (finalised, not aborted).
  // Null: not watched.
  const volatile std::sig_atomic_t* stop_signal = nullptr;
  // false: the test split is neither read nor scored (a hyperparameter sweep scores on the
  // validation split only); RunResult::test stays empty.
  bool read_test = true;
};

struct RunResult {
  std::vector<EpochMetrics> epochs;
  Evaluation test;  // samples == 0 when there is no test set
  double seconds = 0.0;
  bool stopped = false;  // on_batch or a signal ended the run early
  // The signal that stopped the run (RunOptions::stop_signal), 0 otherwise; then `position` is
  // where it stopped and `checkpoint` the file that holds that position ("" when
  // output.checkpoint is empty and nothing was saved).
  int signal = 0;
  TrainingProgress position;
  std::string checkpoint;
  // train.early_stopping ended training after the last epoch in `epochs` (whose checkpoint was
  // saved); the run is otherwise whole (the test set is scored).
  bool stopped_early = false;
  // With train.early_stopping or output.keep_best: the best epoch by their metric (history
  // included) and its value; 0 and 0 otherwise.
  int64_t best_epoch = 0;
  double best_value = 0.0;
  // This process's rank of the data-parallel job and the number of ranks (0 and 1 alone).
  // Every rank returns the same figures; rank 0 alone called the callbacks and wrote files.
  int rank = 0, ranks = 1;
  // The trained model (on the config's device; stopped early: as it was then) and what its
  // inputs went through (defined for data.normalize "standardize"): what predictions need.
  std::optional<Sequential> model;
  Standardization standardization;
};

// The whole training job the config describes. Saves the checkpoint after every epoch (so a
// failure keeps the last good one), writes output.log as JSON lines, and evaluates the test
// set at the end.
RunResult run_training(const Config& config, const RunOptions& options = {});

}  // namespace mlpx
