#include "kernels/graph.h"

#include <vector>

#include "kernels/check.h"
#include "kernels/device_counters.h"
#include "kernels/runtime.h"
#include "mlpx/error.h"

namespace mlpx::cuda {

struct StepGraph::Impl {
  cudaStream_t stream = nullptr;
  cudaGraphExec_t exec = nullptr;
  int64_t kernel_nodes = 0, nodes = 0;

  // Counts the graph's nodes by type (cudaGraphGetNodes), so that a GPU reports it too. A
  // failed query (logged) leaves the counts at 0: they are figures, not the step.
  void count_nodes(cudaGraph_t graph) noexcept {
    size_t count = 0;
    if (!MLPX_CUDA_CHECK_NOTHROW(cudaGraphGetNodes(graph, nullptr, &count))) return;
    std::vector<cudaGraphNode_t> all(count);
    if (count > 0 && !MLPX_CUDA_CHECK_NOTHROW(cudaGraphGetNodes(graph, all.data(), &count))) return;
    int64_t kernels = 0;
    for (cudaGraphNode_t node : all) {
      cudaGraphNodeType type = cudaGraphNodeTypeEmpty;
      if (!MLPX_CUDA_CHECK_NOTHROW(cudaGraphNodeGetType(node, &type))) return;
      if (type == cudaGraphNodeTypeKernel) ++kernels;
    }
    nodes = static_cast<int64_t>(count);
    kernel_nodes = kernels;
  }

  // Ends a failed capture and drops what it recorded; the capture's error is reported by the
  // caller, not left sticky.
  void abandon() noexcept {
    cudaGraph_t graph = nullptr;
    cudaStreamEndCapture(stream, &graph);
    if (graph != nullptr) cudaGraphDestroy(graph);
    cudaGetLastError();
  }
};

StepGraph::StepGraph(Device device) : impl_(std::make_unique<Impl>()) {
  impl_->stream = stream_of(device);
}

// No wait: CUDA frees an executable graph that is still running once it has finished
// (cudaGraphExecDestroy's contract), so the replays already queued complete as launched.
StepGraph::~StepGraph() {
  if (impl_->exec != nullptr) MLPX_CUDA_CHECK_NOTHROW(cudaGraphExecDestroy(impl_->exec));
}

bool StepGraph::capture(const std::function<void()>& body, std::string& why) {
  // A capture that cannot even begin (the stream is capturing already, or the driver refuses)
  // is the documented fallback too: plain launches, not an exception.
  if (const cudaError_t begun =
          cudaStreamBeginCapture(impl_->stream, cudaStreamCaptureModeThreadLocal);
      begun != cudaSuccess) {
    cudaGetLastError();
    why = std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(begun);
    return false;
  }
  try {
    body();
  } catch (const CudaError& e) {
    impl_->abandon();
    why = e.what();
    return false;
  } catch (...) {
    impl_->abandon();
    throw;
  }
  cudaGraph_t graph = nullptr;
  cudaError_t status = cudaStreamEndCapture(impl_->stream, &graph);
  if (status == cudaSuccess) status = cudaGraphInstantiate(&impl_->exec, graph, 0);
  if (status == cudaSuccess) impl_->count_nodes(graph);
  if (graph != nullptr) cudaGraphDestroy(graph);
  if (status != cudaSuccess) {
    cudaGetLastError();
    impl_->exec = nullptr;
    why = cudaGetErrorString(status);
    return false;
  }
  return true;
}

void StepGraph::launch() { MLPX_CUDA_CHECK(cudaGraphLaunch(impl_->exec, impl_->stream)); }

bool StepGraph::ready() const { return impl_->exec != nullptr; }
int64_t StepGraph::kernel_nodes() const { return impl_->kernel_nodes; }
int64_t StepGraph::nodes() const { return impl_->nodes; }

}  // namespace mlpx::cuda
