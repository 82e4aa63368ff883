#include <algorithm>

#include "kernels/launch.cuh"
#include "kernels/norm.h"
#include "kernels/reduce.cuh"

namespace mlpx::cuda {

namespace {

constexpr int kLanes = math::kColumnSumLanes;
constexpr int kTileCols = 32;  // a warp reads 32 adjacent columns of a row: coalesced

// LayerNorm, one row group per row: the row's mean, then its centered squares (two passes
// over the row, as the CPU loop), then y. The group reductions leave the same sum in every
// lane, so lane 0 writes the statistics.
template <int kGroup>
__global__ void layer_norm_forward_kernel(int64_t rows, int64_t cols, const float* x,
                                          const float* weight, const float* bias, float eps,
                                          float* y, float* mean, float* rstd) {
  const int lane = group_lane<kGroup>();
  const float n = static_cast<float>(cols);
  for (int64_t row = group_first_row<kGroup>(); row < rows; row += group_row_stride<kGroup>()) {
    const float* xr = x + row * cols;
    float* yr = y + row * cols;
    float sum = 0.0f;
    for (int64_t c = lane; c < cols; c += kGroup) sum += xr[c];
    const float m = group_reduce<kGroup>(sum, SumOp{}) / n;
    float squares = 0.0f;
    for (int64_t c = lane; c < cols; c += kGroup) squares += (xr[c] - m) * (xr[c] - m);
    const float s = math::norm_rstd(group_reduce<kGroup>(squares, SumOp{}) / n, eps);
    for (int64_t c = lane; c < cols; c += kGroup) {
      yr[c] = math::norm_value(xr[c], m, s, weight[c], bias[c]);
    }
    if (lane == 0) {
      mean[row] = m;
      rstd[row] = s;
    }
  }
}

template <int kGroup>
__global__ void layer_norm_input_grad_kernel(int64_t rows, int64_t cols, const float* x,
                                             const float* weight, const float* mean,
                                             const float* rstd, const float* dy, float* dx) {
  const int lane = group_lane<kGroup>();
  const float n = static_cast<float>(cols);
  for (int64_t row = group_first_row<kGroup>(); row < rows; row += group_row_stride<kGroup>()) {
    const int64_t base = row * cols;
    const float m = mean[row], s = rstd[row];
    float sum = 0.0f, sum_x_hat = 0.0f;
    for (int64_t c = lane; c < cols; c += kGroup) {
      const float dx_hat = dy[base + c] * weight[c];
      sum += dx_hat;
      sum_x_hat += dx_hat * ((x[base + c] - m) * s);
    }
    sum = group_reduce<kGroup>(sum, SumOp{});
    sum_x_hat = group_reduce<kGroup>(sum_x_hat, SumOp{});
    for (int64_t c = lane; c < cols; c += kGroup) {
      const float x_hat = (x[base + c] - m) * s;
      dx[base + c] =
          math::norm_input_grad(dy[base + c], x_hat, weight[c], s, sum / n, sum_x_hat / n);
    }
  }
}

// The column reductions: block (kTileCols, kLanes) as kernels/linear.cu's sum_rows, lane ty
// summing rows ty, ty + kLanes, ..., then the lanes' tree of math::combine_column_lanes. No
// atomics: the same bits on every run.
template <math::NormColumnTerm kTerm>
__global__ void norm_column_sum_kernel(math::NormColumnOperands<float> operands, float scale,
                                       float* out, int64_t rows, int64_t cols) {
  __shared__ float partial[kLanes][kTileCols];
  const int tx = threadIdx.x, ty = threadIdx.y;
  // The tile loop bound is the same for the whole block: every thread meets each barrier.
  for (int64_t tile = static_cast<int64_t>(blockIdx.x) * kTileCols; tile < cols;
       tile += static_cast<int64_t>(gridDim.x) * kTileCols) {
    const int64_t c = tile + tx;
    float p = 0.0f;
    if (c < cols) {
      for (int64_t r = ty; r < rows; r += kLanes) {
        p += math::norm_column_term<kTerm>(operands, r, c, cols);
      }
    }
    partial[ty][tx] = p;
    __syncthreads();
    for (int stride = kLanes / 2; stride > 0; stride /= 2) {
      if (ty < stride) partial[ty][tx] = partial[ty][tx] + partial[ty + stride][tx];
      __syncthreads();
    }
    if (ty == 0 && c < cols) out[c] = scale * partial[0][tx];
    __syncthreads();  // the next tile overwrites partial
  }
}

__global__ void batch_norm_apply_kernel(int64_t n, int64_t cols, const float* x, const float* mean,
                                        const float* var, const float* weight, const float* bias,
                                        float eps, float* y) {
  MLPX_GRID_STRIDE(i, n) {
    const int64_t c = i % cols;
    y[i] = math::norm_value(x[i], mean[c], math::norm_rstd(var[c], eps), weight[c], bias[c]);
  }
}

__global__ void batch_norm_input_grad_kernel(int64_t n, int64_t cols, const float* x,
                                             const float* dy, const float* mean, const float* var,
                                             const float* weight, const float* dweight_sum,
                                             const float* dbias_sum, float eps, float inv_count,
                                             float* dx) {
  MLPX_GRID_STRIDE(i, n) {
    const int64_t c = i % cols;
    const float rstd = math::norm_rstd(var[c], eps);
    dx[i] = math::norm_input_grad(dy[i], (x[i] - mean[c]) * rstd, weight[c], rstd,
                                  weight[c] * dbias_sum[c] * inv_count,
                                  weight[c] * dweight_sum[c] * inv_count);
  }
}

__global__ void batch_norm_update_running_kernel(int64_t cols, const float* mean, const float* var,
                                                 float count, float momentum, float* running_mean,
                                                 float* running_var, float* batches) {
  const float unbias = count / (count - 1.0f);
  MLPX_GRID_STRIDE(c, cols) {
    if (c == 0) batches[0] += 1.0f;
    running_mean[c] = math::running_update(running_mean[c], mean[c], momentum);
    running_var[c] = math::running_update(running_var[c], var[c] * unbias, momentum);
  }
}

}  // namespace

void layer_norm_forward(const float* x, const float* weight, const float* bias, float eps, float* y,
                        float* mean, float* rstd, int64_t rows, int64_t cols, Device device) {
  const cudaStream_t stream = stream_of(device);
  if (cols <= kWarpRowMaxCols) {
    launch_rows<32>(layer_norm_forward_kernel<32>, rows, cols, stream, x, weight, bias, eps, y,
                    mean, rstd);
  } else {
    launch_rows<kBlockThreads>(layer_norm_forward_kernel<kBlockThreads>, rows, cols, stream, x,
                               weight, bias, eps, y, mean, rstd);
  }
}

void layer_norm_input_grad(const float* x, const float* weight, const float* mean,
                           const float* rstd, const float* dy, float* dx, int64_t rows,
                           int64_t cols, Device device) {
  const cudaStream_t stream = stream_of(device);
  if (cols <= kWarpRowMaxCols) {
    launch_rows<32>(layer_norm_input_grad_kernel<32>, rows, cols, stream, x, weight, mean, rstd, dy,
                    dx);
  } else {
    launch_rows<kBlockThreads>(layer_norm_input_grad_kernel<kBlockThreads>, rows, cols, stream, x,
                               weight, mean, rstd, dy, dx);
  }
}

void norm_column_sum(math::NormColumnTerm term, const math::NormColumnOperands<float>& operands,
                     float scale, float* out, int64_t rows, int64_t cols, Device device) {
  const cudaStream_t stream = stream_of(device);
  if (cols <= 0) return;
  // rows == 0 still launches: every sum is then written as 0.
  const dim3 block(kTileCols, kLanes);
  const dim3 grid(
      static_cast<unsigned>(std::min<int64_t>((cols + kTileCols - 1) / kTileCols, kMaxBlocks)));
  math::visit_column_term(term, [&](auto kind) {
    auto* kernel = norm_column_sum_kernel<decltype(kind)::value>;
    MLPX_LAUNCH(kernel, grid, block, 0, stream)(operands, scale, out, rows, cols);
    MLPX_CUDA_CHECK_LAUNCH();
  });
}

void batch_norm_apply(const float* x, const float* mean, const float* var, const float* weight,
                      const float* bias, float eps, float* y, int64_t rows, int64_t cols,
                      Device device) {
  launch_elementwise(batch_norm_apply_kernel, rows * cols, stream_of(device), cols, x, mean, var,
                     weight, bias, eps, y);
}

void batch_norm_input_grad(const float* x, const float* dy, const float* mean, const float* var,
                           const float* weight, const float* dweight_sum, const float* dbias_sum,
                           float eps, float inv_count, float* dx, int64_t rows, int64_t cols,
                           Device device) {
  launch_elementwise(batch_norm_input_grad_kernel, rows * cols, stream_of(device), cols, x, dy,
                     mean, var, weight, dweight_sum, dbias_sum, eps, inv_count, dx);
}

void batch_norm_update_running(const float* mean, const float* var, float count, float momentum,
                               float* running_mean, float* running_var, float* batches,
                               int64_t cols, Device device) {
  launch_elementwise(batch_norm_update_running_kernel, cols, stream_of(device), mean, var, count,
                     momentum, running_mean, running_var, batches);
}

}  // namespace mlpx::cuda
