// Preemption (docs/reliability.md): a run stopped by SIGTERM or SIGUSR1 after random steps,
// mid-epoch or with an epoch's last step, and resumed from its checkpoint each time, ends
// bit-identical to the uninterrupted run: weights, optimizer state, step counter, every
// epoch's metrics and the metrics log. No step is lost or repeated. The signals are real: a
// handler as the CLI's stores the number, raised from the progress callback at the chosen step.
#include <algorithm>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "mlpx/checkpoint.h"
#include "mlpx/training.h"
#include "reliability_util.h"
#include "test_util.h"

namespace mlpx {
namespace {

using test::bitwise_equal;
using test::ScratchDir;

volatile std::sig_atomic_t received_signal = 0;

extern "C" void record_signal(int signal) { received_signal = signal; }

// SIGTERM and SIGUSR1 recorded in received_signal while it lives; the old handlers after.
class SignalWatch {
 public:
  SignalWatch() {
    struct sigaction action {};
    action.sa_handler = record_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, &old_term_);
    sigaction(SIGUSR1, &action, &old_usr1_);
  }
  ~SignalWatch() {
    sigaction(SIGTERM, &old_term_, nullptr);
    sigaction(SIGUSR1, &old_usr1_, nullptr);
  }
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

 private:
  struct sigaction old_term_ {};
  struct sigaction old_usr1_ {};
};

// 600 synthetic rows, 480 of them trained on in batches of 16: 30 steps an epoch, 6 epochs.
// Shuffled, with dropout (masks keyed by the step) and Adam (state and a step counter).
constexpr int64_t kBatches = 30, kEpochs = 6;

Config small_run(const ScratchDir& dir, const std::string& name) {
  Config config = Config::from_json(R"({
    "seed": 99, "device": "cpu",
    "data": {"source": "synthetic", "validation_split": 0.2,
             "synthetic": {"train_samples": 600, "test_samples": 100, "features": 10, "classes": 4}},
    "model": {"layers": [{"units": 24, "activation": "relu", "dropout": 0.2},
                         {"units": 4, "activation": "identity"}]},
    "optimizer": {"type": "adam", "lr": 0.003},
    "train": {"epochs": 6, "batch_size": 16, "shuffle": true}
  })");
  config.output.checkpoint = dir.path(name + ".safetensors");
  config.output.log = dir.path(name + ".jsonl");
  return config;
}

// The log's lines without the figures that measure time.
std::vector<nlohmann::json> log_without_timing(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    j.erase("elapsed_s");
    j.erase("samples_per_s");
    lines.push_back(j);
  }
  return lines;
}

