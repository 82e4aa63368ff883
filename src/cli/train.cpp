// mlpx train: the training job of a config (default: Fashion-MNIST, or the built-in synthetic
// set when it is missing), with command-line overrides.
#include <unistd.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "mlpx/mlpx.h"
#include "progress.h"

namespace mlpx::cli {

namespace {

struct TrainArgs {
  std::string config, device, resume;
  std::optional<std::string> checkpoint, log;  // given, possibly empty (an error)
  bool no_checkpoint = false;
  std::optional<int> epochs;
  std::optional<int64_t> batch_size;
  std::optional<double> lr;
  std::optional<uint64_t> seed;
  bool quiet = false;
};

void run_train(const TrainArgs& args) {
  Config config;
  if (!args.config.empty()) {
    config = Config::load(args.config);
  } else if (!args.resume.empty()) {
    config = load_checkpoint(args.resume).config;  // the run being continued
  } else if (!fashion_mnist_available(config.data.dir)) {
    std::cerr << "note: Fashion-MNIST not found in " << config.data.dir
              << " (Debian package dataset-fashion-mnist); training on the built-in synthetic "
                 "data set instead\n";
    config.data.source = DataSource::kSynthetic;
  }
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
  std::optional<ProgressBar> bar;
  if (!args.quiet) {
    RunCallbacks& show = options.callbacks;
    show.on_start = [](const std::vector<std::string>& lines) {
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
  if (!args.quiet && result.test.samples > 0) {
    std::cout << test_line(result.test, result.seconds) << std::endl;
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model (default: Fashion-MNIST)");
  cmd->add_option("--config", args->config, "JSON config file (every key has a default)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--device", args->device, "auto, cpu, cuda or cuda:N");
  cmd->add_option("--epochs", args->epochs, "Number of epochs")->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch-size", args->batch_size, "1 = SGD, 0 = full-batch GD, else mini-batch")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--lr", args->lr, "Learning rate");
  cmd->add_option("--seed", args->seed, "Seed of the weights, shuffles and split");
  cmd->add_option("--resume", args->resume, "Continue from this checkpoint")
      ->check(CLI::ExistingFile);
  auto* checkpoint = cmd->add_option("--checkpoint", args->checkpoint,
                                     "Where to save the model (see output.checkpoint_every)");
  cmd->add_flag("--no-checkpoint", args->no_checkpoint, "Save no checkpoint")->excludes(checkpoint);
  cmd->add_option("--log", args->log, "Where to write the JSON-lines metrics log");
  cmd->add_flag("--quiet", args->quiet, "Print nothing but errors");
  cmd->callback([args] { run_train(*args); });
}

}  // namespace mlpx::cli
