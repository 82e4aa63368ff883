#include "kernels/launch.cuh"
#include "kernels/residual.h"
#include "math/residual.h"

namespace mlpx::cuda {

namespace {

__global__ void residual_add_kernel(int64_t n, const float* x, const float* y, float* out) {
  MLPX_GRID_STRIDE(i, n) { out[i] = math::residual_sum(x[i], y[i]); }
}

}  // namespace

void residual_add(const float* x, const float* y, float* out, int64_t n, Device device) {
  launch_elementwise(residual_add_kernel, n, stream_of(device), x, y, out);
}

}  // namespace mlpx::cuda
