// What one piece of device work moved and computed, as the GPU simulator counts it
// (kernels/device_counters.h; sim/README.md "Counters"). Plain data, no CUDA type. Internal.
#pragma once

#include <cstdint>
#include <string>

namespace mlpx {

struct DeviceWork {
  enum class Kind { kKernel, kGemm, kCopy, kMemset };
  std::string name;  // the kernel and its launch site, or the cuBLAS call with its shape
  Kind kind = Kind::kKernel;
  double bytes_read = 0.0, bytes_written = 0.0;  // global memory
  double flops = 0.0;                            // GEMMs: 2 m n k
  std::string precision;                         // GEMMs: "fp32", "tf32" or "bf16"
};

}  // namespace mlpx
