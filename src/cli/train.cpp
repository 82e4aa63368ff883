// mlpx train: the training job of a config (default: the shipped Fashion-MNIST recipe, on the
// built-in synthetic set when Fashion-MNIST is missing), with command-line overrides.
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "mlpx/mlpx.h"
#include "options.h"
#include "progress.h"
#include "recipe.h"

namespace mlpx::cli {

namespace {

// The preemption signal received, 0 before one. The handler only stores it (async-signal-safe);
// run_training reads it between steps.
volatile std::sig_atomic_t preemption_signal = 0;

extern "C" void on_preemption_signal(int signal) { preemption_signal = signal; }

// SIGTERM (a scheduler's preemption, `scancel`, a `kill`) and SIGUSR1 (SLURM's
// `--signal=USR1@N`, Open MPI's mpirun forwards it) end training after the current step.
void watch_preemption_signals() {
  struct sigaction action {};
  action.sa_handler = on_preemption_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (const int signal : {SIGTERM, SIGUSR1}) sigaction(signal, &action, nullptr);
}

const char* signal_name(int signal) {
  switch (signal) {
    case SIGTERM:
      return "SIGTERM";
    case SIGUSR1:
      return "SIGUSR1";
    default:
      return "a signal";
  }
}

struct TrainArgs {
  std::string config, device, resume, init_weights;
  std::optional<std::string> checkpoint, log;  // given, possibly empty (an error)
  bool no_checkpoint = false;
  std::optional<int> epochs;
  std::optional<int64_t> batch_size;
  std::optional<double> lr;
  std::optional<uint64_t> seed;
  bool quiet = false;
};

void run_train(const TrainArgs& args) {
  // Without --config: the run being resumed, else the shipped Fashion-MNIST recipe.
  // --resume auto: the run's own checkpoint (output.checkpoint) when it exists, else fresh.
  const bool resume_auto = args.resume == "auto";
  const bool recipe = args.config.empty() && (args.resume.empty() || resume_auto);
  Config config = args.config.empty() && !args.resume.empty() && !resume_auto
                      ? load_checkpoint(args.resume).config
                      : config_or_recipe(args.config, "training");
  if (!args.device.empty()) config.device = args.device;
  if (args.epochs) {
    config.train.epochs = *args.epochs;
    config.schedule.total_epochs = std::max(1, *args.epochs);
  }
  if (args.batch_size) config.train.batch_size = *args.batch_size;
  if (args.lr) config.optimizer.lr = *args.lr;
  if (args.seed) config.seed = *args.seed;
  // An empty path would silently fall back to the config's: refuse it.
  MLPX_CHECK(!args.checkpoint || !args.checkpoint->empty(), ValueError,
             "--checkpoint: expected a file name, found an empty one (--no-checkpoint saves none)");
  MLPX_CHECK(!args.log || !args.log->empty(), ValueError,
             "--log: expected a file name, found an empty one");
  if (args.checkpoint) config.output.checkpoint = *args.checkpoint;
  if (args.no_checkpoint) config.output.checkpoint.clear();
  if (args.log) config.output.log = *args.log;
  config.validate();

  RunOptions options;
  options.resume = args.resume;
  std::string auto_note;
  if (resume_auto) {
    MLPX_CHECK(!config.output.checkpoint.empty(), ValueError,
               "--resume auto: expected the run's own checkpoint (output.checkpoint), found none "
               "(--no-checkpoint or an empty output.checkpoint)");
    const bool exists = std::filesystem::exists(config.output.checkpoint);
    options.resume = exists ? config.output.checkpoint : std::string();
    if (!exists) {
      auto_note =
          "--resume auto: no checkpoint at " + config.output.checkpoint + " yet: starting fresh";
    }
  }
  watch_preemption_signals();
  options.stop_signal = &preemption_signal;
  options.init_weights = args.init_weights;
  std::optional<ProgressBar> bar;
  if (!args.quiet) {
    RunCallbacks& show = options.callbacks;
    show.on_start = [recipe, &auto_note](const std::vector<std::string>& lines) {
      if (!auto_note.empty()) std::cout << auto_note << "\n";
      if (recipe)
        std::cout << "config: the Fashion-MNIST recipe (" << kFashionMnistRecipePath << ")\n";
      for (const std::string& line : lines) std::cout << line << "\n";
      std::cout << std::flush;
    };
    if (isatty(STDOUT_FILENO) != 0) {
      bar.emplace(std::cout);
      show.on_batch = [&bar](const BatchProgress& p) {
        bar->update(p);
        return true;
      };
    }
    show.on_epoch = [&bar, &config](const EpochMetrics& m) {
      if (bar) bar->finish();
      std::cout << epoch_line(m, config.train.epochs) << std::endl;
    };
  }
  const RunResult result = run_training(config, options);
  if (result.signal > 0) {
    // One line, whatever --quiet says: the job did not finish, and this is why and where.
    if (result.rank == 0) {
      const TrainingProgress& at = result.position;
      std::cerr << "stopped by " << signal_name(result.signal) << " after step " << at.step
                << " (epoch " << (at.epoch_batch > 0 ? at.epoch + 1 : at.epoch)
                << (at.epoch_batch > 0 ? ", batch " + std::to_string(at.epoch_batch)
                                       : std::string(" complete"))
                << "): "
                << (result.checkpoint.empty()
                        ? std::string("no checkpoint saved (output.checkpoint is empty)")
                        : "saved " + result.checkpoint + "; continue with --resume auto")
                << std::endl;
    }
    throw ExitStatus{128 + result.signal};
  }
  if (!args.quiet && result.rank == 0 && result.stopped_early) {
    const EarlyStopping& rule = *config.train.early_stopping;
    std::cout << "early stopping after epoch " << result.epochs.back().epoch << ": no "
              << metric_name(rule.metric) << " better than the best by more than " << rule.min_delta
              << " for " << std::max(rule.patience, 1) << " epoch(s)" << std::endl;
  }
  if (!args.quiet && result.rank == 0 && result.best_epoch > 0) {
    const Metric metric =
        config.train.early_stopping ? config.train.early_stopping->metric : Metric::kValLoss;
    std::cout << "best epoch " << result.best_epoch << ": " << metric_name(metric) << " "
              << result.best_value
              << (config.output.keep_best
                      ? " (kept in " + best_checkpoint_path(config.output.checkpoint) + ")"
                      : std::string())
              << std::endl;
  }
  if (!args.quiet && result.rank == 0 && result.test.samples > 0) {
    std::cout << test_line(result.test, result.seconds) << std::endl;
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model (default: Fashion-MNIST)");
  cmd->add_option("--config", args->config,
                  "JSON config file (default: configs/fashion-mnist.json, built in)")
      ->check(existing_file());
  cmd->add_option("--device", args->device, "auto, cpu, cuda or cuda:N")->check(device_name());
  cmd->add_option("--epochs", args->epochs, "Number of epochs")->check(integer_at_least(0));
  cmd->add_option("--batch-size", args->batch_size, "1 = SGD, 0 = full-batch GD, else mini-batch")
      ->check(integer_at_least(0));
  cmd->add_option("--lr", args->lr, "Learning rate")->check(number_at_least(0.0));
  cmd->add_option("--seed", args->seed, "Seed of the weights, shuffles and split")
      ->check(integer_at_least(0));
  auto* resume =
      cmd->add_option("--resume", args->resume,
                      "Continue from this checkpoint; auto: from output.checkpoint when it "
                      "exists, else start fresh (a requeued job)")
          ->check(CLI::Validator(
              [](std::string& value) {
                return value == "auto" ? std::string() : existing_file()(value);
              },
              "auto|FILE"));
  cmd->add_option("--init-weights", args->init_weights,
                  "Start from these weights (.safetensors: PyTorch nn.Sequential state_dict "
                  "names, or mlpx's)")
      ->check(existing_file())
      ->excludes(resume);
  auto* checkpoint = cmd->add_option("--checkpoint", args->checkpoint,
                                     "Where to save the model (see output.checkpoint_every)");
  cmd->add_flag("--no-checkpoint", args->no_checkpoint, "Save no checkpoint")->excludes(checkpoint);
  cmd->add_option("--log", args->log, "Where to write the JSON-lines metrics log");
  cmd->add_flag("--quiet", args->quiet, "Print nothing but errors");
  cmd->callback([args] { run_train(*args); });
}

}  // namespace mlpx::cli
