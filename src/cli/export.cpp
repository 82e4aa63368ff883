// mlpx export: a checkpoint as an ONNX model (docs/deploy.md) that ONNX Runtime, TensorRT and
// other serving stacks run, with the input normalisation folded in and the config and training
// metrics in its metadata.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "mlpx/mlpx.h"
#include "options.h"

namespace mlpx::cli {

namespace {

struct ExportArgs {
  std::string model, onnx, output = "auto", input_scale = "auto", metrics;
  int64_t opset = 17;
};

// The training log whose metrics go into the metadata: --metrics FILE, none for "none", else
// the checkpoint's output.log (a relative one from the checkpoint's folder) when it is there.
std::string metrics_log(const ExportArgs& args, const Config& config) {
  if (args.metrics == "none") return "";
  if (!args.metrics.empty()) return args.metrics;
  if (config.output.log.empty()) return "";
  std::filesystem::path log(config.output.log);
  if (log.is_relative()) log = std::filesystem::path(args.model).parent_path() / log;
  return std::filesystem::exists(log) ? log.string() : "";
}

void run_export(const ExportArgs& args) {
  // Options first: a wrong one is reported before the checkpoint is read.
  OnnxExportOptions options;
  options.output = parse_onnx_output(args.output);
  options.input_scale = parse_onnx_input_scale(args.input_scale);
  options.opset = args.opset;
  const Checkpoint checkpoint = load_checkpoint(args.model);
  const std::string log = metrics_log(args, checkpoint.config);
  if (!log.empty()) options.metrics_json = onnx_metrics_from_log(log);
  const OnnxExport result = export_onnx(checkpoint, args.onnx, options);
  std::cerr << "wrote " << args.onnx << ": " << result.model.size() << " bytes, opset "
            << options.opset << ", " << result.nodes << " nodes; input float32 [batch, "
            << result.inputs << "] (" << result.input << "), output "
            << onnx_output_name(result.output) << " [batch, " << result.outputs << "]; metrics "
            << (options.metrics_json.empty() ? "none" : "from " + log) << "\n";
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand("export", "A checkpoint as an ONNX model (docs/deploy.md)");
  cmd->add_option("--model", args->model, "Checkpoint (.safetensors)")
      ->required()
      ->check(existing_file());
  cmd->add_option("--onnx", args->onnx, "Where to write the ONNX model (.onnx)")->required();
  cmd->add_option("--opset", args->opset,
                  "ONNX opset of the graph (13 to the ONNX library's "
                  "newest)")
      ->capture_default_str();
  cmd->add_option("--output", args->output,
                  "auto (probabilities for classification losses, raw for mse/sse), "
                  "probabilities or raw")
      ->capture_default_str();
  cmd->add_option("--input-scale", args->input_scale,
                  "auto (divide by 255 when the model was trained on uint8 features, as predict "
                  "does for a uint8 file), 255 (always) or none (never)")
      ->capture_default_str();
  cmd->add_option("--metrics", args->metrics,
                  "Training log (metrics.jsonl) for the metadata; default: the checkpoint's "
                  "output.log when it is there; none: no metrics");
  cmd->callback([args] { run_export(*args); });
}

}  // namespace mlpx::cli
