#include "tune/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mlpx/dataset.h"
#include "mlpx/device.h"
#include "mlpx/error.h"
#include "mlpx/model.h"
#include "mlpx/schedule.h"
#include "mlpx/training.h"
#include "train/step_counters.h"
#include "tune/h200_model.h"

namespace mlpx {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The first `m` rows of a data set, as views.
Dataset prefix(const Dataset& d, int64_t m) {
  Dataset out;
  out.x = d.x.rows(0, m);
  out.labels = d.labels.rows(0, m);
  if (d.targets.defined()) out.targets = d.targets.rows(0, m);
  out.name = d.name;
  return out;
}

// Training-step throughput at batch `b`: a few untimed warm-up steps, then about
// options.throughput_seconds of steps. Steps run through Trainer::run_epoch on a prefix of
// the training set holding a whole number of batches, so every step is a full batch and the
// per-epoch work (shuffle, the closing sync) is counted as a real epoch counts it.
double measure_samples_per_s(const Config& config, Sequential& model, const Dataset& train,
                             int64_t b, const BenchOptions& options) {
  const int64_t n = train.size();
  const int64_t whole = std::max<int64_t>(1, n / b);  // full batches in the set
  const int64_t warmup = std::max<int64_t>(1, options.warmup_steps);

  auto run_steps = [&](int64_t steps) {
    const int64_t per_epoch = std::min(steps, whole);
    const Dataset sub = prefix(train, per_epoch * b);
    Trainer trainer(config, model, sub);
    const int64_t epochs = (steps + per_epoch - 1) / per_epoch;
    synchronize(model.device());
    const auto start = Clock::now();
    for (int64_t e = 0; e < epochs; ++e) trainer.run_epoch(config.optimizer.lr, nullptr);
    synchronize(model.device());
    return std::make_pair(epochs * per_epoch, seconds_between(start, Clock::now()));
  };

  const auto [warm_steps, warm_s] = run_steps(warmup);
  const double per_step = std::max(warm_s / static_cast<double>(warm_steps), 1e-7);
  const int64_t steps = std::clamp<int64_t>(
      static_cast<int64_t>(options.throughput_seconds / per_step), options.min_steps, 1 << 22);
  const auto [timed_steps, timed_s] = run_steps(steps);
  return static_cast<double>(timed_steps * b) / std::max(timed_s, 1e-9);
}

struct TargetRun {
  bool reached = false;
  double seconds = 0.0;        // training time until reached (or until stopped)
  double first_epoch_s = NAN;  // training time of the first whole epoch, when one finished
  double accuracy = NAN;       // the last accuracy measured
  int64_t epochs = 0;
};

// Trains from the initial weights at batch `b` until the evaluation set's accuracy reaches
// the target or max_seconds of training time have passed. Evaluation time is excluded.
TargetRun run_to_target(const Config& config, Sequential& model, const Dataset& train,
                        const Dataset& eval, int64_t b, const BenchOptions& options) {
  TargetRun run;
  const int64_t n = train.size();
  const int64_t eval_every = (n + 3) / 4;
  Trainer trainer(config, model, train);
  int64_t since_eval = 0;
  synchronize(model.device());
  auto mark = Clock::now();
  auto out_of_time = [&](Clock::time_point now) {
    return run.seconds + seconds_between(mark, now) >= options.max_seconds;
  };
  // Returns false (ending the epoch there) once the target is met or the time is spent.
  auto on_progress = [&](const BatchProgress& p) {
    since_eval += std::min(b, p.samples - (p.batch - 1) * b);
    if (since_eval >= eval_every || p.batch == p.batches) {
      since_eval = 0;
      synchronize(model.device());
      run.seconds += seconds_between(mark, Clock::now());
      const Evaluation e = evaluate(model, config.loss, eval);
      run.accuracy = e.regression ? e.r2 : e.accuracy;
      run.reached = run.accuracy >= options.target_accuracy;
      if (run.reached || run.seconds >= options.max_seconds) return false;
      mark = Clock::now();
    } else if (out_of_time(Clock::now())) {
      synchronize(model.device());
      run.seconds += seconds_between(mark, Clock::now());
      return false;
    }
    return true;
  };
  while (true) {
    const double lr =
        scheduled_lr(config.schedule, config.optimizer.lr, static_cast<int>(trainer.epoch()));
    ++run.epochs;
    const bool completed = trainer.run_epoch(lr, on_progress).completed;
    if (!completed || run.reached) break;
    // The callback accounted up to the epoch's last step; add the epoch's closing work.
    const auto now = Clock::now();
    run.seconds += seconds_between(mark, now);
    mark = now;
    if (run.epochs == 1) run.first_epoch_s = run.seconds;
    if (run.seconds >= options.max_seconds) break;
  }
  return run;
}

}  // namespace

