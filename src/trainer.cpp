#include <algorithm>
#include <chrono>
#include <cmath>

#include "mlpx/batching.h"
#include "mlpx/error.h"
#include "mlpx/loss.h"
#include "mlpx/math/streams.h"
#include "mlpx/training.h"

namespace mlpx {

namespace {

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

  for (int64_t b = 0; b < batches; ++b) {
    const int64_t begin = b * batch_size_, end = std::min(n, begin + batch_size_);
    const int64_t rows = end - begin;
    const Tensor index = order.rows(begin, end);
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
    optimizer_.step(model_.params(), model_.grads(), lr);
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

  std::vector<double> losses;
  if (model_.dtype() == DType::kFloat64) {
    losses = batch_losses.to_vector<double>();
  } else {
    const auto f = batch_losses.to_vector<float>();
    losses.assign(f.begin(), f.end());
  }
  const int32_t correct = correct_.to_vector<int32_t>()[0];
  const double seconds = seconds_since(start);
  double weighted = 0.0;
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t rows = std::min(n, (b + 1) * batch_size_) - b * batch_size_;
    MLPX_CHECK(std::isfinite(losses[b]), Error, "training diverged: the loss is ", losses[b],
               " at epoch ", epoch_ + 1, ", step ", first_step + b + 1, " (batch ", b + 1, " of ",
               batches, "); try a smaller learning rate");
    weighted += losses[b] * static_cast<double>(rows);
  }
  ++epoch_;
  EpochMetrics m;
  m.epoch = epoch_;
  m.lr = lr;
  m.train_loss = weighted / static_cast<double>(n);
  m.train_accuracy = correct / static_cast<double>(n);
  m.samples_per_s = static_cast<double>(n) / std::max(seconds, 1e-9);
  m.steps = optimizer_.steps();
  return m;
}

}  // namespace mlpx
