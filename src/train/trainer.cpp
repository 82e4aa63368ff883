#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <utility>

#include "core/log.h"
#include "core/readback.h"
#include "dist/gradient_sync.h"
#include "kernels/graph.h"
#include "math/streams.h"
#include "mlpx/device.h"
#include "mlpx/error.h"
#include "mlpx/loss.h"
#include "mlpx/training.h"
#include "ops/batching.h"
#include "ops/fused_mlp.h"
#include "ops/gradients.h"
#include "ops/nonfinite.h"
#include "train/data_parallel.h"

namespace mlpx {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// batch_size 0 (or anything above the set) means the whole set: full-batch GD.
int64_t effective_batch(int64_t configured, int64_t n) {
  return configured <= 0 || configured > n ? n : configured;
}

// The mean squared error behind a mean loss of mse or sse over rows of `outputs` columns.
double mse_of(Loss loss, double mean_loss, int64_t outputs) {
  return loss == Loss::kSse ? 2.0 * mean_loss / static_cast<double>(outputs) : mean_loss;
}

// What a data set holds, checked against what `loss` reads, before anything runs on it.
void check_data_for_loss(const Dataset& data, Loss loss, int64_t outputs, const char* what) {
  if (data.regression) {
    MLPX_CHECK(loss == Loss::kMse || loss == Loss::kSse, ValueError, what, ": the ", data.name,
               " set holds regression targets, which expect loss mse or sse, found ",
               loss_name(loss));
    MLPX_CHECK(data.targets.defined() && data.targets.rows() == data.size() &&
                   data.targets.cols() == outputs,
               ShapeError, what, ": expected the ", data.name, " set's regression targets [",
               data.size(), ", ", outputs, "], found ",
               data.targets.defined() ? data.targets.describe() : std::string("none"));
    return;
  }
  if (data.per_output) {
    MLPX_CHECK(data.targets.defined() && data.targets.rows() == data.size() &&
                   data.targets.cols() == outputs,
               ShapeError, what, ": expected the ", data.name, " set's per-output targets [",
               data.size(), ", ", outputs, "], found ",
               data.targets.defined() ? data.targets.describe() : std::string("none"));
    return;
  }
  MLPX_CHECK(data.labels.defined() && data.labels.rows() == data.size(), ValueError, what,
             ": expected class labels [", data.size(), "] in the ", data.name, " set, found ",
             data.labels.defined() ? data.labels.describe() : std::string("none"),
             " (for regression targets, set Dataset::regression)");
  MLPX_CHECK(loss_uses_class_labels(loss) || data.targets.defined(), ValueError, what, ": ",
             loss_name(loss), " expects float target rows, found class labels only");
}

}  // namespace

namespace {

// The outputs accuracy counts in a row: each one under per-output (bce) targets, else the row.
int64_t counted_per_row(const Dataset& data, int64_t outputs) {
  return data.per_output ? outputs : 1;
}

// Data-parallel evaluate: this rank scores rows [n r / N, n (r + 1) / N), then the sums of
// the loss and of the correct rows are reduced, so every rank gets the whole set's figures.
Evaluation evaluate_sharded(const Sequential& model, Loss loss, const Dataset& data, int64_t batch,
                            dist::Communicator& ranks) {
  const int64_t n = data.size();
  const dist::Shard mine = dist::shard_of(n, ranks.rank(), ranks.size());
  const int64_t first = mine.first, end = mine.first + mine.count;
  Dataset share = data;
  share.x = data.x.rows(first, end);
  if (data.labels.defined()) share.labels = data.labels.rows(first, end);
  if (data.targets.defined()) share.targets = data.targets.rows(first, end);
  // R^2's baseline is the whole set's, not the share's.
  if (data.regression && std::isnan(share.target_variance)) {
    share.target_variance = target_variance(data.targets);
  }
  Evaluation result =
      end > first ? evaluate(model, loss, share, batch) : evaluate(model, loss, Dataset{}, batch);
  const double share_rows = static_cast<double>(end - first);
  const double loss_sum = ranks.all_reduce_sum(end > first ? result.loss * share_rows : 0.0);
  const double per_row = static_cast<double>(counted_per_row(data, model.outputs()));
  const double correct = ranks.all_reduce_sum(
      end > first && !data.regression ? result.accuracy * share_rows * per_row : 0.0);
  result = Evaluation{};
  result.regression = data.regression;
  result.samples = n;
  result.loss = loss_sum / static_cast<double>(n);
  result.accuracy = result.r2 = result.mse = std::nan("");
  if (data.regression) {
    result.mse = mse_of(loss, result.loss, model.outputs());
    result.r2 = 1.0 - result.mse / share.target_variance;
  } else {
    result.accuracy = std::round(correct) / (static_cast<double>(n) * per_row);
  }
  return result;
}

}  // namespace

Evaluation evaluate(const Sequential& model, Loss loss, const Dataset& data, int64_t batch,
                    dist::Communicator& ranks) {
  if (ranks.size() > 1 && data.size() > 0) return evaluate_sharded(model, loss, data, batch, ranks);
  return evaluate(model, loss, data, batch);
}

