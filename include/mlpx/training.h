// Training: the Trainer runs epochs of shuffled mini-batches (forward -> loss -> backward ->
// optimizer step) entirely on the model's device; evaluate() measures loss and accuracy;
// run_training() is the whole `mlpx train` job (data, model, epochs, validation, logs,
// checkpoints, test evaluation) for programs that link the library. Nothing here prints:
// progress reaches the caller through callbacks and return values.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mlpx/config.h"
#include "mlpx/dataset.h"
#include "mlpx/model.h"
#include "mlpx/optimizer.h"

namespace mlpx {

namespace cuda {
class StepGraph;  // a captured training step (CUDA builds only)
}
namespace dist {
class Communicator;        // the ranks of a data-parallel job (src/dist/communicator.h)
class DeviceCommunicator;  // their collectives on a GPU's buffers: NCCL
struct GradientBucket;     // a run of the gradients all-reduced as one call
struct Shard;              // one rank's contiguous part of a range (src/dist/communicator.h)
}  // namespace dist

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
// With `ranks` (every rank holding the same model and data), each rank scores its 1/N of the
// rows and the sums are reduced: every rank gets the whole set's figures.
Evaluation evaluate(const Sequential& model, Loss loss, const Dataset& data, int64_t batch = 4096,
                    dist::Communicator* ranks = nullptr);

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
  bool completed = true;      // false when the progress callback stopped it early
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
  // passes as its TrainerOptions part.
  // Data parallel: with `ranks` of N > 1 (which must outlive the trainer), every rank holds the
  // same data and the same initial model, and every epoch takes the same global shuffle.
  // Rank r runs rows [floor(b r / N), floor(b (r + 1) / N)) of every batch of b rows (the last,
  // short batch included; a rank with no rows contributes a zero gradient); the gradients are
  // summed over the ranks (each already divided by b) before the optimizer step, so every rank
  // applies the same update. The loss and accuracy are reduced once per epoch. Needs
  // batch_size >= N. On a CUDA device, train.collectives decides how the gradients travel:
  // NCCL on the device's stream (the step stays one CUDA graph), or MPI through host copies
  // (the step then runs without a CUDA graph).
  Trainer(TrainerOptions options, Sequential& model, Dataset train,
          dist::Communicator* ranks = nullptr);
  ~Trainer();
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
  int64_t graph_replays() const { return graph_replays_; }
  // Whether the gradients are summed by NCCL on the model's GPU (train.collectives).
  bool reduces_on_device() const { return device_ranks_ != nullptr; }

  int64_t epoch() const { return epoch_; }
  int64_t batch_size() const { return batch_size_; }
  const TrainerOptions& options() const { return options_; }
  // This rank's optimizer: with train.shard_optimizer on N > 1 ranks, its state covers only
  // this rank's shard of the parameters (see dist::shard_of).
  Optimizer& optimizer() { return optimizer_; }
  // The optimizer's whole state, flat [num_params] buffers by torch name, as a checkpoint
  // stores it. Sharded, the ranks' shards are gathered: every rank must call it at the same
  // point (a collective); the buffers are then on the CPU.
  std::vector<std::pair<std::string, Tensor>> optimizer_state();
  // Continues from a checkpoint's counters and (whole) optimizer state; a sharded trainer keeps
  // its shard of it.
  void restore(int64_t epoch, int64_t steps,
               const std::vector<std::pair<std::string, Tensor>>& optimizer_state);

 private:
  void begin_epoch(int64_t batches);
  // This rank's rows of a batch of `rows` rows (all of them alone).
  dist::Shard share_of(int64_t rows) const;
  bool data_parallel() const;
  // One batch of the whole training set on one rank: read in place, not gathered.
  bool reads_whole_set_in_place() const;
  // train.shard_optimizer with ranks to share with (or a one-rank NCCL communicator, whose
  // one shard is the whole buffer).
  bool sharded() const;
  void reduce_gradients();
  // NCCL on several buckets: each bucket's all-reduce starts as soon as its layers' backward is
  // enqueued (train.bucket_mb), and the step waits for them after the whole backward.
  bool overlaps_reduction() const;
  void start_buckets_after(size_t layer);
  void sharded_update(double lr);
  void run_step(int64_t rows, double lr, bool may_replay);
  void enqueue_step(int64_t rows, double lr);
  EpochMetrics finish_epoch(double lr, int64_t first_step, int64_t batches_run, double seconds);

  TrainerOptions options_;
  Sequential& model_;
  Dataset train_;
  dist::Communicator* ranks_;
  std::unique_ptr<dist::DeviceCommunicator> device_ranks_;  // NCCL (train.collectives)
  std::vector<dist::GradientBucket> buckets_;               // with NCCL, last layer's first
  int64_t batch_size_;                                      // the global batch
  int64_t local_capacity_;  // the most rows this rank runs in one step
  Tensor host_grads_;       // a CUDA model's gradients on the host for the MPI all-reduce
  // train.shard_optimizer: this rank's shard of the flat parameters [first, first + count),
  // its reduced gradients (on the model's device), and host copies for the MPI calls.
  int64_t shard_first_ = 0, shard_count_ = 0;
  Tensor grad_shard_, host_grad_shard_, host_params_;
  int64_t epoch_ = 0;
  Optimizer optimizer_;
  Tensor batch_x_, batch_labels_, batch_targets_, row_loss_, grad_;
  double train_target_variance_ = 0.0;  // regression: R^2's baseline on the training set
  // The step's device-side state, so that one enqueued (or captured) step serves every batch:
  // order_ int32 [N] (this epoch's shuffle), position_ int32 [1] (the batch's index in the
  // epoch), loss_scratch_ [1] (the batch loss before it moves to its slot in batch_losses_
  // [batches]), correct_ int32 [1], nonfinite_flag_ int32 [4] (train.on_nonfinite "skip").
  Tensor order_, position_, loss_scratch_, batch_losses_, correct_, nonfinite_flag_;
  std::unique_ptr<cuda::StepGraph> graph_;  // this epoch's captured step, once captured
  bool graph_enabled_ = false;
  int64_t graph_replays_ = 0;
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
  // false: the test split is neither read nor scored (a hyperparameter sweep scores on the
  // validation split only); RunResult::test stays empty.
  bool read_test = true;
};

struct RunResult {
  std::vector<EpochMetrics> epochs;
  Evaluation test;  // samples == 0 when there is no test set
  double seconds = 0.0;
  bool stopped = false;  // on_batch ended the run early (the last checkpoint is the last epoch's)
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
