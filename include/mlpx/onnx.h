// ONNX export (docs/deploy.md): a checkpoint as an ONNX model of standard operators that ONNX
// Runtime, TensorRT, OpenVINO or Triton run. The graph takes the raw inputs `mlpx predict`
// takes: float32 [batch, inputs], batch dynamic, with the checkpoint's input normalisation
// (uint8 / 255, or its standardisation) folded in; it is checked with the ONNX library (checker
// and strict shape inference) before it is written, atomically.
#pragma once

#include <cstdint>
#include <string>

#include "mlpx/checkpoint.h"

namespace mlpx {

// What the graph's output holds. kAuto: what `mlpx predict` gives (prediction_activation():
// kProbabilities for cross_entropy and bce, kRaw for the others). kProbabilities: softmax
// over each row for cross_entropy and kl_div, sigmoid of each output for bce (a ValueError
// for mse and sse, whose outputs are values). kRaw: the last layer's outputs, as
// Sequential::predict gives them (logits for the classification losses).
enum class OnnxOutput { kAuto, kProbabilities, kRaw };

// "auto", "probabilities", "raw".
OnnxOutput parse_onnx_output(const std::string& name);
std::string onnx_output_name(OnnxOutput output);

// Whether the graph divides its inputs by 255 (before the model's standardisation, which is
// folded in either way). kAuto: when the checkpoint's data config says the model was trained on
// uint8 features (Fashion-MNIST, or uint8 files under data.normalize auto or scale01), so that
// the graph takes raw values 0 to 255 as `mlpx predict` reads them from a uint8 file.
// kDivide255: always. kNone: never; the graph takes the features as the model does (what
// Model.predict in Python takes).
enum class OnnxInputScale { kAuto, kDivide255, kNone };

// "auto", "255", "none".
OnnxInputScale parse_onnx_input_scale(const std::string& name);
std::string onnx_input_scale_name(OnnxInputScale scale);

struct OnnxExportOptions {
  // The ONNX opset (default domain) the graph is written for: from kMinOnnxOpset to the
  // newest the ONNX library knows (onnx_max_opset()); a ValueError outside.
  int64_t opset = 17;
  OnnxOutput output = OnnxOutput::kAuto;
  OnnxInputScale input_scale = OnnxInputScale::kAuto;
  // The training metrics stored in the metadata as mlpx.metrics: a JSON object's text, or ""
  // for none. onnx_metrics_from_log() reads them from a training log (metrics.jsonl).
  std::string metrics_json;
};

// The oldest opset the exporter writes: Softmax over the last axis of any rank (opset 13).
inline constexpr int64_t kMinOnnxOpset = 13;

// True when this mlpx was built with the ONNX library (MLPX_ONNX, libonnx-dev); without it,
// the functions below throw an Error saying how to build it in.
bool onnx_export_available();
// The newest opset of the ONNX library mlpx was built with (17 for Debian 12's ONNX 1.12).
int64_t onnx_max_opset();

struct OnnxExport {
  std::string model;                     // the serialized ModelProto
  OnnxOutput output = OnnxOutput::kRaw;  // kProbabilities or kRaw: what kAuto resolved to
  int64_t inputs = 0;                    // the input's columns
  int64_t outputs = 0;                   // the output's columns
  int64_t nodes = 0;                     // the graph's operators
  std::string input;  // what the graph takes, in words (its metadata's mlpx.input)
};

// The ONNX model of `checkpoint` (its model on any device, float32), checked by the ONNX
// checker and by strict shape inference. ValueError for a bad opset or output, and for a part
// of the model that ONNX cannot express at this opset, naming the layer and the reason.
OnnxExport onnx_model(const Checkpoint& checkpoint, const OnnxExportOptions& options = {});

// onnx_model() written to `path` atomically (a temporary file renamed over it); IoError when
// it cannot be written.
OnnxExport export_onnx(const Checkpoint& checkpoint, const std::string& path,
                       const OnnxExportOptions& options = {});

// The metrics of a training log (`mlpx train`'s output.log, JSON lines): the last epoch line
// merged with the last test line, as one JSON object's text; "" when the file holds none.
// IoError when it cannot be read, naming the file and the line that is not JSON.
std::string onnx_metrics_from_log(const std::string& path);

}  // namespace mlpx
