#include "kernels/init.h"
#include "kernels/launch.cuh"

namespace mlpx::cuda {

__global__ void init_values_kernel(int64_t n, float* out, Init init, double scale, uint64_t seed,
                                   uint64_t stream) {
  MLPX_GRID_STRIDE(i, n) {
    out[i] = static_cast<float>(math::init_value(init, scale, seed, stream, i));
  }
}

void init_values(float* out, int64_t n, Init init, double scale, uint64_t seed, uint64_t stream,
                 Device device) {
  const cudaStream_t cuda_stream = stream_of(device);
  launch_elementwise(init_values_kernel, n, cuda_stream, out, init, scale, seed, stream);
}

}  // namespace mlpx::cuda
