#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

#include "mlpx/batching.h"
#include "mlpx/error.h"
#include "mlpx/loss.h"
#include "mlpx/math/streams.h"
#include "mlpx/training.h"
#if MLPX_WITH_CUDA
#include "cuda/check.h"
#include "cuda/runtime.h"
#endif

namespace mlpx {

namespace {

#if MLPX_WITH_CUDA
// One training step captured from the device's stream and replayed with one launch. Rules
// for what the captured code may do: docs/gpu-speed.md ("Graph capture").
class StepGraph {
 public:
  explicit StepGraph(cudaStream_t stream) : stream_(stream) {}
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;
  ~StepGraph() {
    if (exec_ != nullptr) {
      // A replay may still be running: it must finish before its graph goes.
      MLPX_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(stream_));
      MLPX_CUDA_CHECK_NOTHROW(cudaGraphExecDestroy(exec_));
    }
  }

  // Records what `body` enqueues on the stream (nothing runs). On a CUDA error the capture is
  // abandoned, the stream left usable, and false returned with the reason in `why`; other
  // exceptions (shape checks) propagate after the same clean-up.
  template <typename Body>
  bool capture(const Body& body, std::string& why) {
    MLPX_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    try {
      body();
    } catch (const CudaError& e) {
      abandon();
      why = e.what();
      return false;
    } catch (...) {
      abandon();
      throw;
    }
    cudaGraph_t graph = nullptr;
    cudaError_t status = cudaStreamEndCapture(stream_, &graph);
    if (status == cudaSuccess) status = cudaGraphInstantiate(&exec_, graph, 0);
    if (graph != nullptr) cudaGraphDestroy(graph);
    if (status != cudaSuccess) {
      cudaGetLastError();
      exec_ = nullptr;
      why = cudaGetErrorString(status);
      return false;
    }
    return true;
  }

  void launch() { MLPX_CUDA_CHECK(cudaGraphLaunch(exec_, stream_)); }
  bool ready() const { return exec_ != nullptr; }

 private:
  void abandon() noexcept {
    cudaGraph_t graph = nullptr;
    cudaStreamEndCapture(stream_, &graph);
    if (graph != nullptr) cudaGraphDestroy(graph);
    cudaGetLastError();  // the capture's error is reported by the caller, not left sticky
  }

  cudaStream_t stream_;
  cudaGraphExec_t exec_ = nullptr;
};
#endif

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// batch_size 0 (or anything above the set) means the whole set: full-batch GD.
int64_t effective_batch(int64_t configured, int64_t n) {
  return configured <= 0 || configured > n ? n : configured;
}

}  // namespace

Evaluation evaluate(const Sequential& model, Loss loss, const Dataset& data, int64_t batch) {
  Evaluation result;
  const int64_t n = data.size();
  if (n == 0) {
    result.loss = result.accuracy = std::nan("");
    return result;
  }
  const Device device = model.device();
  MLPX_CHECK(data.x.device() == device, ShapeError, "evaluate: expected the ", data.name,
             " set on ", device.str(), ", found it on ", data.x.device().str());
  batch = std::max<int64_t>(1, std::min(batch, n));
  Tensor total = Tensor::zeros({1}, model.dtype(), device);
  Tensor correct = Tensor::zeros({1}, DType::kInt32, device);
  Tensor row_loss({batch}, model.dtype(), device);
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t end = std::min(n, start + batch);
    const Tensor out = model.predict(data.x.rows(start, end));
    const Tensor labels = data.labels.rows(start, end);
    const Tensor target = loss_uses_class_labels(loss) ? labels : data.targets.rows(start, end);
    Tensor rows = row_loss.rows(0, end - start);
    loss_forward_backward(loss, out, target, rows, nullptr);
    accumulate_sum(rows, total);
    accumulate_correct(out, labels, correct);
  }
  const double sum =
      model.dtype() == DType::kFloat64 ? total.to_vector<double>()[0] : total.to_vector<float>()[0];
  result.loss = sum / static_cast<double>(n);
  result.accuracy = correct.to_vector<int32_t>()[0] / static_cast<double>(n);
  result.samples = n;
  return result;
}

