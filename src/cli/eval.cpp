// mlpx eval: loss and accuracy (regression: R^2 and MSE) of a checkpoint on a config's test
// set (else its train set), printed as one JSON line.
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "mlpx/mlpx.h"
#include "options.h"

namespace mlpx::cli {

namespace {

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
  // Only the scored set is read, normalised with the checkpoint's training statistics.
  const Dataset data =
      load_evaluation_set(config, checkpoint.model.outputs(), checkpoint.standardization)
          .to(device);
  MLPX_CHECK(data.features() == checkpoint.model.inputs(), ShapeError, "eval: the model takes ",
             checkpoint.model.inputs(), " features, the data has ", data.features());
  const Evaluation e = evaluate(checkpoint.model.to(device), config.loss, data);
  nlohmann::json line = {{"loss", e.loss}};
  if (e.regression) {
    line["r2"] = std::isfinite(e.r2) ? nlohmann::json(e.r2) : nlohmann::json(nullptr);
    line["mse"] = e.mse;
  } else {
    line["accuracy"] = e.accuracy;
  }
  line["samples"] = e.samples;
  std::cout << line.dump() << std::endl;
}

struct EvalArgs {
  std::string model, config, device;
};

}  // namespace

void add_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Loss and accuracy (regression: R^2, MSE) of a checkpoint, as JSON");
  cmd->add_option("--model", args->model, "Checkpoint (.safetensors)")
      ->required()
      ->check(existing_file());
  cmd->add_option("--config", args->config, "Config whose test set (else train set) to score")
      ->check(existing_file());
  cmd->add_option("--device", args->device, "auto, cpu, cuda or cuda:N")->check(device_name());
  cmd->callback([args] { run_eval(args->model, args->config, args->device); });
}

}  // namespace mlpx::cli
