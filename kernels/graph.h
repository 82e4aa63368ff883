// One training step captured from a device's stream and replayed with one launch (a CUDA
// graph). What the captured code may do: docs/gpu-speed.md ("Graph capture"). No CUDA type
// appears here, so the trainer includes it in every build. Internal.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "mlpx/device.h"

namespace mlpx::cuda {

class StepGraph {
 public:
  explicit StepGraph(Device device);
  ~StepGraph();  // no wait: a replay still queued completes (CUDA frees the graph after it)
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  // Records what `body` enqueues on the device's stream (nothing runs). On a CUDA error,
  // beginning the capture included, the capture is abandoned (body not called if it could not
  // begin), the stream left usable, and false returned with the reason in `why`; other
  // exceptions (shape checks) propagate after the same clean-up.
  bool capture(const std::function<void()>& body, std::string& why);
  // Replays the captured step on the device's stream (asynchronous).
  void launch();
  bool ready() const;
  // The captured graph's kernel nodes (cudaGraphGetNodes: kernels, and the cuBLAS calls'
  // kernels) and all its nodes (copies and memsets too); 0 before a capture.
  int64_t kernel_nodes() const;
  int64_t nodes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlpx::cuda