Evaluation evaluate(const Sequential& model, Loss loss, const Dataset& data, int64_t batch) {
  Evaluation result;
  result.regression = data.regression;
  const int64_t n = data.size();
  result.loss = result.accuracy = result.r2 = result.mse = std::nan("");
  if (n == 0) return result;
  const Device device = model.device();
  MLPX_CHECK(data.x.device() == device, ShapeError, "evaluate: expected the ", data.name,
             " set on ", device.str(), ", found it on ", data.x.device().str());
  check_data_for_loss(data, loss, model.outputs(), "evaluate");
  batch = std::max<int64_t>(1, std::min(batch, n));
  Tensor total = Tensor::zeros({1}, model.dtype(), device);
  Tensor correct = Tensor::zeros({1}, DType::kInt32, device);
  Tensor row_loss({batch}, model.dtype(), device);
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t end = std::min(n, start + batch);
    const Tensor out = model.predict(data.x.rows(start, end));
    const Tensor target =
        loss_uses_class_labels(loss) ? data.labels.rows(start, end) : data.targets.rows(start, end);
    Tensor rows = row_loss.rows(0, end - start);
    loss_forward_backward(loss, out, target, rows, nullptr);
    accumulate_sum(rows, total);
    if (data.per_output) {
      accumulate_correct_per_output(out, target, correct);
    } else if (!data.regression) {
      accumulate_correct(out, data.labels.rows(start, end), correct);
    }
  }
  result.loss = total.item<double>() / static_cast<double>(n);
  result.samples = n;
  if (data.regression) {
    const double variance =
        std::isnan(data.target_variance) ? target_variance(data.targets) : data.target_variance;
    result.mse = mse_of(loss, result.loss, model.outputs());
    result.r2 = 1.0 - result.mse / variance;
  } else {
    result.accuracy =
        correct.item<double>() / static_cast<double>(n * counted_per_row(data, model.outputs()));
  }
  return result;
}

// The trainer's state. Everything the ranks share lives in sync_ (dist::GradientSync): the step
// below calls it at fixed points and has no branch of its own on MPI, NCCL or the ranks.
struct Trainer::Impl {
  Impl(TrainerOptions options, Sequential& model, Dataset train, dist::Communicator* ranks);

  void begin_epoch(int64_t batches);
  void set_dropout_step(int64_t done);
  Tensor* dropout_step_ptr() { return dropout_step_.defined() ? &dropout_step_ : nullptr; }
  // One batch of the whole training set on one rank: read in place, not gathered.
  bool reads_whole_set_in_place() const;
  EpochMetrics run_epoch(double lr, const ProgressCallback& on_progress);
  void run_step(int64_t rows, double lr, bool may_replay, bool steps);
  void enqueue_step(int64_t rows, double lr, bool steps);
  // Whether batch b (0-based) of an epoch of `batches` ends an accumulation group: the optimizer
  // steps after it.
  bool steps_after(int64_t b, int64_t batches) const;
  int64_t batches_per_epoch() const { return (train_.size() + batch_size_ - 1) / batch_size_; }
  bool forms_weight_grads_in_optimizer() const;
  // Reads the epoch's figures back (its one wait for the device), then times it from `start`.
  EpochMetrics finish_epoch(double lr, int64_t first_step, int64_t batches_run,
                            Clock::time_point start, const TrainingProgress& resumed);

  TrainerOptions options_;
  Sequential& model_;
  Dataset train_;
  int64_t batch_size_;  // the global batch
  Optimizer optimizer_;
  std::unique_ptr<dist::GradientSync> sync_;
  int64_t epoch_ = 0;
  Tensor batch_x_, batch_labels_, batch_targets_, row_loss_, grad_;
  // Sample weights: the batch's rows' weights, and the same normalised to mean 1 (the loss's
  // row_weight); undefined without weights.
  Tensor batch_weights_, row_weight_;
  double train_target_variance_ = 0.0;  // regression: R^2's baseline on the training set
  // The step's device-side state, so that one enqueued (or captured) step serves every batch:
  // order_ int32 [N] (this epoch's shuffle), position_ int32 [1] (the batch's index in the
  // epoch), loss_scratch_ [1] (the batch loss before it moves to its slot in batch_losses_
  // [batches]), correct_ int32 [1], nonfinite_flag_ int32 [4] (train.on_nonfinite "skip").
  Tensor order_, position_, loss_scratch_, batch_losses_, correct_, nonfinite_flag_;
  // The whole set's order (drawn in place each epoch) and the shuffle's device workspace, kept
  // for the run: an epoch's shuffle allocates nothing and waits for nothing.
  Tensor full_order_, shuffle_workspace_;
  std::unique_ptr<cuda::StepGraph> graph_;  // the captured step, once captured
  bool graph_enabled_ = false;
  // Dropout: int32 [1], the run's step (epoch * batches + position) on the device, advanced by
  // each step, which the masks read: one captured step serves every epoch.
  Tensor dropout_step_;
  int64_t graph_replays_ = 0, graph_captures_ = 0;
  int64_t step_kernel_nodes_ = 0;  // of the last captured step
  // train.clip_grad_norm: float64 [1], this epoch's norms before clipping, summed on the device.
  Tensor grad_norm_sum_;
  // train.layer_grad_norms: float64 [num_layers], this epoch's per-layer weight-gradient norms,
  // summed on the device; and where each layer's weight lies in the flat gradient buffer.
  Tensor layer_grad_norm_sums_;
  std::vector<Parameter> layer_weights_;
  Tensor norm_scratch_;  // the norms' first-pass partial sums (GPU)
  // train.accumulate_steps > 1: the gradient sum of the group in progress, flat [num_params].
  Tensor accumulated_;
  // A restored mid-epoch position, taken by the next run_epoch; and where the last run_epoch
  // stopped part-way (epoch_batch 0 when it completed).
  TrainingProgress resume_at_, stopped_at_;
};