Trainer::Trainer(const Config& config, Sequential& model, const Dataset& train)
    : config_(config),
      model_(model),
      train_(train),
      batch_size_(effective_batch(config.train.batch_size, train.size())),
      optimizer_(config.optimizer, model.num_params(), model.dtype(), model.device()) {
  const Device device = model.device();
  MLPX_CHECK(train.size() > 0, ValueError,
             "training: expected a non-empty training set, found 0 rows");
  MLPX_CHECK(train.x.device() == device, ShapeError, "training: expected the data on ",
             device.str(), " with the model, found it on ", train.x.device().str());
  MLPX_CHECK(train.features() == model.inputs(), ShapeError, "training: expected ", model.inputs(),
             " features (the model's inputs), found ", train.features());
  batch_x_ = Tensor({batch_size_, model.inputs()}, model.dtype(), device);
  batch_labels_ = Tensor({batch_size_}, DType::kInt32, device);
  if (!loss_uses_class_labels(config.loss)) {
    MLPX_CHECK(train.targets.defined(), ValueError, "training: ", loss_name(config.loss),
               " expects float target rows, found class labels only");
    batch_targets_ = Tensor({batch_size_, model.outputs()}, model.dtype(), device);
  }
  row_loss_ = Tensor({batch_size_}, model.dtype(), device);
  grad_ = Tensor({batch_size_, model.outputs()}, model.dtype(), device);
  correct_ = Tensor::zeros({1}, DType::kInt32, device);
  if (config.train.on_nonfinite == "skip") {
    nonfinite_flag_ = Tensor::zeros({4}, DType::kInt32, device);
  }
  if (device.is_cuda()) {
    position_ = Tensor::zeros({1}, DType::kInt32, device);
    loss_scratch_ = Tensor::zeros({1}, model.dtype(), device);
    graph_enabled_ = config.train.cuda_graph;
    // A captured step must allocate nothing: the model's buffers exist from now on.
    model.reserve(batch_size_);
  }
}

void Trainer::restore(int64_t epoch, int64_t steps,
                      const std::vector<std::pair<std::string, Tensor>>& optimizer_state) {
  epoch_ = epoch;
  std::vector<std::pair<std::string, Tensor>> on_device;
  for (const auto& [name, buffer] : optimizer_state) {
    on_device.emplace_back(name, buffer.to(model_.device()));
  }
  optimizer_.load_state(steps, on_device);
}

