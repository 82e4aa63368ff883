// The parts of mlpx/onnx.h that need no ONNX library: the output's names and the metrics read
// from a training log. Built with and without MLPX_ONNX.
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/names.h"
#include "mlpx/error.h"
#include "mlpx/onnx.h"

namespace mlpx {

namespace {
constexpr detail::EnumName<OnnxOutput> kOnnxOutputNames[] = {
    {OnnxOutput::kAuto, "auto"},
    {OnnxOutput::kProbabilities, "probabilities"},
    {OnnxOutput::kRaw, "raw"},
};
constexpr detail::EnumName<OnnxInputScale> kOnnxInputScaleNames[] = {
    {OnnxInputScale::kAuto, "auto"},
    {OnnxInputScale::kDivide255, "255"},
    {OnnxInputScale::kNone, "none"},
};
}  // namespace

OnnxOutput parse_onnx_output(const std::string& name) {
  return detail::parse_enum(kOnnxOutputNames, name, "export: --output");
}

std::string onnx_output_name(OnnxOutput output) {
  return detail::enum_name(kOnnxOutputNames, output);
}

OnnxInputScale parse_onnx_input_scale(const std::string& name) {
  return detail::parse_enum(kOnnxInputScaleNames, name, "export: --input-scale");
}

std::string onnx_input_scale_name(OnnxInputScale scale) {
  return detail::enum_name(kOnnxInputScaleNames, scale);
}

std::string onnx_metrics_from_log(const std::string& path) {
  std::ifstream in(path);
  MLPX_CHECK(in, IoError, path, ": cannot open the training log");
  // The log is appended to by resumed runs: the last epoch line and the last test line are
  // the run that wrote the checkpoint last.
  nlohmann::json epoch_line;
  nlohmann::json test_line;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json value = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    MLPX_CHECK(value.is_object(), IoError, path, ":", number,
               ": expected a JSON object per line (a training log), found '", line.substr(0, 60),
               "'");
    if (value.contains("epoch")) {
      epoch_line = std::move(value);
    } else if (value.contains("test_loss")) {
      test_line = std::move(value);
    }
  }
  if (epoch_line.is_null() && test_line.is_null()) return "";
  nlohmann::json metrics = epoch_line.is_null() ? nlohmann::json::object() : epoch_line;
  if (!test_line.is_null()) {
    for (const auto& [key, value] : test_line.items()) {
      if (key != "elapsed_s") metrics[key] = value;
    }
  }
  return metrics.dump();
}

}  // namespace mlpx
