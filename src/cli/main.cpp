// The mlpx command line: train, eval, predict. Exit status 0 on success; on failure one line
// "error: ..." on stderr and status 1 (2 for bad command-line usage).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "mlpx/mlpx.h"

namespace {

using namespace mlpx;

struct TrainArgs {
  std::string config, device, resume, checkpoint, log;
  std::optional<int> epochs;
  std::optional<int64_t> batch_size;
  std::optional<double> lr;
  std::optional<uint64_t> seed;
  bool quiet = false;
};

int run_train(const TrainArgs& args) {
  Config config;
  if (!args.config.empty()) {
    config = Config::load(args.config);
  } else if (!args.resume.empty()) {
    config = load_checkpoint(args.resume).config;  // the run being continued
  } else if (!fashion_mnist_available(config.data.dir)) {
    std::cerr << "note: Fashion-MNIST not found in " << config.data.dir
              << " (Debian package dataset-fashion-mnist); training on the built-in synthetic "
                 "data set instead\n";
    config.data.source = "synthetic";
  }
  if (!args.device.empty()) config.device = args.device;
  if (args.epochs) {
    config.train.epochs = *args.epochs;
    config.schedule.total_epochs = std::max(1, *args.epochs);
  }
  if (args.batch_size) config.train.batch_size = *args.batch_size;
  if (args.lr) config.optimizer.lr = *args.lr;
  if (args.seed) config.seed = *args.seed;
  if (!args.checkpoint.empty()) config.output.checkpoint = args.checkpoint;
  if (!args.log.empty()) config.output.log = args.log;
  config.validate();

  RunOptions options;
  options.resume = args.resume;
  options.out = args.quiet ? nullptr : &std::cout;
  options.progress_bar = isatty(STDOUT_FILENO) != 0;
  run_training(config, options);
  return 0;
}

// The data of `config` that eval scores: its test set, else its training set.
Dataset eval_data(const Config& config, int64_t outputs) {
  DataSplits splits = load_data(config, outputs);
  return splits.test.size() > 0 ? splits.test : splits.train;
}

int run_eval(const std::string& model_path, const std::string& config_path,
             const std::string& device_name) {
  const Checkpoint checkpoint = load_checkpoint(model_path);
  Config config = config_path.empty() ? checkpoint.config : Config::load(config_path);
  if (config_path.empty() && config.data.source == "fashion-mnist" &&
      !fashion_mnist_available(config.data.dir)) {
    throw IoError(
        "eval: the checkpoint was trained on fashion-mnist, whose files are missing "
        "from " +
        config.data.dir + "; install dataset-fashion-mnist or pass --config");
  }
  const Device device = Device::parse(device_name.empty() ? config.device : device_name);
  const Dataset data = eval_data(config, checkpoint.model.outputs()).to(device);
  MLPX_CHECK(data.features() == checkpoint.model.inputs(), ShapeError, "eval: the model takes ",
             checkpoint.model.inputs(), " features, the data has ", data.features());
  const Evaluation e = evaluate(checkpoint.model.to(device), config.loss, data);
  std::cout
      << nlohmann::json{{"loss", e.loss}, {"accuracy", e.accuracy}, {"samples", e.samples}}.dump()
      << std::endl;
  return 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int run_predict(const std::string& model_path, const std::string& input, const std::string& output,
                const std::string& device_name) {
  MLPX_CHECK(ends_with(output, ".npy") || ends_with(output, ".csv"), ValueError,
             "predict: --output: expected a .npy or .csv file name, found '", output, "'");
  const Checkpoint checkpoint = load_checkpoint(model_path);
  const Config& config = checkpoint.config;
  const Array array = load_array(input);
  Tensor x = to_float_tensor(array);
  MLPX_CHECK(x.cols() == checkpoint.model.inputs(), ShapeError, input, ": expected rows of ",
             checkpoint.model.inputs(), " features (the model's inputs), found ", x.cols());
  // The inputs go through what the training data went through.
  if (config.data.normalize == "scale01" && array.type == ElementType::kUint8) {
    float* v = x.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) v[i] /= 255.0f;
  }
  checkpoint.standardization.apply(x);
  const Device device = Device::parse(device_name.empty() ? config.device : device_name);
  Tensor y = checkpoint.model.to(device).predict(x.to(device));
  if (config.loss == Loss::kCrossEntropy) activation_forward(Activation::kSoftmax, y, y);
  y = y.to(Device::cpu());
  if (ends_with(output, ".npy")) {
    save_npy(output, y);
  } else {
    save_csv(output, y);
  }
  std::cerr << "wrote " << y.rows() << " x " << y.cols()
            << (config.loss == Loss::kCrossEntropy ? " class probabilities" : " outputs") << " to "
            << output << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mlpx: train multilayer perceptrons on NVIDIA GPUs (and CPUs)", "mlpx"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mlpx 0.1.0");

  TrainArgs train;
  CLI::App* train_cmd = app.add_subcommand("train", "Train a model (default: Fashion-MNIST)");
  train_cmd->add_option("--config", train.config, "JSON config file (every key has a default)")
      ->check(CLI::ExistingFile);
  train_cmd->add_option("--device", train.device, "auto, cpu, cuda or cuda:N");
  train_cmd->add_option("--epochs", train.epochs, "Number of epochs")
      ->check(CLI::NonNegativeNumber);
  train_cmd
      ->add_option("--batch-size", train.batch_size, "1 = SGD, 0 = full-batch GD, else mini-batch")
      ->check(CLI::NonNegativeNumber);
  train_cmd->add_option("--lr", train.lr, "Learning rate");
  train_cmd->add_option("--seed", train.seed, "Seed of the weights, shuffles and split");
  train_cmd->add_option("--resume", train.resume, "Continue from this checkpoint")
      ->check(CLI::ExistingFile);
  train_cmd->add_option("--checkpoint", train.checkpoint, "Where to save the model");
  train_cmd->add_option("--log", train.log, "Where to write the JSON-lines metrics log");
  train_cmd->add_flag("--quiet", train.quiet, "Print nothing but errors");

  std::string model, config, device, input, output;
  CLI::App* eval_cmd = app.add_subcommand("eval", "Loss and accuracy of a checkpoint, as JSON");
  eval_cmd->add_option("--model", model, "Checkpoint (.safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  eval_cmd->add_option("--config", config, "Config whose test set (else train set) to score")
      ->check(CLI::ExistingFile);
  eval_cmd->add_option("--device", device, "auto, cpu, cuda or cuda:N");

  CLI::App* predict_cmd = app.add_subcommand("predict", "Outputs of a checkpoint for new inputs");
  predict_cmd->add_option("--model", model, "Checkpoint (.safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  predict_cmd->add_option("--input", input, "Inputs, .npy or .csv (or IDX), [N, features]")
      ->required()
      ->check(CLI::ExistingFile);
  predict_cmd->add_option("--output", output, "Where to write predictions: .npy or .csv")
      ->required();
  predict_cmd->add_option("--device", device, "auto, cpu, cuda or cuda:N");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*train_cmd) return run_train(train);
    if (*eval_cmd) return run_eval(model, config, device);
    if (*predict_cmd) return run_predict(model, input, output, device);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
