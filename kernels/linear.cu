#include <algorithm>

#include "kernels/launch.cuh"
#include "kernels/linear.h"
#include "math/linear.h"

namespace mlpx::cuda {

namespace {

constexpr int kLanes = math::kColumnSumLanes;
constexpr int kTileCols = 32;  // one warp reads 32 adjacent columns of a row: coalesced
constexpr int64_t kMaxGridY = 65535;

// Block (tx, ty) covers tx columns (a multiple of 32, at least the row width when that fits
// in a block) and ty rows; the grid strides over both.
__global__ void add_bias_kernel(float* y, const float* bias, int64_t rows, int64_t cols) {
  const int64_t row_stride = static_cast<int64_t>(gridDim.y) * blockDim.y;
  const int64_t col_stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t r = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; r < rows;
       r += row_stride) {
    float* yr = y + r * cols;
    for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < cols;
         c += col_stride) {
      yr[c] = math::bias_add(yr[c], bias[c]);
    }
  }
}

// Block (32, kLanes): threadIdx.x picks a column of the tile, threadIdx.y a lane of the
// fixed-order sum (rows y, y + kLanes, ...); the lanes are then combined as the same tree
// as math::combine_column_lanes. No atomics: the same bits on every run.
__global__ void sum_rows_kernel(const float* x, float* sums, int64_t rows, int64_t cols) {
  __shared__ float partial[kLanes][kTileCols];
  const int tx = threadIdx.x, ty = threadIdx.y;
  // The tile loop bound is the same for the whole block, so every thread meets each
  // __syncthreads.
  for (int64_t tile = static_cast<int64_t>(blockIdx.x) * kTileCols; tile < cols;
       tile += static_cast<int64_t>(gridDim.x) * kTileCols) {
    const int64_t c = tile + tx;
    float p = 0.0f;
    if (c < cols) {
      for (int64_t r = ty; r < rows; r += kLanes) p += x[r * cols + c];
    }
    partial[ty][tx] = p;
    __syncthreads();
    for (int stride = kLanes / 2; stride > 0; stride /= 2) {
      if (ty < stride) partial[ty][tx] = partial[ty][tx] + partial[ty + stride][tx];
      __syncthreads();
    }
    if (ty == 0 && c < cols) sums[c] = partial[0][tx];
    __syncthreads();  // the next tile overwrites partial
  }
}

}  // namespace

void add_bias(float* y, const float* bias, int64_t rows, int64_t cols, Device device) {
  const cudaStream_t stream = stream_of(device);
  if (rows <= 0 || cols <= 0) return;
  const int tx = static_cast<int>(std::min<int64_t>((cols + 31) / 32 * 32, kBlockThreads));
  const int ty = kBlockThreads / tx;
  const dim3 block(tx, ty);
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>((cols + tx - 1) / tx, kMaxBlocks)),
                  static_cast<unsigned>(std::min<int64_t>((rows + ty - 1) / ty, kMaxGridY)));
  MLPX_LAUNCH(add_bias_kernel, grid, block, 0, stream)(y, bias, rows, cols);
  MLPX_CUDA_CHECK_LAUNCH();
}

void sum_rows(const float* x, float* sums, int64_t rows, int64_t cols, Device device) {
  const cudaStream_t stream = stream_of(device);
  if (cols <= 0) return;
  // rows == 0 still launches: every column sum is then written as 0.
  const dim3 block(kTileCols, kLanes);
  const dim3 grid(
      static_cast<unsigned>(std::min<int64_t>((cols + kTileCols - 1) / kTileCols, kMaxBlocks)));
  MLPX_LAUNCH(sum_rows_kernel, grid, block, 0, stream)(x, sums, rows, cols);
  MLPX_CUDA_CHECK_LAUNCH();
}

}  // namespace mlpx::cuda