Trainer::Impl::Impl(TrainerOptions options, Sequential& model, Dataset train,
                    dist::Communicator* ranks)
    : options_(std::move(options)),
      model_(model),
      train_(std::move(train)),
      batch_size_(effective_batch(options_.train.batch_size, train_.size())),
      optimizer_(options_.optimizer,
                 dist::optimizer_shard(options_.train, model.num_params(), ranks).count,
                 model.dtype(), model.device()) {
  const Device device = model.device();
  MLPX_CHECK(train_.size() > 0, ValueError,
             "training: expected a non-empty training set, found 0 rows");
  MLPX_CHECK(train_.x.device() == device, ShapeError, "training: expected the data on ",
             device.str(), " with the model, found it on ", train_.x.device().str());
  MLPX_CHECK(train_.features() == model.inputs(), ShapeError, "training: expected ", model.inputs(),
             " features (the model's inputs), found ", train_.features());
  check_data_for_loss(train_, options_.loss, model.outputs(), "training");
  std::vector<int64_t> layer_first;
  for (size_t i = 0; i < model.num_layers(); ++i) {
    layer_first.push_back(model.layer_offset(i));
  }
  layer_first.push_back(model.num_params());
  sync_ = std::make_unique<dist::GradientSync>(options_.train, ranks, device, model.dtype(),
                                               layer_first, batch_size_);
  // train.sync_batchnorm: the batch norms sum their statistics over the ranks (every rank's
  // model reaches the same sums in the same order).
  if (options_.train.sync_batchnorm && sync_->data_parallel()) {
    dist::GradientSync* sync = sync_.get();
    model.set_norm_sync([sync](Tensor& buffer) { sync->sum_statistics(buffer); });
  } else {
    model.set_norm_sync(nullptr);
  }
  const int64_t capacity = sync_->local_capacity();
  if (reads_whole_set_in_place()) {
    // The one batch is the training set itself: no copy of it, and no gather each step.
    batch_x_ = train_.x;
    batch_labels_ = train_.labels;
    if (!loss_uses_class_labels(options_.loss)) batch_targets_ = train_.targets;
  } else {
    batch_x_ = Tensor({capacity, model.inputs()}, model.dtype(), device);
    if (train_.labels.defined()) batch_labels_ = Tensor({capacity}, DType::kInt32, device);
    if (!loss_uses_class_labels(options_.loss)) {
      batch_targets_ = Tensor({capacity, model.outputs()}, model.dtype(), device);
    }
  }
  if (!reads_whole_set_in_place()) {
    const int64_t n = train_.size();
    if (options_.train.shuffle) {
      full_order_ = Tensor({n}, DType::kInt32, device);
      shuffle_workspace_ = permutation_workspace(n, device);
    } else {
      full_order_ = identity_indices(n, device);
    }
  }
  if (train_.regression) {
    train_target_variance_ = std::isnan(train_.target_variance) ? target_variance(train_.targets)
                                                                : train_.target_variance;
  }
  if (train_.weights.defined()) {
    MLPX_CHECK(train_.weights.shape() == Shape{train_.size()} &&
                   train_.weights.dtype() == model.dtype() && train_.weights.device() == device,
               ShapeError, "training: expected sample weights [", train_.size(), "] ",
               dtype_name(model.dtype()), " on ", device.str(), ", found ",
               train_.weights.describe());
    // Each rank would need the whole batch's weight sum: not built yet.
    MLPX_CHECK(!sync_->data_parallel(), ValueError,
               "training: sample weights: expected one process, found data-parallel ranks "
               "(weighted batches across ranks are not supported)");
    batch_weights_ =
        reads_whole_set_in_place() ? train_.weights : Tensor({capacity}, model.dtype(), device);
    row_weight_ = Tensor({capacity}, model.dtype(), device);
  }
  row_loss_ = Tensor({capacity}, model.dtype(), device);
  grad_ = Tensor({capacity, model.outputs()}, model.dtype(), device);
  position_ = Tensor::zeros({1}, DType::kInt32, device);
  loss_scratch_ = Tensor::zeros({1}, model.dtype(), device);
  correct_ = Tensor::zeros({1}, DType::kInt32, device);
  if (options_.train.on_nonfinite == NonFinitePolicy::kSkip) {
    nonfinite_flag_ = Tensor::zeros({4}, DType::kInt32, device);
  }
  const TrainConfig& t = options_.train;
  MLPX_CHECK(t.accumulate_steps >= 1, ValueError,
             "training: expected train.accumulate_steps >= 1, found ", t.accumulate_steps);
  MLPX_CHECK(t.clip_grad_norm >= 0, ValueError,
             "training: expected train.clip_grad_norm >= 0, found ", t.clip_grad_norm);
  MLPX_CHECK(!sync_->sharded() || (t.clip_grad_norm == 0 && t.accumulate_steps == 1), ValueError,
             "training: train.shard_optimizer expects train.clip_grad_norm 0 and "
             "train.accumulate_steps 1 (each rank holds only its shard of the gradients), found ",
             t.clip_grad_norm, " and ", t.accumulate_steps);
  if (t.clip_grad_norm > 0) grad_norm_sum_ = Tensor::zeros({1}, DType::kFloat64, device);
  if (t.clip_grad_norm > 0 || t.layer_grad_norms) norm_scratch_ = ops::norm_scratch(device);
  MLPX_CHECK(!sync_->sharded() || !t.layer_grad_norms, ValueError,
             "training: train.shard_optimizer expects train.layer_grad_norms false, found true");
  if (t.layer_grad_norms) {
    const auto layers = static_cast<int64_t>(model.num_layers());
    layer_grad_norm_sums_ = Tensor::zeros({layers}, DType::kFloat64, device);
    for (const Parameter& p : model.parameters()) {
      if (p.kind == ParameterKind::kWeight) layer_weights_.push_back(p);
    }
  }
  if (t.accumulate_steps > 1)
    accumulated_ = Tensor::zeros({model.num_params()}, model.dtype(), device);
  if (options_.optimizer.decay == Decay::kWeights) {
    // Only Linear weights decay; biases and norm parameters form PyTorch's second group. A
    // sharded optimizer holds [first, first + count) of the buffer.
    const dist::Shard shard = dist::optimizer_shard(t, model.num_params(), ranks);
    std::vector<std::pair<int64_t, int64_t>> decayed;
    for (const Parameter& p : model.parameters()) {
      if (p.kind != ParameterKind::kWeight) continue;
      int64_t size = 1;
      for (const int64_t d : p.shape) size *= d;
      const int64_t begin = std::max(p.offset, shard.first) - shard.first;
      const int64_t end = std::min(p.offset + size, shard.first + shard.count) - shard.first;
      if (end > begin) decayed.emplace_back(begin, end);
    }
    // An empty list means "every parameter": a shard without weights decays none.
    if (decayed.empty()) decayed.emplace_back(0, 0);
    optimizer_.set_decayed_ranges(decayed);
  }
  // Accumulation steps on some batches only: plain launches (the same kernels and bits).
  graph_enabled_ =
      device.is_cuda() && t.cuda_graph && sync_->allows_capture() && t.accumulate_steps == 1;
  for (size_t i = 0; i < model.num_layers(); ++i) {
    if (model.layer(i).dropout > 0 && !dropout_step_.defined()) {
      dropout_step_ = Tensor::zeros({1}, DType::kInt32, device);
    }
  }
  // A captured step must allocate nothing: the model's buffers exist from now on.
  model.reserve(capacity);
}

