#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <sstream>

#include "mlpx/checkpoint.h"
#include "mlpx/error.h"
#include "mlpx/schedule.h"
#include "mlpx/training.h"
#if MLPX_WITH_CUDA
#include "cuda/runtime.h"
#endif

namespace mlpx {

namespace {

using Clock = std::chrono::steady_clock;

// JSON has no NaN: a missing figure (no validation set) is null.
nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

std::string format_seconds(double s) {
  std::ostringstream out;
  if (s >= 3600) {
    out << static_cast<int>(s / 3600) << "h" << std::setw(2) << std::setfill('0')
        << static_cast<int>(std::fmod(s, 3600) / 60) << "m";
  } else if (s >= 60) {
    out << static_cast<int>(s / 60) << "m" << std::setw(2) << std::setfill('0')
        << static_cast<int>(std::fmod(s, 60)) << "s";
  } else {
    out << std::fixed << std::setprecision(1) << s << "s";
  }
  return out.str();
}

// A live bar redrawn at most every 0.2 s: each redraw reads one float back from the device.
class ProgressBar {
 public:
  explicit ProgressBar(std::ostream& out) : out_(out) {}
  void update(const BatchProgress& p) {
    const auto now = Clock::now();
    if (p.batch != p.batches && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * p.batch / std::max<int64_t>(1, p.batches));
    const double rate = p.samples / std::max(p.seconds, 1e-9);
    const double eta = p.seconds / std::max<int64_t>(1, p.batch) * (p.batches - p.batch);
    std::ostringstream line;
    line << "\repoch " << p.epoch << "/" << p.epochs << " [" << std::string(filled, '=')
         << std::string(kWidth - filled, ' ') << "] " << p.batch << "/" << p.batches << " loss "
         << std::fixed << std::setprecision(4) << p.last_loss() << " " << std::setprecision(0)
         << rate << " samples/s ETA " << format_seconds(eta) << "\x1b[K";
    out_ << line.str() << std::flush;
  }
  void finish() { out_ << "\r\x1b[K"; }

 private:
  std::ostream& out_;
  Clock::time_point last_{};
};

std::string epoch_line(const EpochMetrics& m, int64_t epochs) {
  std::ostringstream out;
  out << std::fixed << "epoch " << m.epoch << "/" << epochs << "  lr " << std::setprecision(6)
      << std::defaultfloat << m.lr << std::fixed << std::setprecision(4) << "  train loss "
      << m.train_loss << " acc " << m.train_accuracy;
  if (std::isfinite(m.val_loss)) out << "  val loss " << m.val_loss << " acc " << m.val_accuracy;
  out << std::setprecision(0) << "  " << m.samples_per_s << " samples/s  "
      << format_seconds(m.elapsed_s);
  if (m.skipped_steps > 0) out << "  skipped " << m.skipped_steps << " non-finite step(s)";
  return out.str();
}

// precision "tf32" for the length of one run: the device's cuBLAS math mode is restored
// however the run ends.
class PrecisionScope {
 public:
  PrecisionScope(const std::string& precision, Device device) {
    if (precision == "fp32") return;
    MLPX_CHECK(precision == "tf32" && device.is_cuda(), ValueError,
               "config: precision: ", precision, " needs a CUDA device, found device ",
               device.str());
#if MLPX_WITH_CUDA
    device_ = device.index;
    previous_ = cuda::tf32_enabled(device_);
    cuda::set_tf32(device_, true);
#endif
  }
  ~PrecisionScope() {
#if MLPX_WITH_CUDA
    if (device_ >= 0) {
      try {
        cuda::set_tf32(device_, previous_);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "mlpx: %s\n", e.what());
      }
    }
#endif
  }
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  int device_ = -1;
  bool previous_ = false;
};

bool same_model(const ModelConfig& a, const ModelConfig& b) {
  if (a.layers.size() != b.layers.size() || a.activation_alpha != b.activation_alpha) return false;
  for (size_t i = 0; i < a.layers.size(); ++i) {
    if (a.layers[i].units != b.layers[i].units || a.layers[i].activation != b.layers[i].activation)
      return false;
  }
  return true;
}

}  // namespace

