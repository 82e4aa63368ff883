// ONNX export in a build without the ONNX library (MLPX_ONNX OFF, or AUTO without
// libonnx-dev): the entry points of mlpx/onnx.h say how to build it in.
#include <string>

#include "mlpx/error.h"
#include "mlpx/onnx.h"

namespace mlpx {

namespace {
[[noreturn]] void missing_onnx() {
  throw Error(
      "export: expected a build of mlpx with ONNX export, found one without: install the ONNX "
      "library (Debian: apt-get install libonnx-dev libprotobuf-dev, or `make deps`) and "
      "configure again (MLPX_ONNX=AUTO or ON)");
}
}  // namespace

bool onnx_export_available() { return false; }

int64_t onnx_max_opset() { return 0; }

OnnxExport onnx_model(const Checkpoint&, const OnnxExportOptions&) { missing_onnx(); }

OnnxExport export_onnx(const Checkpoint&, const std::string&, const OnnxExportOptions&) {
  missing_onnx();
}

}  // namespace mlpx