std::vector<int64_t> parse_batch_sizes(const std::string& text) {
  std::vector<int64_t> sizes;
  std::stringstream in(text + ",");  // so that a trailing comma leaves an empty item
  std::string item;
  while (std::getline(in, item, ',') && !in.eof()) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item == "full") {
      sizes.push_back(0);
      continue;
    }
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    MLPX_CHECK(used == item.size() && !item.empty() && v >= 0, ValueError,
               "--batch-sizes: expected a comma-separated list of sizes >= 1 or \"full\", "
               "found \"",
               item, "\"");
    sizes.push_back(v);
  }
  MLPX_CHECK(!sizes.empty(), ValueError, "--batch-sizes: expected at least one batch size");
  return sizes;
}

std::vector<BenchRow> run_batch_sweep(const Config& config, const BenchOptions& options) {
  config.validate();
  MLPX_CHECK(options.max_seconds > 0, ValueError, "bench: expected max_seconds > 0, found ",
             options.max_seconds);
  MLPX_CHECK(options.target_accuracy >= 0 && options.target_accuracy <= 1, ValueError,
             "bench: expected a target accuracy in [0, 1], found ", options.target_accuracy);
  const Device device = Device::parse(config.device);
  const int64_t outputs = config.model.layers.back().units;
  const DataSplits data = load_data(config, outputs);
  const Dataset train = data.train.to(device);
  const Dataset eval = (data.test.size() > 0 ? data.test : data.validation).to(device);
  const bool want_target = options.target_accuracy > 0;
  MLPX_CHECK(!want_target || eval.size() > 0, ValueError,
             "bench: a target accuracy needs a test or validation set; use target 0 to skip it");

  Sequential model(train.features(), config.model.resolved_layers(), DType::kFloat32, device);
  model.set_precision(config.precision);
  model.set_fused(config.train.fused);
  model.set_gemm_epilogues(config.train.gemm_epilogues);
  model.init(config.model.init, config.model.init_std, config.seed);
  const Tensor initial = model.params().clone();

  const int64_t n = train.size();
  std::vector<BenchRow> rows;
  for (const int64_t requested : options.batch_sizes) {
    const int64_t b = requested <= 0 || requested > n ? n : requested;
    Config c = config;
    c.train.batch_size = b;
    BenchRow row;
    row.device = device.str();
    row.precision = precision_name(config.precision);
    row.gemm_engine = device.is_cuda()                       ? "cuBLAS"
                      : config.precision == Precision::kBf16 ? cpu_bf16_engine()
                                                             : "OpenBLAS";
    row.batch_size = b;
    row.target_accuracy = want_target ? options.target_accuracy : 0.0;
    row.time_to_target_s = NAN;
    row.final_accuracy = NAN;
    row.regression = train.regression;

    if (device.is_cuda() && options.count_steps > 0 &&
        b * std::max<int64_t>(2, options.count_steps) <= n) {
      model.params().copy_from(initial);
      const StepCounts counts = count_training_steps(c, model, train, options.count_steps);
      row.counted = true;
      row.kernels_per_step = counts.kernels_per_step;
      row.host_syncs_per_step = counts.host_waits_per_step;
      row.host_syncs_per_epoch = counts.host_waits_per_epoch;
      row.device_work_counted = counts.device_work_counted;
      for (const DeviceWork& w : counts.step_work) {
        row.device_bytes_per_step += w.bytes_read + w.bytes_written;
        row.gemm_flops_per_step += w.flops;
      }
      row.projected_h200_us = projected_h200_us(counts.step_work);
      row.step_work = counts.step_work;
    }
    if (options.count_only) {
      row.samples_per_s = row.updates_per_s = row.epoch_s = NAN;
      if (options.on_row) options.on_row(row);
      rows.push_back(row);
      continue;
    }
    model.params().copy_from(initial);
    row.samples_per_s = measure_samples_per_s(c, model, train, b, options);
    row.updates_per_s = row.samples_per_s / static_cast<double>(b);

    double epoch_s = NAN;
    if (want_target) {
      model.params().copy_from(initial);
      const TargetRun run = run_to_target(c, model, train, eval, b, options);
      row.reached = run.reached;
      if (run.reached) row.time_to_target_s = run.seconds;
      row.final_accuracy = run.accuracy;
      row.epochs = run.epochs;
      epoch_s = run.first_epoch_s;
      row.epoch_measured = std::isfinite(epoch_s);
    }
    if (!std::isfinite(epoch_s)) {
      // No whole epoch ran above: time one when there is a target run anyway and it fits in
      // max_seconds, else extrapolate (a throughput-only sweep stays bounded in time).
      const int64_t steps = (n + b - 1) / b;
      const double predicted = static_cast<double>(n) / row.samples_per_s;
      if (want_target && predicted <= options.max_seconds) {
        row.epoch_measured = true;
        model.params().copy_from(initial);
        Trainer trainer(c, model, train);
        synchronize(device);
        const auto start = Clock::now();
        trainer.run_epoch(c.optimizer.lr, nullptr);
        synchronize(device);
        epoch_s = seconds_between(start, Clock::now());
      } else {
        epoch_s = static_cast<double>(steps) * static_cast<double>(b) / row.samples_per_s;
      }
    }
    row.epoch_s = epoch_s;
    if (options.on_row) options.on_row(row);
    rows.push_back(row);
  }
  return rows;
}