EpochMetrics Trainer::run_epoch(double lr,
                                const std::function<void(const BatchProgress&)>& on_progress) {
  const auto start = std::chrono::steady_clock::now();
  const Device device = model_.device();
  const int64_t n = train_.size();
  const int64_t batches = (n + batch_size_ - 1) / batch_size_;
  const int64_t first_step = optimizer_.steps();
  const Tensor order =
      config_.train.shuffle
          ? random_permutation(n, config_.seed,
                               math::kStreamShuffle + static_cast<uint64_t>(epoch_), device)
          : identity_indices(n, device);
  // Each batch's mean loss lands in its own slot: read once at the end, it gives the epoch's
  // mean and names the first step whose loss was not finite.
  Tensor batch_losses = Tensor::zeros({batches}, model_.dtype(), device);
  correct_.fill_zero();

  const bool skip_nonfinite = nonfinite_flag_.defined();
  if (skip_nonfinite) nonfinite_flag_.fill_zero();
  Tensor* skip_flag = skip_nonfinite ? &nonfinite_flag_ : nullptr;

  // The CPU step: batch b's rows and loss slot are known to the host.
  auto cpu_step = [&](int64_t b, int64_t rows) {
    const int64_t begin = b * batch_size_;
    const Tensor index = order.rows(begin, begin + rows);
    Tensor x = batch_x_.rows(0, rows), labels = batch_labels_.rows(0, rows);
    gather_rows(train_.x, index, x);
    gather_rows(train_.labels, index, labels);
    Tensor target = labels;
    if (batch_targets_.defined()) {
      target = batch_targets_.rows(0, rows);
      gather_rows(train_.targets, index, target);
    }
    const Tensor out = model_.forward(x);
    Tensor row_loss = row_loss_.rows(0, rows), grad = grad_.rows(0, rows);
    loss_forward_backward(config_.loss, out, target, row_loss, &grad);
    Tensor slot = batch_losses.rows(b, b + 1);
    accumulate_sum(row_loss, slot, 1.0 / static_cast<double>(rows));
    accumulate_correct(out, labels, correct_);
    model_.backward(grad);
    if (skip_nonfinite) flag_nonfinite(slot, model_.grads(), nonfinite_flag_);
    optimizer_.step(model_.params(), model_.grads(), lr, skip_flag);
  };
  // The GPU step: the batch's position lives on the device (position_), so the same enqueued
  // work serves every batch of one size, whether launched plainly or replayed from a graph.
  // Same kernels, same order, same bits either way.
  auto device_step = [&](int64_t rows) {
    Tensor x = batch_x_.rows(0, rows), labels = batch_labels_.rows(0, rows);
    gather_batch(train_.x, order, position_, batch_size_, x);
    gather_batch(train_.labels, order, position_, batch_size_, labels);
    Tensor target = labels;
    if (batch_targets_.defined()) {
      target = batch_targets_.rows(0, rows);
      gather_batch(train_.targets, order, position_, batch_size_, target);
    }
    const Tensor out = model_.forward(x);
    Tensor row_loss = row_loss_.rows(0, rows), grad = grad_.rows(0, rows);
    loss_forward_backward(config_.loss, out, target, row_loss, &grad);
    accumulate_sum(row_loss, loss_scratch_, 1.0 / static_cast<double>(rows));
    accumulate_correct(out, labels, correct_);
    model_.backward(grad);
    if (skip_nonfinite) flag_nonfinite(loss_scratch_, model_.grads(), nonfinite_flag_);
    optimizer_.step(model_.params(), model_.grads(), lr, skip_flag);
    commit_batch_loss(loss_scratch_, batch_losses, position_);
  };
  if (device.is_cuda()) {
    position_.fill_zero();
    loss_scratch_.fill_zero();
  }
#if MLPX_WITH_CUDA
  // Captured per epoch: lr, the order and batch_losses are new each epoch (lr is a kernel
  // argument). The epoch's first full-size step runs plainly: it loads every kernel module
  // and lets cuBLAS pick its algorithms outside the capture.
  std::optional<StepGraph> graph;
  if (device.is_cuda() && graph_enabled_) graph.emplace(cuda::stream_of(device));
#endif

  for (int64_t b = 0; b < batches; ++b) {
    const int64_t begin = b * batch_size_, end = std::min(n, begin + batch_size_);
    const int64_t rows = end - begin;
    if (device.is_cpu()) {
      cpu_step(b, rows);
    } else {
#if MLPX_WITH_CUDA
      bool replayed = false;
      if (graph && rows == batch_size_ && b > 0) {
        if (!graph->ready()) {
          std::string why;
          if (!graph->capture([&] { device_step(batch_size_); }, why)) {
            std::fprintf(stderr,
                         "mlpx: warning: CUDA graph capture of the training step failed (%s); "
                         "continuing with plain launches (train.cuda_graph false silences this)\n",
                         why.c_str());
            graph_enabled_ = false;
            graph.reset();
          }
        }
        if (graph) {
          graph->launch();
          ++graph_replays_;
          replayed = true;
        }
      }
      if (!replayed) device_step(rows);
#else
      device_step(rows);
#endif
    }
    if (on_progress) {
      BatchProgress p;
      p.epoch = epoch_ + 1;
      p.epochs = config_.train.epochs;
      p.batch = b + 1;
      p.batches = batches;
      p.samples = end;
      p.seconds = seconds_since(start);
      p.last_loss = [&batch_losses, b, this] {
        const Tensor s = batch_losses.rows(b, b + 1);
        return model_.dtype() == DType::kFloat64 ? s.to_vector<double>()[0]
                                                 : static_cast<double>(s.to_vector<float>()[0]);
      };
      on_progress(p);
    }
  }
#if MLPX_WITH_CUDA
  graph.reset();  // waits for the last replay
#endif

  std::vector<double> losses;
  if (model_.dtype() == DType::kFloat64) {
    losses = batch_losses.to_vector<double>();
  } else {
    const auto f = batch_losses.to_vector<float>();
    losses.assign(f.begin(), f.end());
  }
  const int32_t correct = correct_.to_vector<int32_t>()[0];
  int64_t skipped = 0;
  if (skip_nonfinite) skipped = nonfinite_flag_.to_vector<int32_t>()[2];
  // On the GPU, skipped and replayed steps are known to the device only (the CPU skips on the
  // host and counts exactly).
  if (device.is_cuda()) optimizer_.sync_steps();
  const double seconds = seconds_since(start);
  double weighted = 0.0;
  int64_t counted = 0;
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t rows = std::min(n, (b + 1) * batch_size_) - b * batch_size_;
    // A skipped step's loss may be NaN or Inf: it stays out of the epoch's mean.
    if (skip_nonfinite && !std::isfinite(losses[b])) continue;
    MLPX_CHECK(std::isfinite(losses[b]), Error, "training diverged: the loss is ", losses[b],
               " at epoch ", epoch_ + 1, ", step ", first_step + b + 1, " (batch ", b + 1, " of ",
               batches, "); try a smaller learning rate");
    weighted += losses[b] * static_cast<double>(rows);
    counted += rows;
  }
  ++epoch_;
  EpochMetrics m;
  m.epoch = epoch_;
  m.lr = lr;
  m.train_loss = counted > 0 ? weighted / static_cast<double>(counted) : std::nan("");
  m.skipped_steps = skipped;
  m.train_accuracy = correct / static_cast<double>(n);
  m.samples_per_s = static_cast<double>(n) / std::max(seconds, 1e-9);
  m.steps = optimizer_.steps();
  return m;
}

}  // namespace mlpx
