#include "kernels/gradients.h"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"
#include "math/gradients.h"

namespace mlpx::cuda {

namespace {

constexpr int kNormThreads = 1024;

// Thread i adds the squares of elements i, i + 1024, ... in double, then a fixed tree: the same
// bits on every run. The scale is written where the optimizer kernel, next on the stream, reads
// it: no host read, so the step stays capturable.
__global__ void __launch_bounds__(kNormThreads)
    clip_scale_kernel(const float* grads, int64_t n, double max_norm, double* scalars,
                      double* norm_sum) {
  double squares = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kNormThreads) {
    const double g = static_cast<double>(grads[i]);
    squares += g * g;
  }
  squares = group_reduce<kNormThreads>(squares, SumOp{});
  if (threadIdx.x == 0) {
    const double norm = sqrt(squares);
    scalars[1] = math::clip_scale(norm, max_norm);
    norm_sum[0] += norm;
  }
}

__global__ void add_gradients_kernel(int64_t n, const float* grads, float* sum) {
  MLPX_GRID_STRIDE(i, n) { sum[i] += grads[i]; }
}

}  // namespace

void clip_scale(const float* grads, int64_t n, double max_norm, double* scalars, double* norm_sum,
                Device device) {
  MLPX_LAUNCH(clip_scale_kernel, 1, kNormThreads, 0, stream_of(device))
  (grads, n, max_norm, scalars, norm_sum);
  MLPX_CUDA_CHECK_LAUNCH();
}

void add_gradients(const float* grads, float* sum, int64_t n, Device device) {
  launch_elementwise(add_gradients_kernel, n, stream_of(device), grads, sum);
}

}  // namespace mlpx::cuda
