#include "tune/h200_model.h"

#include <algorithm>

namespace mlpx {

const H200Constants& h200_constants() {
  // The one place of the model's figures.
  //  - Memory: NVIDIA's H200 datasheet gives 4.8 TB/s (HBM3e); a device-to-device copy measured
  //    on an H200 at this workplace reached about 4.3 TB/s, which is what a streaming kernel
  //    can get: the model uses the measured figure.
  //  - bf16: the datasheet's dense bf16 tensor-core peak is about 989 TFLOP/s (1979 with
  //    sparsity); a large bf16 GEMM measured here reached about 790 TFLOP/s: the model uses it.
  //  - tf32: datasheet dense ~494 TFLOP/s; fp32 (no tensor cores): datasheet ~67 TFLOP/s.
  //    Neither was measured here: the datasheet's figures.
  //  - Per graph node: 2 us, an assumption of this model (kernels launched back to back from a
  //    graph start a few microseconds apart), not a measurement.
  static const H200Constants constants{
      4.3e12,
      790e12,
      494e12,
      67e12,
      2e-6,
      "memory 4.3 TB/s (measured D2D copy; datasheet 4.8), bf16 790 TFLOP/s (measured GEMM; "
      "datasheet 989 dense), tf32 494 and fp32 67 TFLOP/s (datasheet), 2 us per graph node "
      "(assumed)"};
  return constants;
}

double projected_h200_us(const std::vector<DeviceWork>& work) {
  const H200Constants& c = h200_constants();
  double seconds = 0.0;
  for (const DeviceWork& w : work) {
    const double peak = w.precision == "bf16"   ? c.bf16_flops_per_s
                        : w.precision == "tf32" ? c.tf32_flops_per_s
                                                : c.fp32_flops_per_s;
    const double memory_s = (w.bytes_read + w.bytes_written) / c.memory_bytes_per_s;
    const double compute_s = w.flops / peak;
    seconds += std::max(memory_s, compute_s) + c.graph_node_s;
  }
  return seconds * 1e6;
}

}  // namespace mlpx
