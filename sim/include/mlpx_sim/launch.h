// The seam between the simulator's two halves, and the launch helper the kernels use.
//
//   runtime (sim/src/runtime*.cpp, cuda_runtime_api.h): device memory, streams, events, graph
//     capture, cuBLAS and Thrust stand-ins. A kernel launch is enqueued on a stream and runs
//     when the stream's queue is drained (a synchronisation point), or is recorded while the
//     stream captures.
//   executor (sim/src/executor.cpp, mlpx_sim/device.h): runs one launch to completion: every
//     block (in an order shuffled by MLPX_SIM_SEED), every thread of a block a fiber, with the
//     device built-ins (threadIdx, __syncthreads, shuffles, atomics) and their checks.
//
// Kernels launch through MLPX_LAUNCH (kernels/launch.cuh defines it for both builds):
//   CUDA: kernel<<<grid, block, shared_bytes, stream>>>(args...)
//   SIM:  ::mlpx_sim::Launcher(kernel, "kernel", __FILE__, __LINE__, grid, block, shared_bytes,
//                               stream)(args...)
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <tuple>
#include <utility>

#include "cuda_runtime_api.h"
#include "mlpx_sim/types.h"

namespace mlpx_sim {

// One kernel launch, as the runtime queues it and the executor runs it.
struct KernelLaunch {
  std::string name;  // the kernel's name as written at the launch site
  const char* file = "";
  int line = 0;
  dim3 grid, block;
  size_t shared_bytes = 0;         // dynamic shared memory
  const void* function = nullptr;  // the kernel (its cudaFuncSetAttribute limits), if known
  std::function<void()> body;      // one thread's work: the kernel called with its arguments
};

// [executor] The launch-time checks an H200 makes: 1..1024 threads per block (x <= 1024,
// y <= 1024, z <= 64), grid x <= 2^31 - 1, y and z <= 65535, no zero dimension, dynamic shared
// memory within the kernel's limit (48 KiB, or its cudaFuncSetAttribute opt-in up to 227 KiB).
// cudaSuccess or cudaErrorInvalidConfiguration (the message, for cudaGetErrorString, in `why`).
cudaError_t validate_launch(const KernelLaunch& launch, std::string& why);

// [executor] Runs the launch to completion now. A fault (divergent __syncthreads, a shuffle
// whose mask names a lane that never arrives, ...) returns cudaErrorLaunchFailure with a message
// naming the kernel, its file:line and the fault in `why`; the launch's remaining work is
// abandoned.
cudaError_t execute(const KernelLaunch& launch, std::string& why);

// [runtime] Validates, then enqueues `launch` on `stream` (0: the legacy default stream), or
// records it while the stream captures. Returns (and sets as the last error) what a CUDA
// launch would report at the call: a configuration error; faults found later surface at the
// next synchronisation (cudaStreamSynchronize, a blocking copy, cudaDeviceSynchronize).
cudaError_t enqueue_launch(cudaStream_t stream, KernelLaunch launch);

// The launch helper: Launcher(kernel, name, file, line, grid, block, shared, stream)(args...)
// captures the arguments by value, as a CUDA launch copies them.
template <typename... Params>
class Launcher {
 public:
  Launcher(void (*kernel)(Params...), const char* name, const char* file, int line, dim3 grid,
           dim3 block, size_t shared_bytes, cudaStream_t stream)
      : kernel_(kernel), stream_(stream) {
    launch_.name = name;
    launch_.file = file;
    launch_.line = line;
    launch_.grid = grid;
    launch_.block = block;
    launch_.shared_bytes = shared_bytes;
    launch_.function = reinterpret_cast<const void*>(kernel);
  }
  template <typename... Args>
  void operator()(Args&&... args) {
    auto kernel = kernel_;
    launch_.body = [kernel, params = std::make_tuple(static_cast<Params>(args)...)]() {
      std::apply(kernel, params);
    };
    enqueue_launch(stream_, std::move(launch_));
  }

 private:
  void (*kernel_)(Params...);
  cudaStream_t stream_;
  KernelLaunch launch_;
};

}  // namespace mlpx_sim
