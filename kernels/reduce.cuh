// Row-wise kernels' building blocks: a group of threads per row, deterministic group
// reductions, and the launcher that sizes the grid by rows. Shared by the softmax and loss
// kernels. Device code; internal.
#pragma once
#include <cuda_runtime.h>

#include "kernels/launch.cuh"
#include "math/activation.h"

namespace mlpx::cuda {

// Row-wise kernels give each row to a group of kGroup threads: one warp (kGroup == 32) for
// narrow rows, the whole block (kGroup == kBlockThreads) for wide ones. Blocks always have
// kBlockThreads threads, so a block holds kBlockThreads / kGroup rows, and the grid strides
// over the rows. Every thread of a group walks the same rows, so the group reductions below
// (warp shuffles, plus __syncthreads for a block group) are reached by all of them.
inline constexpr int64_t kWarpRowMaxCols = 1024;  // a warp per row up to here, then a block

template <int kGroup>
__device__ __forceinline__ int group_lane() {
  return static_cast<int>(threadIdx.x % kGroup);
}
template <int kGroup>
__device__ __forceinline__ int64_t group_first_row() {
  return static_cast<int64_t>(blockIdx.x) * (kBlockThreads / kGroup) + threadIdx.x / kGroup;
}
template <int kGroup>
__device__ __forceinline__ int64_t group_row_stride() {
  return static_cast<int64_t>(gridDim.x) * (kBlockThreads / kGroup);
}

__device__ __forceinline__ float shfl_xor(float v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}
__device__ __forceinline__ double shfl_xor(double v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}
__device__ __forceinline__ int shfl_xor(int v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}
__device__ __forceinline__ math::MaxSum<float> shfl_xor(math::MaxSum<float> v, int mask) {
  return {shfl_xor(v.max, mask), shfl_xor(v.sum, mask)};
}

struct SumOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return a + b;
  }
};
struct MaxSumOp {
  __device__ __forceinline__ math::MaxSum<float> operator()(math::MaxSum<float> a,
                                                            math::MaxSum<float> b) const {
    return math::max_sum_merge(a, b);
  }
};

// Reduces v over the kGroup threads of a row group; every thread gets the result. The order
// is fixed (xor butterfly within a warp, then the warps in index order) and op is
// commutative, so every thread holds the same bits, on every run.
template <int kGroup, typename T, typename Op>
__device__ __forceinline__ T group_reduce(T v, Op op) {
  static_assert(kGroup % 32 == 0 && kGroup <= 1024, "a row group is whole warps");
  for (int mask = 16; mask > 0; mask /= 2) v = op(v, shfl_xor(v, mask));
  if constexpr (kGroup == 32) {
    return v;
  } else {
    constexpr int kWarps = kGroup / 32;
    __shared__ T scratch[kWarps];
    if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    T r = scratch[0];
    for (int w = 1; w < kWarps; ++w) r = op(r, scratch[w]);
    __syncthreads();  // the next reduction may overwrite scratch
    return r;
  }
}

// Launches kernel<kGroup> with one row group per row; kernel(rows, cols, args...).
template <int kGroup, typename... KernelArgs, typename... Args>
void launch_rows(void (*kernel)(int64_t, int64_t, KernelArgs...), int64_t rows, int64_t cols,
                 cudaStream_t stream, Args... args) {
  if (rows <= 0) return;
  MLPX_LAUNCH(kernel, blocks_for(rows, kBlockThreads / kGroup), kBlockThreads, 0, stream)
  (rows, cols, args...);
  MLPX_CUDA_CHECK_LAUNCH();
}

}  // namespace mlpx::cuda