// Full-batch GD alone: the batch is the whole training set, so it is read where it lies, in
// stored order. A shuffle would change only the order of the sums over the rows (the loss mean
// and each weight gradient), not what is summed; its gather copied the whole set into a second
// copy every step (measured on Fashion-MNIST, one thread: 9% more samples/s without it).
bool Trainer::Impl::reads_whole_set_in_place() const {
  return !sync_->data_parallel() && batch_size_ >= train_.size();
}

Trainer::Trainer(TrainerOptions options, Sequential& model, Dataset train)
    : impl_(std::make_unique<Impl>(std::move(options), model, std::move(train), nullptr)) {}

Trainer::Trainer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Trainer data_parallel_trainer(TrainerOptions options, Sequential& model, Dataset train,
                              dist::Communicator* ranks) {
  return Trainer(
      std::make_unique<Trainer::Impl>(std::move(options), model, std::move(train), ranks));
}

Trainer::~Trainer() = default;
Trainer::Trainer(Trainer&&) noexcept = default;
Trainer& Trainer::operator=(Trainer&&) noexcept = default;

EpochMetrics Trainer::run_epoch(double lr, const ProgressCallback& on_progress) {
  return impl_->run_epoch(lr, on_progress);
}
int64_t Trainer::graph_replays() const { return impl_->graph_replays_; }
int64_t Trainer::step_kernel_nodes() const { return impl_->step_kernel_nodes_; }
int64_t Trainer::graph_captures() const { return impl_->graph_captures_; }
int64_t Trainer::steps_per_epoch() const {
  const int64_t k = impl_->options_.train.accumulate_steps;
  return (impl_->batches_per_epoch() + k - 1) / k;
}
void Trainer::set_one_cycle(const OneCyclePlan& plan) { impl_->optimizer_.set_one_cycle(plan); }

bool Trainer::Impl::steps_after(int64_t b, int64_t batches) const {
  const int64_t k = options_.train.accumulate_steps;
  return (b + 1) % k == 0 || b + 1 == batches;
}
bool Trainer::reduces_on_device() const { return impl_->sync_->on_device(); }
int64_t Trainer::epoch() const { return impl_->epoch_; }
int64_t Trainer::batch_size() const { return impl_->batch_size_; }
const TrainerOptions& Trainer::options() const { return impl_->options_; }
Optimizer& Trainer::optimizer() { return impl_->optimizer_; }

std::vector<std::pair<std::string, Tensor>> Trainer::optimizer_state() {
  return impl_->sync_->whole_state(impl_->optimizer_.state(), impl_->model_.num_params());
}

void Trainer::restore(int64_t epoch, int64_t steps,
                      const std::vector<std::pair<std::string, Tensor>>& optimizer_state) {
  impl_->epoch_ = epoch;
  std::vector<std::pair<std::string, Tensor>> on_device;
  for (const auto& [name, buffer] : optimizer_state) {
    // Sharded, this rank keeps its part of the whole state.
    on_device.emplace_back(name, impl_->sync_->state_part(buffer).to(impl_->model_.device()));
  }
  impl_->optimizer_.load_state(steps, on_device);
  impl_->resume_at_ = TrainingProgress{};
  impl_->stopped_at_ = TrainingProgress{};
}

