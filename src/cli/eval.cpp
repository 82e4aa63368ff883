// mlpx eval: loss and accuracy of a checkpoint on a config's test set (else its train set),
// printed as one JSON line.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "mlpx/mlpx.h"

namespace mlpx::cli {

namespace {

// The data of `config` that eval scores: its test set, else its training set.
Dataset eval_data(const Config& config, int64_t outputs) {
  DataSplits splits = load_data(config, outputs);
  return splits.test.size() > 0 ? splits.test : splits.train;
}

void run_eval(const std::string& model_path, const std::string& config_path,
              const std::string& device_name) {
  const Checkpoint checkpoint = load_checkpoint(model_path);
  Config config = config_path.empty() ? checkpoint.config : Config::load(config_path);
  if (config_path.empty() && config.data.source == DataSource::kFashionMnist &&
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
}

struct EvalArgs {
  std::string model, config, device;
};

}  // namespace

void add_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Loss and accuracy of a checkpoint, as JSON");
  cmd->add_option("--model", args->model, "Checkpoint (.safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--config", args->config, "Config whose test set (else train set) to score")
      ->check(CLI::ExistingFile);
  cmd->add_option("--device", args->device, "auto, cpu, cuda or cuda:N");
  cmd->callback([args] { run_eval(args->model, args->config, args->device); });
}

}  // namespace mlpx::cli
