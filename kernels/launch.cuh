// How kernels are launched: MLPX_LAUNCH for every launch site, and one helper for
// elementwise kernels that sizes a grid-stride grid, returns early when there is no work and
// checks the launch. Internal.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/check.h"
#include "kernels/runtime.h"

// Every launch site writes MLPX_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...):
// with nvcc it is kernel<<<grid, block, shared_bytes, stream>>>(args...); in the simulator
// build (MLPX_CUDA=SIM, sim/README.md) it queues the same kernel, compiled as C++, on the
// simulated stream. This is the only place the two builds differ. A kernel named with a
// template argument list containing a comma is first bound to a pointer.
#if MLPX_SIM
#include "mlpx_sim/launch.h"
#define MLPX_LAUNCH(kernel, grid, block, shared_bytes, stream) \
  ::mlpx_sim::Launcher(kernel, #kernel, __FILE__, __LINE__, grid, block, shared_bytes, stream)
#else
#define MLPX_LAUNCH(kernel, grid, block, shared_bytes, stream) \
  kernel<<<grid, block, shared_bytes, stream>>>
#endif

// A kernel's dynamic shared memory (the launch's shared_bytes), as `type name[]`: CUDA's
// `extern __shared__`, which the simulator cannot spell (its __shared__ is `static`), so it
// names the same memory through a call (sim/include/mlpx_sim/shared_memory.h). Under nvcc every
// such declaration of one name in a file is one symbol: a name has one type per file.
#if MLPX_SIM
#define MLPX_DYNAMIC_SHARED(type, name) type* const name = ::mlpx_sim::dynamic_shared_memory<type>()
#else
#define MLPX_DYNAMIC_SHARED(type, name) extern __shared__ __align__(16) type name[]
#endif

namespace mlpx::cuda {

inline constexpr int kBlockThreads = 256;
// Enough blocks to fill any current GPU several times over; kernels stride beyond it.
inline constexpr int64_t kMaxBlocks = 65536;

inline int blocks_for(int64_t n, int threads = kBlockThreads) {
  return static_cast<int>(std::min<int64_t>((n + threads - 1) / threads, kMaxBlocks));
}

// Launches kernel on blocks_for(n) blocks of kBlockThreads threads: kernel(n, args...).
// The kernel's first parameter is the element count and it loops grid-stride over it.
template <typename... KernelArgs, typename... Args>
void launch_elementwise(void (*kernel)(int64_t, KernelArgs...), int64_t n, cudaStream_t stream,
                        Args... args) {
  if (n <= 0) return;
  MLPX_LAUNCH(kernel, blocks_for(n), kBlockThreads, 0, stream)(n, args...);
  MLPX_CUDA_CHECK_LAUNCH();
}

// for (i in grid-stride range of n)
#define MLPX_GRID_STRIDE(i, n)                                                           \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

}  // namespace mlpx::cuda