void Trainer::restore(const TrainingProgress& progress,
                      const std::vector<std::pair<std::string, Tensor>>& optimizer_state) {
  restore(progress.epoch, progress.step, optimizer_state);
  if (progress.epoch_batch > 0) impl_->resume_at_ = progress;
}

TrainingProgress Trainer::progress() const {
  TrainingProgress at = impl_->stopped_at_.epoch_batch > 0  ? impl_->stopped_at_
                        : impl_->resume_at_.epoch_batch > 0 ? impl_->resume_at_
                                                            : TrainingProgress{};
  at.epoch = impl_->epoch_;
  at.step = impl_->optimizer_.steps();
  return at;
}

EpochMetrics Trainer::Impl::run_epoch(double lr, const ProgressCallback& on_progress) {
  const auto start = Clock::now();
  const int64_t n = train_.size();
  const int64_t batches = (n + batch_size_ - 1) / batch_size_;
  begin_epoch(batches);
  // A resumed epoch starts at its next batch: the same shuffle (seeded by the epoch), the
  // position on the device where the stopped run left it.
  const TrainingProgress resumed = std::exchange(resume_at_, TrainingProgress{});
  stopped_at_ = TrainingProgress{};
  MLPX_CHECK(resumed.epoch_batch < batches, ValueError, "resume: expected the checkpoint's ",
             "position in epoch ", epoch_ + 1, " below its ", batches, " batches, found batch ",
             resumed.epoch_batch, " (was the batch size or the data changed?)");
  int64_t done = resumed.epoch_batch;
  if (done > 0) {
    position_.copy_from(Tensor::from_vector(std::vector<int32_t>{static_cast<int32_t>(done)}, {1})
                            .to(model_.device()));
    if (dropout_step_.defined()) set_dropout_step(done);
    if (accumulated_.defined() && resumed.accumulated_grads.defined()) {
      accumulated_.copy_from(resumed.accumulated_grads);
    }
    // The norms' sum goes on from the stopped run's, in the same order of additions as the
    // uninterrupted epoch's (the mean of the epoch then has the same bits).
    if (grad_norm_sum_.defined()) {
      grad_norm_sum_.copy_from(
          Tensor::from_vector(std::vector<double>{resumed.grad_norm_sum}, {1}).to(model_.device()));
    }
    if (layer_grad_norm_sums_.defined() && !resumed.layer_grad_norm_sums.empty()) {
      layer_grad_norm_sums_.copy_from(
          Tensor::from_vector(resumed.layer_grad_norm_sums, layer_grad_norm_sums_.shape())
              .to(model_.device()));
    }
  }
  const int64_t first_step = optimizer_.steps() - done;
  while (done < batches) {
    const int64_t rows = std::min(batch_size_, n - done * batch_size_);
    // The epoch's first step runs plainly: it loads every kernel module and lets cuBLAS pick
    // its algorithms outside a capture.
    run_step(rows, lr, /*may_replay=*/done > resumed.epoch_batch, steps_after(done, batches));
    ++done;
    if (!on_progress) continue;
    BatchProgress p;
    p.epoch = epoch_ + 1;
    p.epochs = options_.train.epochs;
    p.batch = done;
    p.batches = batches;
    p.samples = std::min(n, done * batch_size_);
    p.seconds = seconds_since(start);
    // Data parallel: this rank's share of the batch mean, scaled to its rows' own mean.
    const dist::Shard share = sync_->share_of(rows);
    const double to_mean =
        share.count > 0 ? static_cast<double>(rows) / static_cast<double>(share.count) : 0.0;
    p.last_loss = [this, slot = done - 1, to_mean] {
      return batch_losses_.rows(slot, slot + 1).item<double>() * to_mean;
    };
    if (!on_progress(p)) break;
  }
  // The epoch's time covers its device work: finish_epoch reads the figures back (the epoch's
  // one wait for the device) before it takes the time.
  return finish_epoch(lr, first_step, done, start, resumed);
}

// Dropout's step word at batch `done` of this epoch: the epoch's first step plus done, written
// outside any capture (the captured step only advances it).
void Trainer::Impl::set_dropout_step(int64_t done) {
  const int64_t batches = (train_.size() + batch_size_ - 1) / batch_size_;
  const int64_t step = epoch_ * batches + done;
  MLPX_CHECK(step + batches <= (int64_t{1} << 31), ValueError,
             "training: dropout expects fewer than 2^31 steps in a run, found epoch ", epoch_ + 1,
             " ending at step ", step + batches);
  dropout_step_.copy_from(Tensor::from_vector(std::vector<int32_t>{static_cast<int32_t>(step)}, {1})
                              .to(model_.device()));
}

