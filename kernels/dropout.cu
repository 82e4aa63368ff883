#include "kernels/dropout.h"
#include "kernels/launch.cuh"

namespace mlpx::cuda {

namespace {

// One thread per Philox block (four draws, four consecutive elements): each block is drawn
// once. Blocks are counted from the one that holds draws.first_element, which need not be a
// multiple of four (a data-parallel rank's rows start anywhere), so the first and the last
// block may cover fewer than four of this call's elements.
struct BlockRange {
  uint64_t first_block;
  int64_t blocks;
};

BlockRange block_range(uint64_t first_element, int64_t n) {
  if (n <= 0) return {first_element >> 2, 0};
  const uint64_t last = first_element + static_cast<uint64_t>(n) - 1;
  return {first_element >> 2, static_cast<int64_t>((last >> 2) - (first_element >> 2) + 1)};
}

// Calls body(i, factor) for the elements of block b that fall in [0, n).
template <typename Body>
__device__ void block_factors(const math::DropoutDraws& d, uint64_t step, uint64_t block, int64_t n,
                              float scale, Body&& body) {
  const math::Philox4x32 r = math::dropout_draws(d.key, step, block);
  const int64_t base = static_cast<int64_t>(block * 4 - d.first_element);
#pragma unroll
  for (int word = 0; word < 4; ++word) {
    const int64_t i = base + word;
    if (i >= 0 && i < n) body(i, math::dropout_factor(r.v[word], d.key.threshold, scale));
  }
}

__device__ uint64_t step_of(const math::DropoutDraws& d) {
  // Every thread reads the same word (one cached broadcast).
  return d.step_base + (d.step_offset != nullptr ? static_cast<uint64_t>(*d.step_offset) : 0);
}

template <typename Member>
__global__ void dropout_forward_kernel(int64_t blocks, const float* z, float* out, int64_t n,
                                       float alpha, float scale, math::DropoutDraws d,
                                       uint64_t first_block) {
  const uint64_t step = step_of(d);
  MLPX_GRID_STRIDE(b, blocks) {
    block_factors(d, step, first_block + static_cast<uint64_t>(b), n, scale,
                  [&](int64_t i, float factor) {
                    out[i] = math::dropout_forward_value<Member>(z[i], factor, alpha);
                  });
  }
}

template <typename Member>
__global__ void dropout_backward_kernel(int64_t blocks, const float* z, const float* dout,
                                        float* dz, int64_t n, float alpha, float scale,
                                        math::DropoutDraws d, uint64_t first_block) {
  const uint64_t step = step_of(d);
  MLPX_GRID_STRIDE(b, blocks) {
    block_factors(d, step, first_block + static_cast<uint64_t>(b), n, scale,
                  [&](int64_t i, float factor) {
                    const float zi = math::dropout_reads_input<Member>() ? z[i] : 0.0f;
                    dz[i] = math::dropout_backward_value<Member>(zi, dout[i], factor, alpha);
                  });
  }
}

}  // namespace

// Rowwise activations (softmax) are refused by the ops entry: they are applied first, then
// dropped with identity.
void dropout_forward(Activation activation, const float* z, float* out, int64_t n, float alpha,
                     float scale, const math::DropoutDraws& draws, Device device) {
  const cudaStream_t stream = stream_of(device);
  const BlockRange r = block_range(draws.first_element, n);
  math::visit(activation, [&](auto member) {
    using Member = decltype(member);
    if constexpr (!Member::kIsRowwise) {
      launch_elementwise(dropout_forward_kernel<Member>, r.blocks, stream, z, out, n, alpha, scale,
                         draws, r.first_block);
    }
  });
}

void dropout_backward(Activation activation, const float* z, const float* dout, float* dz,
                      int64_t n, float alpha, float scale, const math::DropoutDraws& draws,
                      Device device) {
  const cudaStream_t stream = stream_of(device);
  const BlockRange r = block_range(draws.first_element, n);
  math::visit(activation, [&](auto member) {
    using Member = decltype(member);
    if constexpr (!Member::kIsRowwise) {
      launch_elementwise(dropout_backward_kernel<Member>, r.blocks, stream, z, dout, dz, n, alpha,
                         scale, draws, r.first_block);
    }
  });
}

}  // namespace mlpx::cuda
