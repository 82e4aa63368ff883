#include <algorithm>

#include "kernels/launch.cuh"
#include "kernels/nonfinite.h"

namespace mlpx::cuda {

namespace {

// One wave of blocks is plenty for a read-only pass; fewer blocks, fewer atomics.
constexpr int64_t kMaxNonfiniteBlocks = 1024;

// flag[4]: [0] the result, [1] blocks finished, [2] steps flagged so far; [3] the running OR
// of the blocks, reset by the last block so that the next launch starts clean.
__global__ void __launch_bounds__(kBlockThreads)
    flag_nonfinite_kernel(const float* __restrict__ loss, const float* __restrict__ grads,
                          int64_t n, int32_t* flag) {
  bool bad = false;
  if (blockIdx.x == 0 && threadIdx.x == 0) bad = !isfinite(loss[0]);
  MLPX_GRID_STRIDE(i, n) { bad = bad || !isfinite(grads[i]); }
  const int block_bad = __syncthreads_or(bad);
  if (threadIdx.x == 0) {
    if (block_bad) atomicOr(flag + 3, 1);
    __threadfence();  // the OR above is visible before this block counts as done
    const unsigned done = atomicAdd(reinterpret_cast<unsigned*>(flag + 1), 1u);
    if (done == gridDim.x - 1) {
      const int32_t any = atomicExch(flag + 3, 0);
      flag[0] = any;
      flag[2] += any;
      flag[1] = 0;
      __threadfence();
    }
  }
}

}  // namespace

void flag_nonfinite(const float* loss, const float* grads, int64_t n, int32_t* flag,
                    Device device) {
  const cudaStream_t stream = stream_of(device);
  // Always at least one block: the loss alone decides when there are no parameters.
  const int blocks = static_cast<int>(
      std::clamp<int64_t>((n + kBlockThreads - 1) / kBlockThreads, 1, kMaxNonfiniteBlocks));
  MLPX_LAUNCH(flag_nonfinite_kernel, blocks, kBlockThreads, 0, stream)(loss, grads, n, flag);
  MLPX_CUDA_CHECK_LAUNCH();
}

}  // namespace mlpx::cuda