void Trainer::Impl::begin_epoch(int64_t batches) {
  const Device device = model_.device();
  if (reads_whole_set_in_place()) {
    order_ = Tensor();  // the batch is train_ itself, in stored order
  } else {
    if (options_.train.shuffle) {
      random_permutation_into(full_order_, shuffle_workspace_, options_.seed,
                              math::kStreamShuffle + static_cast<uint64_t>(epoch_));
    }
    // Data parallel: this rank's rows of every batch, back to back, into the same buffer every
    // epoch (a captured step reads it where it was); alone, the whole order is full_order_.
    const Tensor local = sync_->local_order(full_order_);
    if (sync_->data_parallel() && order_.defined() && order_.numel() == local.numel()) {
      order_.copy_from(local);
    } else {
      order_ = local;
    }
  }
  // Each batch's mean loss lands in its own slot: read once at the end, it gives the epoch's
  // mean and names the first step whose loss was not finite.
  if (batch_losses_.defined() && batch_losses_.numel() == batches) {
    batch_losses_.fill_zero();
  } else {
    batch_losses_ = Tensor::zeros({batches}, model_.dtype(), device);
  }
  if (grad_norm_sum_.defined()) grad_norm_sum_.fill_zero();
  if (layer_grad_norm_sums_.defined()) layer_grad_norm_sums_.fill_zero();
  if (accumulated_.defined()) accumulated_.fill_zero();
  position_.fill_zero();
  if (dropout_step_.defined()) set_dropout_step(0);
  loss_scratch_.fill_zero();
  correct_.fill_zero();
  if (nonfinite_flag_.defined()) nonfinite_flag_.fill_zero();
  // The rate is in device memory and the order and batch_losses buffers stay: the step
  // captured in one epoch serves the next (with dropout, run_epoch let it go).
}

void Trainer::Impl::run_step(int64_t rows, double lr, bool may_replay, bool steps) {
  if (graph_enabled_ && may_replay && rows == batch_size_ && steps) {
    // A bf16 model's weight copy, made again outside the graph if a write to the parameters
    // (a checkpoint load, say) left it stale: the captured step reads it and keeps it current.
    model_.bf16_params_for_step();
    if (!graph_) {
      auto graph = std::make_unique<cuda::StepGraph>(model_.device());
      std::string why;
      if (graph->capture([&] { enqueue_step(rows, lr, steps); }, why)) {
        step_kernel_nodes_ = graph->kernel_nodes();
        graph_ = std::move(graph);
        ++graph_captures_;
      } else {
        detail::log(LogLevel::kWarning,
                    "CUDA graph capture of the training step failed (" + why +
                        "); continuing with plain launches (train.cuda_graph false silences "
                        "this)");
        graph_enabled_ = false;
      }
    }
    if (graph_) {
      graph_->launch();
      ++graph_replays_;
      return;
    }
  }
  enqueue_step(rows, lr, steps);
}

// A batch of one row on the CPU, alone: each weight's gradient is an outer product, which the
// optimizer forms inside its update (Optimizer::step_outer) instead of the backward pass
// writing it and the optimizer reading it back; the same bits. Not where anything else reads
// the whole gradient (several ranks, the non-finite check, clipping's norm, accumulation) or a
// GEMM rounds its inputs (bf16); with every parameter decaying alike, at the epoch's rate.
bool Trainer::Impl::forms_weight_grads_in_optimizer() const {
  return model_.device().is_cpu() && batch_size_ == 1 && !sync_->data_parallel() &&
         !nonfinite_flag_.defined() && model_.precision() == Precision::kFp32 &&
         !grad_norm_sum_.defined() && !layer_grad_norm_sums_.defined() && !accumulated_.defined() &&
         optimizer_.config().decay == Decay::kAll && optimizer_.one_cycle().total_steps == 0;
}