RunResult run_training(const Config& config, const RunOptions& options) {
  config.validate();
  const auto start = Clock::now();
  std::ostream* out = options.out;
  const Device device = Device::parse(config.device);
  const PrecisionScope precision(config.precision, device);

  std::optional<Checkpoint> checkpoint;
  if (!options.resume.empty()) {
    checkpoint.emplace(load_checkpoint(options.resume));
    MLPX_CHECK(same_model(checkpoint->config.model, config.model), ValueError, options.resume,
               ": expected the checkpoint's model to match the config's model.layers, found "
               "another architecture");
  }

  const int64_t outputs = config.model.layers.back().units;
  const DataSplits data_cpu = load_data(config, outputs);
  const Dataset train = data_cpu.train.to(device);
  const Dataset validation = data_cpu.validation.to(device);
  const Dataset test = data_cpu.test.to(device);
  if (checkpoint) {
    MLPX_CHECK(checkpoint->model.inputs() == train.features(), ValueError, options.resume,
               ": expected a model of ", train.features(), " inputs for this data, found ",
               checkpoint->model.inputs());
  }

  std::vector<LayerSpec> layers;
  for (const LayerConfig& l : config.model.layers) layers.push_back({l.units, l.activation});
  Sequential model(train.features(), layers, config.model.activation_alpha, DType::kFloat32,
                   device);
  if (checkpoint) {
    model.params().copy_from(checkpoint->model.params());
  } else {
    model.init(config.model.init, config.model.init_std, config.seed);
  }
  Trainer trainer(config, model, train);
  if (checkpoint) {
    trainer.restore(checkpoint->progress.epoch, checkpoint->progress.step,
                    checkpoint->optimizer_state);
  } else if (!config.output.init_checkpoint.empty()) {
    save_checkpoint(config.output.init_checkpoint, model, nullptr, config, {},
                    data_cpu.standardization);
  }

  if (out) {
    *out << "data: " << data_cpu.description << "; " << train.size() << " train / "
         << validation.size() << " validation / " << test.size() << " test rows\n"
         << "device: " << device.str() << "; batch size " << trainer.batch_size()
         << (trainer.batch_size() == train.size() ? " (full batch)" : "") << "; optimizer "
         << optimizer_name(config.optimizer.type) << "; loss " << loss_name(config.loss) << "\n"
         << model.summary();
    if (checkpoint)
      *out << "resuming " << options.resume << " after epoch " << trainer.epoch() << "\n";
    *out << std::flush;
  }

  std::ofstream log;
  if (!config.output.log.empty()) {
    log.open(config.output.log, checkpoint ? std::ios::app : std::ios::trunc);
    MLPX_CHECK(log, IoError, config.output.log, ": cannot open the training log for writing");
  }

  RunResult result;
  std::optional<ProgressBar> bar;
  if (options.progress_bar && out) bar.emplace(*out);
  while (trainer.epoch() < config.train.epochs) {
    const double lr =
        scheduled_lr(config.schedule, config.optimizer.lr, static_cast<int>(trainer.epoch()));
    EpochMetrics m =
        trainer.run_epoch(lr, bar ? std::function<void(const BatchProgress&)>(
                                        [&](const BatchProgress& p) { bar->update(p); })
                                  : nullptr);
    if (bar) bar->finish();
    const Evaluation val = evaluate(model, config.loss, validation);
    m.val_loss = val.loss;
    m.val_accuracy = val.accuracy;
    m.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
    result.epochs.push_back(m);
    if (out) *out << epoch_line(m, config.train.epochs) << std::endl;
    if (log.is_open()) {
      log << nlohmann::json{{"epoch", m.epoch},
                            {"lr", m.lr},
                            {"train_loss", m.train_loss},
                            {"train_accuracy", m.train_accuracy},
                            {"val_loss", number_or_null(m.val_loss)},
                            {"val_accuracy", number_or_null(m.val_accuracy)},
                            {"samples_per_s", m.samples_per_s},
                            {"skipped_steps", m.skipped_steps},
                            {"elapsed_s", m.elapsed_s}}
                 .dump()
          << std::endl;
    }
    if (!config.output.checkpoint.empty()) {
      save_checkpoint(config.output.checkpoint, model, &trainer.optimizer(), config,
                      {trainer.epoch(), trainer.optimizer().steps()}, data_cpu.standardization);
    }
  }

  result.test = evaluate(model, config.loss, test);
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (test.size() > 0) {
    if (out) {
      *out << std::fixed << std::setprecision(4) << "test loss " << result.test.loss << " accuracy "
           << result.test.accuracy << " (" << test.size() << " rows) in "
           << format_seconds(result.seconds) << std::endl;
    }
    if (log.is_open()) {
      log << nlohmann::json{{"test_loss", result.test.loss},
                            {"test_accuracy", result.test.accuracy},
                            {"elapsed_s", result.seconds}}
                 .dump()
          << std::endl;
    }
  }
  return result;
}

}  // namespace mlpx