TEST(Preemption, StoppedAtRandomStepsAndResumedEqualsTheUninterruptedRun) {
  ScratchDir dir;
  const Config whole_config = small_run(dir, "whole");
  const RunResult whole = run_training(whole_config);
  const Checkpoint reference = load_checkpoint(whole_config.output.checkpoint);
  ASSERT_EQ(reference.progress.step, kBatches * kEpochs);

  // Three random steps strictly inside the run, and one epoch's last step.
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("stop steps drawn with seed " + std::to_string(seed));
  std::mt19937 draw(seed);
  std::uniform_int_distribution<int64_t> step_in_run(1, kBatches * kEpochs - 1);
  std::set<int64_t> stops = {kBatches * 2};
  while (stops.size() < 4) stops.insert(step_in_run(draw));

  const Config config = small_run(dir, "stopped");
  SignalWatch watch;
  RunOptions options;
  options.stop_signal = &received_signal;
  std::vector<EpochMetrics> epochs;
  int signal = SIGTERM;
  for (const int64_t stop : stops) {
    SCOPED_TRACE("stopped after step " + std::to_string(stop));
    received_signal = 0;
    options.callbacks.on_batch = [stop, signal](const BatchProgress& p) {
      if ((p.epoch - 1) * p.batches + p.batch == stop) std::raise(signal);
      return true;
    };
    const RunResult run = run_training(config, options);
    ASSERT_EQ(run.signal, signal);
    ASSERT_TRUE(run.stopped);
    EXPECT_EQ(run.checkpoint, config.output.checkpoint);
    EXPECT_EQ(run.position.step, stop);
    EXPECT_EQ(run.position.epoch, stop / kBatches);
    EXPECT_EQ(run.position.epoch_batch, stop % kBatches);
    const Checkpoint saved = load_checkpoint(config.output.checkpoint);
    EXPECT_EQ(saved.progress.step, stop);
    EXPECT_EQ(saved.progress.epoch_batch, stop % kBatches);
    EXPECT_EQ(static_cast<int64_t>(saved.progress.batch_losses.size()), stop % kBatches);
    epochs.insert(epochs.end(), run.epochs.begin(), run.epochs.end());
    options.resume = config.output.checkpoint;
    signal = signal == SIGTERM ? SIGUSR1 : SIGTERM;
  }
  received_signal = 0;
  options.callbacks.on_batch = nullptr;
  const RunResult last = run_training(config, options);
  EXPECT_EQ(last.signal, 0);
  EXPECT_FALSE(last.stopped);
  epochs.insert(epochs.end(), last.epochs.begin(), last.epochs.end());

  const Checkpoint resumed = load_checkpoint(config.output.checkpoint);
  EXPECT_EQ(resumed.progress.step, reference.progress.step);
  EXPECT_EQ(resumed.progress.epoch, reference.progress.epoch);
  EXPECT_EQ(resumed.progress.epoch_batch, 0);
  EXPECT_TRUE(bitwise_equal(resumed.model.params(), reference.model.params()));
  ASSERT_EQ(resumed.optimizer_state.size(), reference.optimizer_state.size());
  for (size_t i = 0; i < reference.optimizer_state.size(); ++i) {
    EXPECT_EQ(resumed.optimizer_state[i].first, reference.optimizer_state[i].first);
    EXPECT_TRUE(
        bitwise_equal(resumed.optimizer_state[i].second, reference.optimizer_state[i].second))
        << reference.optimizer_state[i].first;
  }
  ASSERT_EQ(epochs.size(), whole.epochs.size());
  for (size_t e = 0; e < epochs.size(); ++e) {
    SCOPED_TRACE("epoch " + std::to_string(e + 1));
    EXPECT_EQ(epochs[e].epoch, whole.epochs[e].epoch);
    EXPECT_EQ(epochs[e].steps, whole.epochs[e].steps);
    EXPECT_EQ(epochs[e].train_loss, whole.epochs[e].train_loss);
    EXPECT_EQ(epochs[e].train_accuracy, whole.epochs[e].train_accuracy);
    EXPECT_EQ(epochs[e].val_loss, whole.epochs[e].val_loss);
    EXPECT_EQ(epochs[e].val_accuracy, whole.epochs[e].val_accuracy);
  }
  EXPECT_EQ(last.test.loss, whole.test.loss);
  EXPECT_EQ(last.test.accuracy, whole.test.accuracy);
  EXPECT_EQ(log_without_timing(config.output.log), log_without_timing(whole_config.output.log));
}

// Without output.checkpoint the run still stops after the step, and says nothing was saved.
TEST(Preemption, WithoutACheckpointStopsAndSavesNothing) {
  ScratchDir dir;
  Config config = small_run(dir, "none");
  config.output.checkpoint.clear();
  SignalWatch watch;
  received_signal = 0;
  RunOptions options;
  options.stop_signal = &received_signal;
  options.callbacks.on_batch = [](const BatchProgress& p) {
    if (p.epoch == 2 && p.batch == 5) std::raise(SIGTERM);
    return true;
  };
  const RunResult run = run_training(config, options);
  EXPECT_EQ(run.signal, SIGTERM);
  EXPECT_TRUE(run.checkpoint.empty());
  EXPECT_EQ(run.position.step, kBatches + 5);
  EXPECT_EQ(run.position.epoch_batch, 5);
  EXPECT_EQ(run.epochs.size(), 1u);
}

}  // namespace
}  // namespace mlpx
