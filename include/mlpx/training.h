// Training: the Trainer runs epochs of shuffled mini-batches (forward -> loss -> backward ->
// optimizer step) entirely on the model's device; evaluate() measures loss and accuracy;
// run_training() is the whole `mlpx train` job (data, model, epochs, validation, logs,
// checkpoints, test evaluation) for programs that link the library.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "mlpx/config.h"
#include "mlpx/dataset.h"
#include "mlpx/model.h"
#include "mlpx/optimizer.h"

namespace mlpx {

struct Evaluation {
  double loss = 0.0;
  double accuracy = 0.0;
  int64_t samples = 0;
};

// Mean loss and accuracy of `model` on `data` (same device), in batches of `batch` rows.
// Touches no gradient buffer. One host synchronisation at the end.
Evaluation evaluate(const Sequential& model, Loss loss, const Dataset& data, int64_t batch = 4096);

struct EpochMetrics {
  int64_t epoch = 0;  // 1-based
  double lr = 0.0;
  double train_loss = 0.0, train_accuracy = 0.0;  // running means over the epoch's batches
  double val_loss = 0.0, val_accuracy = 0.0;      // NaN when there is no validation set
  double samples_per_s = 0.0;
  double elapsed_s = 0.0;     // since the start of training
  int64_t steps = 0;          // optimizer updates so far
  int64_t skipped_steps = 0;  // this epoch's steps skipped by train.on_nonfinite "skip"
};

// Where the host is inside an epoch; passed to the progress callback.
struct BatchProgress {
  int64_t epoch = 0, epochs = 0;   // 1-based epoch of `epochs`
  int64_t batch = 0, batches = 0;  // batches done of the epoch's total
  int64_t samples = 0;             // samples done in this epoch
  double seconds = 0.0;            // since the epoch began
  // Reads the loss of the last finished batch from the device (one small synchronisation):
  // call it only when it will be shown.
  std::function<double()> last_loss;
};

class Trainer {
 public:
  // `model` and `train` must be on one device; the trainer allocates its batch buffers and
  // the optimizer's state there.
  Trainer(const Config& config, Sequential& model, const Dataset& train);

  // Runs epoch number epoch() + 1 at learning rate `lr`, then advances epoch(). No host
  // synchronisation inside, except what `on_progress` asks for. With train.on_nonfinite
  // "stop", throws Error naming the epoch and step when a batch's loss is NaN or Inf (the
  // model is then not usable); with "skip", such steps change nothing and are counted.
  // On a CUDA device with train.cuda_graph, the epoch's full-size steps after the first are
  // replays of one captured CUDA graph (see docs/gpu-speed.md).
  EpochMetrics run_epoch(double lr, const std::function<void(const BatchProgress&)>& on_progress);

  // Steps run as CUDA graph replays so far (0 on the CPU, or with train.cuda_graph false).
  int64_t graph_replays() const { return graph_replays_; }

  int64_t epoch() const { return epoch_; }
  int64_t batch_size() const { return batch_size_; }
  Optimizer& optimizer() { return optimizer_; }
  // Continues from a checkpoint's counters and optimizer state.
  void restore(int64_t epoch, int64_t steps,
               const std::vector<std::pair<std::string, Tensor>>& optimizer_state);

 private:
  const Config& config_;
  Sequential& model_;
  const Dataset& train_;
  int64_t batch_size_;
  int64_t epoch_ = 0;
  Optimizer optimizer_;
  Tensor batch_x_, batch_labels_, batch_targets_, row_loss_, grad_;
  Tensor correct_;  // int32 [1]
  // The GPU step's device-side state, so that a replayed graph works on the next batch:
  // position_ int32 [1] (the batch's index in the epoch), loss_scratch_ [1] (the batch loss
  // before commit_batch_loss moves it to its slot).
  Tensor position_, loss_scratch_;
  Tensor nonfinite_flag_;  // int32 [4] for flag_nonfinite, when on_nonfinite is "skip"
  bool graph_enabled_ = false;
  int64_t graph_replays_ = 0;
};

struct RunOptions {
  std::string resume;           // checkpoint to continue from; empty for a fresh run
  bool progress_bar = false;    // live bar (for a terminal) instead of one line per epoch
  std::ostream* out = nullptr;  // where progress and epoch lines go (nullptr: nowhere)
};

struct RunResult {
  std::vector<EpochMetrics> epochs;
  Evaluation test;  // samples == 0 when there is no test set
  double seconds = 0.0;
};

// The whole training job the config describes. Saves the checkpoint after every epoch (so a
// failure keeps the last good one), writes output.log as JSON lines, and evaluates the test
// set at the end.
RunResult run_training(const Config& config, const RunOptions& options);

}  // namespace mlpx