// One training step whose batch position lives on the device (position_), so that the same
// enqueued work serves every batch of one size, on the CPU as on the GPU, launched plainly or
// replayed from a graph: same kernels, same order, same bits.
void Trainer::Impl::enqueue_step(int64_t rows, double lr, bool steps) {
  // Alone, a rank's share is the whole batch; data parallel, its rows of it (see share_of).
  const int64_t local = sync_->share_of(rows).count;
  const int64_t stride = sync_->share_of(batch_size_).count;
  // A fused forward with the loss may also end the step (the loss's sum and commit in its last
  // block) where nothing reads the batch loss before the commit (the non-finite check does).
  // Elsewhere the batch loss's sum waits for the commit, one kernel for both (row_losses), unless
  // the non-finite check reads the sum first.
  bool committed = false;
  Tensor row_losses;
  const auto commit = [&] {
    if (committed) return;
    if (row_losses.defined()) {
      sum_and_commit_batch_loss(row_losses, 1.0 / static_cast<double>(rows), loss_scratch_,
                                batch_losses_, position_, dropout_step_ptr());
    } else {
      commit_batch_loss(loss_scratch_, batch_losses_, position_, dropout_step_ptr());
    }
  };
  if (local > 0) {
    Tensor x = batch_x_.rows(0, local), labels, target;
    const bool gathers = !reads_whole_set_in_place();
    // A fused model computes the cross-entropy, its gradient and the correct count in its
    // forward kernel, which reads the labels through the order itself: no gather for them.
    const bool fused_loss = options_.loss == Loss::kCrossEntropy && batch_labels_.defined() &&
                            !train_.per_output && model_.fuses_cross_entropy();
    const bool labels_in_forward = fused_loss && gathers;
    if (gathers) gather_batch(train_.x, order_, position_, stride, x);
    if (batch_labels_.defined()) {
      labels = target = batch_labels_.rows(0, local);
      if (gathers && !labels_in_forward) {
        gather_batch(train_.labels, order_, position_, stride, labels);
      }
    }
    if (batch_targets_.defined()) {
      target = batch_targets_.rows(0, local);
      if (gathers) gather_batch(train_.targets, order_, position_, stride, target);
    }
    // Dropout masks of global step epoch * batches + position (dropout_step_, read on the device:
    // one captured step serves the run): each step its own, the same again after a resume; a
    // rank draws its rows' part.
    DropoutStep step;
    step.seed = options_.seed;
    step.step = 0;
    step.step_offset = dropout_step_;  // epoch * batches + position, on the device
    step.first_row = sync_->share_of(rows).first;
    step.batch_rows = rows;
    Tensor row_loss = row_loss_.rows(0, local), grad = grad_.rows(0, local), row_weight;
    if (batch_weights_.defined()) {
      Tensor weights = batch_weights_.rows(0, local);
      if (gathers) gather_batch(train_.weights, order_, position_, stride, weights);
      row_weight = row_weight_.rows(0, local);
      normalize_row_weights(weights, row_weight);
    }
    // Divided by the whole batch's rows: the ranks' gradients and losses add up to the batch's.
    // Accumulating k batches, each gradient is that of loss / k (a PyTorch loop's), the last
    // short group's included.
    const int64_t grad_rows = rows * options_.train.accumulate_steps;
    // (fused_loss: no loss or metric kernel of their own.)
    const bool loss_in_forward = fused_loss;
    Tensor out;
    if (loss_in_forward) {
      FusedCrossEntropy loss;
      loss.labels = labels;
      loss.row_loss = row_loss;
      loss.grad = grad;
      loss.correct = correct_;
      loss.row_weight = row_weight;
      loss.grad_rows = grad_rows;
      loss.label_smoothing = options_.label_smoothing;
      if (labels_in_forward) {
        loss.labels = train_.labels;
        loss.order = order_;
        loss.position = position_;
        loss.stride = stride;
      }
      if (!nonfinite_flag_.defined()) {
        loss.position = position_;
        loss.loss_sum = loss_scratch_;
        loss.batch_losses = batch_losses_;
        if (Tensor* run_step = dropout_step_ptr()) loss.run_step = *run_step;
        loss.loss_scale = 1.0 / static_cast<double>(rows);
        committed = true;
      }
      out = model_.forward(x, step, loss);
    } else {
      out = model_.forward(x, step);
      loss_forward_backward(options_.loss, out, target, row_loss, &grad, grad_rows,
                            row_weight.defined() ? &row_weight : nullptr, options_.label_smoothing);
      if (labels.defined()) accumulate_correct(out, labels, correct_);
    }
    if (!committed && nonfinite_flag_.defined()) {
      accumulate_sum(row_loss, loss_scratch_, 1.0 / static_cast<double>(rows));
    } else if (!committed) {
      row_losses = row_loss;  // summed by the commit
    }
    if (train_.per_output) accumulate_correct_per_output(out, target, correct_);
    if (forms_weight_grads_in_optimizer()) {
      model_.backward_outer(grad);
      std::vector<OuterProductGrad> outer;
      for (size_t i = 0; i < model_.num_layers(); ++i) {
        const auto [dz, below] = model_.weight_grad_factors(i);
        outer.push_back({model_.layer_offset(i), dz, below});
      }
      optimizer_.step_outer(model_.params(), model_.grads(), outer, lr);
      commit();
      return;
    }
    // The gradients' sum over the ranks may start while the backward pass runs.
    model_.backward(grad, sync_->after_layer(model_.grads()));
  } else {
    model_.grads().fill_zero();  // a short last batch left this rank no rows
    DropoutStep step;
    step.batch_rows = rows;
    model_.norm_sync_without_rows(step);  // the other ranks' batch-norm sums wait for this one
  }
  if (sync_->sharded()) {
    sync_->sharded_update(model_.params(), model_.grads(),
                          [&](Tensor& params_shard, const Tensor& grad_shard) {
                            optimizer_.step(params_shard, grad_shard, lr, nullptr);
                          });
    commit();
    return;
  }
  sync_->sum_gradients(model_.grads());
  // The gradient the optimizer takes: this batch's, or the sum of the group's batches.
  Tensor& grads = accumulated_.defined() ? accumulated_ : model_.grads();
  if (accumulated_.defined()) ops::add_gradients(model_.grads(), accumulated_);
  if (!steps) {
    commit();
    return;
  }
  const bool skip_nonfinite = nonfinite_flag_.defined();
  if (skip_nonfinite) flag_nonfinite(loss_scratch_, grads, nonfinite_flag_);
  // The norm of the summed (all-reduced) gradient; the optimizer reads the scale on the device.
  if (grad_norm_sum_.defined()) {
    ops::clip_scale(grads, options_.train.clip_grad_norm, optimizer_.step_scalars(), grad_norm_sum_,
                    norm_scratch_);
  }
  // Each layer's weight-gradient norm, before clipping (the optimizer applies the scale).
  for (size_t i = 0; i < layer_weights_.size(); ++i) {
    const Parameter& w = layer_weights_[i];
    const int64_t numel = w.shape.at(0) * w.shape.at(1);
    const auto layer = static_cast<int64_t>(i);
    Tensor layer_sum = layer_grad_norm_sums_.rows(layer, layer + 1);
    ops::add_norm(grads.rows(w.offset, w.offset + numel), layer_sum, norm_scratch_);
  }
  // A bf16 CPU model's weight copy for its GEMMs is written in the update's pass.
  uint16_t* bf16_params = model_.bf16_params_for_step();
  optimizer_.step(model_.params(), grads, lr, skip_nonfinite ? &nonfinite_flag_ : nullptr,
                  bf16_params);
  model_.bf16_params_written();
  if (accumulated_.defined()) accumulated_.fill_zero();
  commit();
}

