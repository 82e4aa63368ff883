// A model, not a measurement: the time an NVIDIA H200 would take for a step's device work as
// the GPU simulator counted it (docs/benchmarks.md, "The H200 model"). Each piece of work takes
// max(its bytes / memory bandwidth, its FLOPs / the peak of its precision), plus a fixed cost
// per node of a CUDA graph; the step is their sum (no overlap between kernels). Every constant,
// with its source, is in h200_model.cpp. Internal.
#pragma once

#include <string>
#include <vector>

#include "core/device_work.h"

namespace mlpx {

struct H200Constants {
  double memory_bytes_per_s;  // global memory, as a kernel streams it
  double bf16_flops_per_s;    // dense GEMM peaks by input precision
  double tf32_flops_per_s;
  double fp32_flops_per_s;
  double graph_node_s;  // added per piece of work launched from a graph
  std::string sources;  // where each figure comes from, one line
};

// The constants the projection uses.
const H200Constants& h200_constants();

// The model's time for `work` (one step), in microseconds.
double projected_h200_us(const std::vector<DeviceWork>& work);

}  // namespace mlpx
