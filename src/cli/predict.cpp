// mlpx predict: a checkpoint's outputs for new inputs (class probabilities for cross_entropy,
// each output's probability for bce, the raw outputs otherwise or with --raw), written
// atomically as .npy or .csv.
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "mlpx/mlpx.h"
#include "options.h"

namespace mlpx::cli {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// What the written values are, for the command's closing line.
const char* prediction_words(Activation head) {
  if (head == Activation::kSoftmax) return " class probabilities";
  if (head == Activation::kSigmoid) return " probabilities";
  return " outputs";
}

void run_predict(const std::string& model_path, const std::string& input, const std::string& output,
                 const std::string& device_name, bool raw) {
  MLPX_CHECK(ends_with(output, ".npy") || ends_with(output, ".csv"), ValueError,
             "predict: --output: expected a .npy or .csv file name, found '", output, "'");
  const Checkpoint checkpoint = load_checkpoint(model_path);
  const Config& config = checkpoint.config;
  const Array array = load_array(input);
  // The inputs go through what the training data went through.
  Tensor x = features_from(array, config.data.normalize);
  MLPX_CHECK(x.cols() == checkpoint.model.inputs(), ShapeError, input, ": expected rows of ",
             checkpoint.model.inputs(), " features (the model's inputs), found ", x.cols());
  checkpoint.standardization.apply(x);
  const Device device = Device::parse(device_name.empty() ? config.device : device_name);
  Tensor y = checkpoint.model.to(device).predict(x.to(device));
  const Activation head = raw ? Activation::kIdentity : prediction_activation(config.loss);
  if (head != Activation::kIdentity) activation_forward(head, y, y);
  y = y.to(Device::cpu());
  if (ends_with(output, ".npy")) {
    save_npy(output, y);
  } else {
    save_csv(output, y);
  }
  std::cerr << "wrote " << y.rows() << " x " << y.cols() << prediction_words(head) << " to "
            << output << "\n";
}

struct PredictArgs {
  std::string model, input, output, device;
  bool raw = false;
};

}  // namespace

void add_predict_command(CLI::App& app) {
  auto args = std::make_shared<PredictArgs>();
  CLI::App* cmd = app.add_subcommand("predict", "Outputs of a checkpoint for new inputs");
  cmd->add_option("--model", args->model, "Checkpoint (.safetensors)")
      ->required()
      ->check(existing_file());
  cmd->add_option("--input", args->input, "Inputs, .npy or .csv (or IDX), [N, features]")
      ->required()
      ->check(existing_file());
  cmd->add_option("--output", args->output, "Where to write predictions: .npy or .csv")->required();
  cmd->add_option("--device", args->device, "auto, cpu, cuda or cuda:N")->check(device_name());
  cmd->add_flag("--raw", args->raw,
                "The last layer's raw outputs (logits), without the softmax of cross_entropy or "
                "the sigmoid of bce");
  cmd->callback(
      [args] { run_predict(args->model, args->input, args->output, args->device, args->raw); });
}

}  // namespace mlpx::cli
