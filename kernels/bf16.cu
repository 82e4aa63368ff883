#include "kernels/bf16.h"
#include "kernels/launch.cuh"
#include "math/bf16.h"

namespace mlpx::cuda {

namespace {

__global__ void round_to_bf16_kernel(int64_t n, const float* x, float* out) {
  MLPX_GRID_STRIDE(i, n) { out[i] = math::round_to_bf16(x[i]); }
}

__global__ void round_to_bf16_bits_kernel(int64_t n, const float* x, uint16_t* bits) {
  MLPX_GRID_STRIDE(i, n) { bits[i] = math::bf16_bits(x[i]); }
}

}  // namespace

void round_to_bf16(const float* x, float* out, int64_t n, Device device) {
  launch_elementwise(round_to_bf16_kernel, n, stream_of(device), x, out);
}

void round_to_bf16_bits(const float* x, uint16_t* bits, int64_t n, Device device) {
  launch_elementwise(round_to_bf16_bits_kernel, n, stream_of(device), x, bits);
}

}  // namespace mlpx::cuda
