#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "dist/communicator.h"
#include "mlpx/checkpoint.h"
#include "mlpx/error.h"
#include "mlpx/schedule.h"
#include "mlpx/training.h"
#include "train/data_parallel.h"

namespace mlpx {

namespace {

using Clock = std::chrono::steady_clock;

// JSON has no NaN: a missing figure (no validation set) is null.
nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

// "128 relu", "64 elu (alpha 0.5)": one layer, for messages.
std::string describe_layer(const LayerSpec& layer) {
  std::ostringstream text;
  text << layer.units << " " << activation_name(layer.activation);
  if (activation_takes_alpha(layer.activation)) {
    text << " (alpha " << layer.alpha.value_or(0) << ")";
  }
  return text.str();
}

// Where the model of `resumed` (a checkpoint's) and `configured` differ, "" when they do not:
// "the checkpoint has 3 layers, the config 2", or every layer that differs.
std::string model_difference(const ModelConfig& resumed, const ModelConfig& configured) {
  const std::vector<LayerSpec> x = resumed.resolved_layers(), y = configured.resolved_layers();
  if (x.size() != y.size()) {
    return "the checkpoint has " + std::to_string(x.size()) + " layers, the config " +
           std::to_string(y.size());
  }
  std::string differences;
  for (size_t i = 0; i < x.size(); ++i) {
    const std::string a = describe_layer(x[i]), b = describe_layer(y[i]);
    if (a == b) continue;
    differences += (differences.empty() ? "" : "; ") + std::string("layer ") + std::to_string(i) +
                   ": " + a + " in the checkpoint, " + b + " in the config";
  }
  return differences;
}

// FNV-1a of `text`: the same on every machine (std::hash need not be).
uint64_t fnv1a(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Ranks started with different configs (seed, batch, model, ...) or options would train
// different models and deadlock or diverge: compared once, at start-up.
void check_same_config(dist::Communicator& ranks, const Config& config, const RunOptions& options) {
  if (ranks.size() == 1) return;
  const std::vector<uint64_t> hashes = ranks.all_gather(
      fnv1a(config.to_json() + "\n" + options.resume + "\n" + options.init_weights));
  for (size_t r = 1; r < hashes.size(); ++r) {
    MLPX_CHECK(hashes[r] == hashes[0], ValueError, "rank ", r,
               " was started with another config than rank 0 (the hash of the whole config, "
               "--resume and --init-weights differs); start every rank with the same command");
  }
}

// Each rank of a job on CUDA takes the GPU of its index on its machine (local rank), as
// PyTorch DDP does; "cuda:N" on several ranks of one machine would put them all on one GPU.
Device rank_device(const dist::Communicator& ranks, const std::string& configured) {
  const Device device = Device::parse(configured);
  if (ranks.size() == 1 || !device.is_cuda()) return device;
  MLPX_CHECK(configured.rfind("cuda:", 0) != 0 || ranks.local_size() == 1, ValueError, "device '",
             configured, "': expected one GPU per rank, found ", ranks.local_size(),
             " ranks on this machine asked for the same one; use device cuda (rank i of a "
             "machine takes cuda:i)");
  MLPX_CHECK(ranks.local_rank() < cuda_device_count(), ValueError, "rank ", ranks.rank(),
             " is rank ", ranks.local_rank(), " on its machine, which has ", cuda_device_count(),
             " GPU(s): expected at most one rank per GPU");
  return Device::cuda(ranks.local_rank());
}

// The description of the job that on_start receives, one line each.
std::vector<std::string> describe_run(const Config& config, const DataSplits& data,
                                      const Sequential& model, const Trainer& trainer,
                                      const RunOptions& options, const dist::Communicator& ranks) {
  std::vector<std::string> lines;
  std::ostringstream line;
  if (ranks.size() > 1) {
    lines.push_back("data parallel: " + std::to_string(ranks.size()) + " ranks (" +
                    ranks.backend() + "), each runs its share of every batch of " +
                    std::to_string(trainer.batch_size()) + " rows; rank 0 logs and saves" +
                    (trainer.reduces_on_device() ? "; gradients summed by NCCL on the GPUs" : "") +
                    (config.train.shard_optimizer ? "; optimizer state sharded (ZeRO-1)" : ""));
  } else if (trainer.reduces_on_device()) {
    lines.emplace_back("collectives: NCCL on one rank (train.collectives \"nccl\")");
  }
  line << "data: " << data.description << "; " << data.train.size() << " train / "
       << data.validation.size() << " validation / " << data.test.size() << " test rows";
  lines.push_back(line.str());
  lines.push_back("normalize " + data.normalization + "; " +
                  (data.train.regression ? "regression: scored by R^2 and MSE"
                                         : "classification: scored by accuracy"));
  line.str("");
  line << "device: " << model.device().str() << "; batch size " << trainer.batch_size()
       << (trainer.batch_size() == data.train.size() ? " (full batch)" : "") << "; optimizer "
       << optimizer_name(config.optimizer.type) << "; loss " << loss_name(config.loss);
  if (config.precision != Precision::kFp32)
    line << "; precision " << precision_name(config.precision);
  lines.push_back(line.str());
  lines.push_back("schedule " + schedule_name(config.schedule.type) + ": " +
                  describe_schedule(config.schedule, config.optimizer.lr) + "; " +
                  std::to_string(config.train.epochs) +
                  (config.train.epochs == 1 ? " epoch" : " epochs"));
  std::istringstream summary(model.summary());
  for (std::string row; std::getline(summary, row);) lines.push_back(row);
  const TrainingProgress at = trainer.progress();
  if (!options.resume.empty() && at.epoch_batch > 0) {
    lines.push_back("resuming " + options.resume + " in epoch " + std::to_string(at.epoch + 1) +
                    " after batch " + std::to_string(at.epoch_batch) + " (step " +
                    std::to_string(at.step) + ")");
  } else if (!options.resume.empty()) {
    lines.push_back("resuming " + options.resume + " after epoch " +
                    std::to_string(trainer.epoch()));
  } else if (!options.init_weights.empty()) {
    lines.push_back("initial weights from " + options.init_weights);
  } else {
    lines.push_back("initial weights: " + init_name(config.model.init) + ", seed " +
                    std::to_string(config.seed));
  }
  return lines;
}

// One JSON line per epoch. Classification logs train_accuracy and val_accuracy, regression
// train_r2 and val_r2 in their place (mlpx plot reads either).
void log_epoch(std::ofstream& log, const EpochMetrics& m) {
  nlohmann::json line = {{"epoch", m.epoch}, {"lr", m.lr}, {"train_loss", m.train_loss}};
  if (m.regression) {
    line["train_r2"] = number_or_null(m.train_r2);
  } else {
    line["train_accuracy"] = m.train_accuracy;
  }
  line["val_loss"] = number_or_null(m.val_loss);
  line[m.regression ? "val_r2" : "val_accuracy"] =
      number_or_null(m.regression ? m.val_r2 : m.val_accuracy);
  if (!std::isnan(m.grad_norm)) line["grad_norm"] = m.grad_norm;
  if (!m.layer_grad_norms.empty()) line["layer_grad_norm"] = m.layer_grad_norms;
  line["samples_per_s"] = m.samples_per_s;
  line["skipped_steps"] = m.skipped_steps;
  line["elapsed_s"] = m.elapsed_s;
  log << line.dump() << std::endl;
}

// train.early_stopping and output.keep_best: the best epoch so far by one metric, and how many
// epochs in a row have not improved on it.
class BestEpoch {
 public:
  explicit BestEpoch(const Config& config)
      : rule_(config.train.early_stopping.value_or(EarlyStopping{})),
        tracking_(config.train.early_stopping.has_value() || config.output.keep_best) {}

  bool tracking() const { return tracking_; }
  int64_t epoch() const { return best_epoch_; }
  double value() const { return best_; }

  // Takes one epoch's metrics; true when it is the new best.
  bool update(const EpochMetrics& m) {
    const double value = m.*field();
    MLPX_CHECK(!std::isnan(value), ValueError,
               "train.early_stopping.metric: ", metric_name(rule_.metric),
               " is not measured for a ",
               m.regression ? "regression task (use val_r2 or val_loss)"
                            : "classification task (use val_accuracy or val_loss)");
    if (rule_.improves(value, best_)) {
      best_ = value;
      best_epoch_ = m.epoch;
      waited_ = 0;
      return true;
    }
    ++waited_;
    return false;
  }
  // Keras's rule: `patience` epochs without an improvement, and at least one.
  bool should_stop() const { return waited_ > 0 && waited_ >= rule_.patience; }

 private:
  double EpochMetrics::*field() const {
    switch (rule_.metric) {
      case Metric::kValAccuracy:
        return &EpochMetrics::val_accuracy;
      case Metric::kValR2:
        return &EpochMetrics::val_r2;
      case Metric::kValLoss:
        break;
    }
    return &EpochMetrics::val_loss;
  }

  EarlyStopping rule_;
  bool tracking_;
  double best_ = std::numeric_limits<double>::quiet_NaN();
  int64_t best_epoch_ = 0;
  int waited_ = 0;
};

// One rank's wish to stop after this step (its caller's `stop`, its signal number or 0),
// agreed over the ranks by one host all-reduce of a double: each rank adds
// stop + 2^12 [signalled] + 2^24 signal. Returns the signal the job stops for (the ranks'
// common one; SIGTERM when they saw different ones), -1 when only a caller asked to stop, and
// 0 to go on.
int agree_on_stop(dist::Communicator& ranks, bool stop, int signal) {
  constexpr double kSignalled = 4096.0, kSignalNumber = 4096.0 * 4096.0;
  const double mine =
      (stop ? 1.0 : 0.0) + (signal != 0 ? kSignalled + kSignalNumber * signal : 0.0);
  const double total = ranks.all_reduce_sum(mine);
  const auto signal_sum = static_cast<int64_t>(total / kSignalNumber);
  const auto signalled = static_cast<int64_t>(std::fmod(total, kSignalNumber) / kSignalled);
  if (signalled > 0)
    return signal_sum % signalled == 0 ? static_cast<int>(signal_sum / signalled) : SIGTERM;
  return total > 0.0 ? -1 : 0;
}

}  // namespace

RunResult run_training(const Config& config, const RunOptions& options) {
  config.validate();
  const auto start = Clock::now();
  // Under an MPI launcher, this process is one rank of a data-parallel job: rank 0 alone
  // reports, logs and saves; every rank trains its share of each batch.
  dist::Communicator& ranks = dist::world();
  // The watchdog: a collective that waits dist.timeout_s ends the job, naming the context.
  ranks.set_timeout(config.dist.timeout_s);
  ranks.set_context("start-up (the ranks compare their configs)");
  check_same_config(ranks, config, options);
  const bool lead = ranks.rank() == 0;
  const RunCallbacks callbacks = lead ? options.callbacks : RunCallbacks{};
  const Device device = rank_device(ranks, config.device);

  std::optional<Checkpoint> checkpoint;
  if (!options.resume.empty()) {
    checkpoint.emplace(load_checkpoint(options.resume));
    const std::string difference = model_difference(checkpoint->config.model, config.model);
    MLPX_CHECK(difference.empty(), ValueError, options.resume,
               ": expected the checkpoint's model to match the config's model.layers, found ",
               difference);
  }

  const int64_t outputs = config.model.layers.back().units;
  const DataSplits data_cpu = load_data(config, outputs, options.read_test);
  const Dataset train = data_cpu.train.to(device);
  const Dataset validation = data_cpu.validation.to(device);
  const Dataset test = data_cpu.test.to(device);
  if (checkpoint) {
    MLPX_CHECK(checkpoint->model.inputs() == train.features(), ValueError, options.resume,
               ": expected a model of ", train.features(), " inputs for this data, found ",
               checkpoint->model.inputs());
  }

  Sequential model(train.features(), config.model.resolved_layers(), DType::kFloat32, device);
  model.set_precision(config.precision);
  model.set_fused(config.train.fused);  // auto: where the kernels fit; on: or the reason
  model.set_gemm_epilogues(config.train.gemm_epilogues);
  MLPX_CHECK(options.resume.empty() || options.init_weights.empty(), ValueError,
             "expected either a checkpoint to resume or initial weights, found both (",
             options.resume, ", ", options.init_weights, ")");
  if (checkpoint) {
    model.params().copy_from(checkpoint->model.params());
    if (model.num_buffers() > 0) model.buffers().copy_from(checkpoint->model.buffers());
  } else if (!options.init_weights.empty()) {
    load_weights(model, options.init_weights);
  } else {
    model.init(config.model.init, config.model.init_std, config.seed);
  }
  Trainer trainer = data_parallel_trainer(config, model, train, &ranks);
  // Checkpoints name their data by absolute paths: eval and resume work from any folder.
  const Config stored_config = config.with_absolute_paths();
  if (checkpoint) {
    trainer.restore(checkpoint->progress, checkpoint->optimizer_state);
  } else if (lead && !config.output.init_checkpoint.empty()) {
    save_checkpoint(config.output.init_checkpoint, model, nullptr, stored_config, {},
                    data_cpu.standardization);
  }

  if (callbacks.on_start) {
    callbacks.on_start(describe_run(config, data_cpu, model, trainer, options, ranks));
  }

  std::ofstream log;
  if (lead && !config.output.log.empty()) {
    log.open(config.output.log, checkpoint ? std::ios::app : std::ios::trunc);
    MLPX_CHECK(log, IoError, config.output.log, ": cannot open the training log for writing");
  }

  // Rank 0's on_batch may stop the run (a Ctrl-C in Python), and a preemption signal may reach
  // any rank (options.stop_signal); every rank must stop after the same step, or the others
  // would wait for it in the next collective. So with several ranks every step ends in an
  // agreement: one all-reduce of one number on the host (the device is not waited for). Alone,
  // the flag is read in place: no communication.
  int agreed_signal = 0;
  ProgressCallback on_batch = callbacks.on_batch;
  const volatile std::sig_atomic_t* stop_signal = options.stop_signal;
  int64_t steps_done = trainer.progress().step;  // names the step in the watchdog's messages
  if (ranks.size() > 1) {
    on_batch = [&ranks, &agreed_signal, &steps_done, stop_signal,
                lead_callback = callbacks.on_batch](const BatchProgress& p) {
      const std::string step = "step " + std::to_string(++steps_done);
      ranks.set_context("the stop agreement after " + step + " (epoch " + std::to_string(p.epoch) +
                        ", batch " + std::to_string(p.batch) + " of " + std::to_string(p.batches) +
                        ")");
      agreed_signal = agree_on_stop(ranks, lead_callback && !lead_callback(p),
                                    stop_signal != nullptr ? *stop_signal : 0);
      ranks.set_context("step " + std::to_string(steps_done + 1));
      return agreed_signal == 0;
    };
  } else if (stop_signal != nullptr) {
    on_batch = [&agreed_signal, stop_signal,
                lead_callback = callbacks.on_batch](const BatchProgress& p) {
      if (lead_callback && !lead_callback(p)) return false;
      agreed_signal = *stop_signal;
      return agreed_signal == 0;
    };
  }

  RunResult result;
  result.rank = ranks.rank();
  result.ranks = ranks.size();
  BestEpoch best(config);
  if (best.tracking()) {
    for (const EpochMetrics& m : options.history) {
      if (m.epoch <= trainer.epoch()) best.update(m);
    }
  }
  const std::string best_path =
      config.output.keep_best ? best_checkpoint_path(config.output.checkpoint) : std::string();
  // A preemption: output.checkpoint records where training stands, to the step.
  auto save_position = [&](int signal) {
    result.signal = signal;
    result.position = trainer.progress();
    if (config.output.checkpoint.empty()) return;
    const auto optimizer_state = trainer.optimizer_state();  // every rank (a collective)
    if (lead) {
      save_checkpoint(config.output.checkpoint, model, config.optimizer.type, optimizer_state,
                      stored_config, result.position, data_cpu.standardization);
    }
    result.checkpoint = config.output.checkpoint;
  };
  // onecycle: the rate of every optimizer step, over the whole run's steps, from the device's
  // step counter (so a resumed run continues the same cycle).
  OneCyclePlan cycle;
  if (config.schedule.type == ScheduleType::kOneCycle) {
    cycle = one_cycle_plan(config.schedule, config.optimizer.lr,
                           config.train.epochs * trainer.steps_per_epoch());
    trainer.set_one_cycle(cycle);
  }
  // plateau: the rate follows the validation figures; a resumed run replays those of its log.
  PlateauState plateau = PlateauState::start(config.optimizer.lr);
  auto plateau_figure = [&](const EpochMetrics& m) {
    return config.schedule.metric == Metric::kValAccuracy ? m.val_accuracy
           : config.schedule.metric == Metric::kValR2     ? m.val_r2
                                                          : m.val_loss;
  };
  if (config.schedule.type == ScheduleType::kPlateau) {
    for (const EpochMetrics& m : options.history) {
      if (m.epoch <= trainer.epoch()) plateau.step(config.schedule, plateau_figure(m));
    }
  }
  while (trainer.epoch() < config.train.epochs &&
         !(config.train.early_stopping && best.should_stop())) {
    const int epoch_index = static_cast<int>(trainer.epoch());
    double lr = scheduled_lr(config.schedule, config.optimizer.lr, epoch_index);
    if (config.schedule.type == ScheduleType::kPlateau &&
        epoch_index >= config.schedule.warmup_epochs) {
      lr = plateau.lr;
    }
    ranks.set_context("step " + std::to_string(steps_done + 1) + " (epoch " +
                      std::to_string(epoch_index + 1) + ")");
    EpochMetrics m = trainer.run_epoch(lr, on_batch);
    ranks.set_context("the validation and checkpoint after epoch " +
                      std::to_string(trainer.epoch() + (m.completed ? 0 : 1)) + " (step " +
                      std::to_string(steps_done) + ")");
    // onecycle: the epoch's figure is the rate of its last step.
    if (cycle.total_steps > 0 && m.steps > 0) m.lr = one_cycle_rates(cycle, m.steps - 1).lr;
    if (!m.completed) {
      // Stopped by the caller: the checkpoint and the log keep the last whole epoch. Stopped by
      // a signal: the checkpoint moves to this step, part-way through the epoch.
      result.stopped = true;
      if (agreed_signal > 0) save_position(agreed_signal);
      break;
    }
    const Evaluation val = evaluate(model, config.loss, validation, 4096, ranks);
    m.val_loss = val.loss;
    m.val_accuracy = val.accuracy;
    m.val_r2 = val.r2;
    if (config.schedule.type == ScheduleType::kPlateau) {
      plateau.step(config.schedule, plateau_figure(m));
    }
    m.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
    result.epochs.push_back(m);
    if (callbacks.on_epoch) callbacks.on_epoch(m);
    if (log.is_open()) log_epoch(log, m);
    const bool is_best = best.tracking() && best.update(m);
    result.stopped_early = config.train.early_stopping && best.should_stop();
    const int every = config.output.checkpoint_every;
    const bool last = trainer.epoch() >= config.train.epochs || result.stopped_early;
    const bool save_last =
        !config.output.checkpoint.empty() && (last || (every > 0 && trainer.epoch() % every == 0));
    if (save_last || (is_best && config.output.keep_best)) {
      // Every rank takes part (a sharded optimizer's state is gathered); rank 0 writes.
      const auto optimizer_state = trainer.optimizer_state();
      if (lead) {
        const TrainingProgress progress = trainer.progress();  // at the epoch's end
        if (save_last) {
          save_checkpoint(config.output.checkpoint, model, config.optimizer.type, optimizer_state,
                          stored_config, progress, data_cpu.standardization);
        }
        if (is_best && config.output.keep_best) {
          save_checkpoint(best_path, model, config.optimizer.type, optimizer_state, stored_config,
                          progress, data_cpu.standardization);
        }
      }
    }
    if (agreed_signal > 0) {
      // The signal came with the epoch's last step: the epoch is whole (validated, logged), and
      // the checkpoint is brought to its end unless it was just saved there.
      result.stopped = true;
      if (save_last) {
        result.signal = agreed_signal;
        result.position = trainer.progress();
        result.checkpoint = config.output.checkpoint;
      } else {
        save_position(agreed_signal);
      }
      break;
    }
  }
  if (best.tracking()) {
    result.best_epoch = best.epoch();
    result.best_value = best.value();
  }

  result.model.emplace(model);  // shares the parameters; the trainer's buffers stay behind
  result.standardization = data_cpu.standardization;
  if (result.stopped) {
    // Preempted: the ranks leave together, once rank 0 has written the checkpoint.
    if (result.signal > 0) ranks.agree_on_exit(128 + result.signal);
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
  }
  ranks.set_context("the test set's evaluation");
  result.test = evaluate(model, config.loss, test, 4096, ranks);
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (test.size() > 0) {
    if (log.is_open()) {
      nlohmann::json line = {{"test_loss", result.test.loss}};
      if (result.test.regression) {
        line["test_r2"] = number_or_null(result.test.r2);
        line["test_mse"] = result.test.mse;
      } else {
        line["test_accuracy"] = result.test.accuracy;
      }
      line["elapsed_s"] = result.seconds;
      log << line.dump() << std::endl;
    }
  }
  return result;
}

}  // namespace mlpx