std::string bench_row_json(const BenchRow& row) {
  nlohmann::json j;
  j["device"] = row.device;
  j["precision"] = row.precision;
  j["gemm_engine"] = row.gemm_engine;
  j["batch_size"] = row.batch_size;
  const auto number_or_null = [](double v) {
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
  };
  j["samples_per_s"] = number_or_null(row.samples_per_s);
  j["updates_per_s"] = number_or_null(row.updates_per_s);
  j["epoch_s"] = number_or_null(row.epoch_s);
  j["epoch_measured"] = row.epoch_measured;
  j["time_to_target_s"] = std::isfinite(row.time_to_target_s) ? nlohmann::json(row.time_to_target_s)
                                                              : nlohmann::json(nullptr);
  j["target_accuracy"] = row.target_accuracy;
  j["reached"] = row.reached;
  j["score"] = row.regression ? "r2" : "accuracy";
  if (row.counted) {
    j["kernels_per_step"] = row.kernels_per_step;
    j["host_syncs_per_step"] = row.host_syncs_per_step;
    j["host_syncs_per_epoch"] = row.host_syncs_per_epoch;
  }
  if (row.device_work_counted) {
    j["device_bytes_per_step"] = row.device_bytes_per_step;
    j["gemm_flops_per_step"] = row.gemm_flops_per_step;
    j["projected_h200_us"] = row.projected_h200_us;
    j["projection"] = "model";  // h200_model.h: not a measurement
  }
  return j.dump();
}

}  // namespace mlpx
