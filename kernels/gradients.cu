#include "kernels/gradients.h"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"
#include "math/gradients.h"

namespace mlpx::cuda {

namespace {

constexpr int kNormThreads = 256;

// The blocks of a norm's first pass over n elements: one per kNormThreads elements, at most
// kNormBlocks (a function of n alone, whatever the device, so the order of additions is too).
int64_t norm_blocks(int64_t n) {
  const int64_t blocks = (n + kNormThreads - 1) / kNormThreads;
  return blocks < 1 ? 1 : (blocks > kNormBlocks ? kNormBlocks : blocks);
}

// Pass 1 of a norm: block b sums the squares (in double) of its own chunk
// [b * chunk, min(n, (b + 1) * chunk)), chunk = ceil(n / blocks), thread t taking elements
// t, t + kNormThreads, ... of it, then a fixed tree; partials[b] = that sum.
__global__ void __launch_bounds__(kNormThreads)
    norm_partials_kernel(const float* grads, int64_t n, double* partials) {
  const int64_t chunk = (n + gridDim.x - 1) / gridDim.x;
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * chunk;
  const int64_t end = begin + chunk < n ? begin + chunk : n;
  double squares = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += kNormThreads) {
    const double g = static_cast<double>(grads[i]);
    squares += g * g;
  }
  squares = group_reduce<kNormThreads>(squares, SumOp{});
  if (threadIdx.x == 0) partials[blockIdx.x] = squares;
}

// Pass 2: one thread adds the partials first to last (a fixed order: the same bits on every
// run), then the norm goes where the next kernel reads it. scalars null: no clipping scale.
__global__ void norm_finish_kernel(const double* partials, int blocks, double max_norm,
                                   double* scalars, double* norm_sum) {
  if (threadIdx.x != 0) return;
  double squares = 0.0;
  for (int b = 0; b < blocks; ++b) squares += partials[b];
  const double norm = sqrt(squares);
  if (scalars != nullptr) scalars[1] = math::clip_scale(norm, max_norm);
  norm_sum[0] += norm;
}

// Both passes on the stream, no host read: the step stays capturable.
void launch_norm(const float* grads, int64_t n, double* partials, double max_norm, double* scalars,
                 double* norm_sum, Device device) {
  const auto blocks = static_cast<int>(norm_blocks(n));
  MLPX_LAUNCH(norm_partials_kernel, blocks, kNormThreads, 0, stream_of(device))
  (grads, n, partials);
  MLPX_CUDA_CHECK_LAUNCH();
  MLPX_LAUNCH(norm_finish_kernel, 1, 32, 0, stream_of(device))
  (partials, blocks, max_norm, scalars, norm_sum);
  MLPX_CUDA_CHECK_LAUNCH();
}

__global__ void add_gradients_kernel(int64_t n, const float* grads, float* sum) {
  MLPX_GRID_STRIDE(i, n) { sum[i] += grads[i]; }
}

}  // namespace

void clip_scale(const float* grads, int64_t n, double max_norm, double* scalars, double* norm_sum,
                double* partials, Device device) {
  launch_norm(grads, n, partials, max_norm, scalars, norm_sum, device);
}

void add_norm(const float* grads, int64_t n, double* norm_sum, double* partials, Device device) {
  launch_norm(grads, n, partials, 0.0, nullptr, norm_sum, device);
}

void add_gradients(const float* grads, float* sum, int64_t n, Device device) {
  launch_elementwise(add_gradients_kernel, n, stream_of(device), grads, sum);
}

}  // namespace mlpx::cuda