// The epoch's one read-back: the batch losses, the correct count and the skip count.
EpochMetrics Trainer::Impl::finish_epoch(double lr, int64_t first_step, int64_t batches_run,
                                         Clock::time_point start, const TrainingProgress& resumed) {
  const int64_t n = train_.size();
  const int64_t batches = batch_losses_.numel();
  const int64_t samples = std::min(n, batches_run * batch_size_);
  // One read-back for all of the epoch's figures: the batch losses, the correct count, the
  // skipped steps and the optimizer's step counter (on a GPU, one wait for the device).
  const bool counts_correct = batch_labels_.defined() || train_.per_output;
  const bool skip_nonfinite = nonfinite_flag_.defined();
  std::vector<float> losses_f32(batch_losses_.dtype() == DType::kFloat32 ? batches : 0);
  std::vector<double> losses(static_cast<size_t>(batches));
  int32_t correct_read = 0, skipped_read = 0, steps_read = 0;
  std::vector<HostRead> reads = {
      {batch_losses_, losses_f32.empty() ? static_cast<void*>(losses.data())
                                         : static_cast<void*>(losses_f32.data())},
      {optimizer_.step_counter().rows(0, 1), &steps_read}};
  if (counts_correct) reads.push_back({correct_, &correct_read});
  if (skip_nonfinite) reads.push_back({nonfinite_flag_.rows(2, 3), &skipped_read});
  double norm_read = 0.0;
  if (grad_norm_sum_.defined()) reads.push_back({grad_norm_sum_, &norm_read});
  std::vector<double> layer_sums(
      layer_grad_norm_sums_.defined() ? static_cast<size_t>(layer_grad_norm_sums_.numel()) : 0);
  if (!layer_sums.empty()) reads.push_back({layer_grad_norm_sums_, layer_sums.data()});
  read_to_host(reads);
  const double seconds = seconds_since(start);
  if (!losses_f32.empty()) losses.assign(losses_f32.begin(), losses_f32.end());
  optimizer_.set_steps(steps_read);
  double correct = counts_correct ? static_cast<double>(correct_read) : 0.0;
  sync_->sum_epoch(losses, correct);
  const int64_t skipped = resumed.skipped + (skip_nonfinite ? skipped_read : 0);
  // The batches run before the stop count as the uninterrupted epoch counted them.
  std::copy(resumed.batch_losses.begin(), resumed.batch_losses.end(), losses.begin());
  correct += resumed.correct;
  double weighted = 0.0;
  int64_t counted = 0;
  for (int64_t b = 0; b < batches_run; ++b) {
    const int64_t rows = std::min(n, (b + 1) * batch_size_) - b * batch_size_;
    // A skipped step's loss may be NaN or Inf: it stays out of the epoch's mean.
    if (skip_nonfinite && !std::isfinite(losses[b])) continue;
    MLPX_CHECK(std::isfinite(losses[b]), Error, "training diverged: the loss is ", losses[b],
               " at epoch ", epoch_ + 1, ", step ", first_step + b + 1, " (batch ", b + 1, " of ",
               batches, "); try a smaller learning rate");
    weighted += losses[b] * static_cast<double>(rows);
    counted += rows;
  }
  EpochMetrics m;
  m.completed = batches_run == batches;
  // clip_grad_norm: the mean norm over the epoch's optimizer steps (those of a resumed part too).
  m.grad_norm = std::nan("");
  const double norm_sum = norm_read;  // a resumed epoch's sum started from the stopped run's
  int64_t optimizer_steps = 0;
  for (int64_t b = 0; b < batches_run; ++b) optimizer_steps += steps_after(b, batches) ? 1 : 0;
  if (grad_norm_sum_.defined() && optimizer_steps > 0) {
    m.grad_norm = norm_sum / static_cast<double>(optimizer_steps);
  }
  if (optimizer_steps > 0) {
    for (const double sum : layer_sums) {
      m.layer_grad_norms.push_back(sum / static_cast<double>(optimizer_steps));
    }
  }
  if (!m.completed) {
    stopped_at_.epoch_batch = batches_run;
    stopped_at_.batch_losses.assign(losses.begin(), losses.begin() + batches_run);
    stopped_at_.correct = correct;
    stopped_at_.skipped = skipped;
    stopped_at_.grad_norm_sum = norm_sum;
    stopped_at_.layer_grad_norm_sums = layer_sums;
    // A group cut short: its gradients so far go with the position.
    stopped_at_.accumulated_grads = Tensor();
    if (accumulated_.defined() && !steps_after(batches_run - 1, batches)) {
      stopped_at_.accumulated_grads = accumulated_.clone().to(Device::cpu());
    }
  }
  if (m.completed) ++epoch_;
  m.epoch = epoch_ + (m.completed ? 0 : 1);
  m.lr = lr;
  m.train_loss = counted > 0 ? weighted / static_cast<double>(counted) : std::nan("");
  m.regression = train_.regression;
  m.train_accuracy = m.train_r2 = m.val_loss = m.val_accuracy = m.val_r2 = std::nan("");
  if (m.regression) {
    m.train_r2 =
        1.0 - mse_of(options_.loss, m.train_loss, model_.outputs()) / train_target_variance_;
  } else {
    m.train_accuracy =
        correct / static_cast<double>(samples * counted_per_row(train_, model_.outputs()));
  }
  m.samples = samples;
  m.samples_per_s = static_cast<double>(samples) / std::max(seconds, 1e-9);
  m.steps = optimizer_.steps();
  m.skipped_steps = skipped;
  return m;
}

}  // namespace mlpx
