// The one kernel shape of every optimizer step: a grid-stride pass over the flat parameter
// buffer (float4 when every buffer is 16-byte aligned), and a step counter that lives on the
// device, so that a step needs no host synchronisation and can be captured in a CUDA graph.
//
// step_counter points at two int32 in device memory owned by the Optimizer:
//   [0] steps taken so far: every block reads it at its start (this step is t = [0] + 1);
//   [1] blocks of the running launch that have finished: the last block to finish advances
//       [0] and resets [1] to 0, so the next launch (stream-ordered) sees t + 1.
// Only integer atomics: the parameter update itself is elementwise and deterministic.
//
// bf16_p (optional, nullptr = none): [n] that the pass overwrites with each new p's bfloat16
// bits (math::bf16_bits, the one formula of precision bf16), right after computing it: the bf16
// GEMMs read these bits instead of rounding the weights in kernels of their own.
//
// skip (optional, nullptr = never): an int32 in device memory written by an earlier launch on
// the stream (flag_nonfinite). When it is non-zero every block leaves p and the state as they
// are and the last block does not advance [0]: a skipped step is no step at all.
// Internal.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/check.h"
#include "kernels/launch.cuh"
#include "math/bf16.h"

namespace mlpx::cuda {

// One wave of 256-thread blocks on current GPUs (H200: 132 SMs x 8). Enough bytes in flight
// to saturate memory bandwidth, and few blocks contending for the block-done counter.
inline constexpr int64_t kOptimizerMaxBlocks = 1024;

// The S state buffers of an optimizer (S = 0 for plain SGD).
template <int S>
struct StateBuffers {
  float* ptr[S > 0 ? S : 1];
};

namespace detail {

// Component j of a float4 (j is a constant once the loops over it are unrolled).
__device__ __forceinline__ float& lane(float4& v, int j) {
  return j == 0 ? v.x : (j == 1 ? v.y : (j == 2 ? v.z : v.w));
}
__device__ __forceinline__ float lane(const float4& v, int j) {
  return j == 0 ? v.x : (j == 1 ? v.y : (j == 2 ? v.z : v.w));
}

// Called by every thread of a block once its share of the update is written.
__device__ __forceinline__ void finish_step(int32_t* step_counter, bool advance) {
  __syncthreads();  // every thread of the block has read step_counter[0] and written its values
  if (threadIdx.x == 0) {
    __threadfence();  // this block's writes are visible device-wide before it signals
    const unsigned done = atomicAdd(reinterpret_cast<unsigned*>(step_counter + 1), 1u);
    if (done == gridDim.x - 1) {
      // Every block has read the step number: advancing it cannot race with a reader.
      if (advance) step_counter[0] += 1;
      step_counter[1] = 0;
      __threadfence();
    }
  }
}

}  // namespace detail

// Op: a trivially copyable functor with
//   __device__ Coefficients prepare(int64_t t) const;   the step's constants, once per thread
//   __device__ float operator()(const Coefficients&, int64_t i, float p, float g,
//                               float* state) const;
//     returns the new p of parameter i and updates state[0..S) in place.
template <int S, typename Op>
__global__ void __launch_bounds__(kBlockThreads)
    optimizer_step_kernel(int64_t n, float* __restrict__ p, const float* __restrict__ g,
                          StateBuffers<S> state, Op op, int32_t* step_counter,
                          const int32_t* __restrict__ skip, bool vectorized,
                          uint16_t* __restrict__ bf16_p) {
  // Every block reads the same flag (written by an earlier launch), so all agree.
  const bool skipped = skip != nullptr && *skip != 0;
  if (skipped) {
    n = 0;  // no element is touched; the block still reports to the step counter
  }
  const int64_t t = static_cast<int64_t>(*static_cast<volatile int32_t*>(step_counter)) + 1;
  const auto coefficients = op.prepare(t);
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;

  int64_t scalar_begin = 0;
  if (vectorized) {
    const int64_t n4 = n / 4;
    for (int64_t i = first; i < n4; i += stride) {
      float4 pv = reinterpret_cast<const float4*>(p)[i];
      const float4 gv = reinterpret_cast<const float4*>(g)[i];
      float4 sv[S > 0 ? S : 1];
#pragma unroll
      for (int k = 0; k < S; ++k) sv[k] = reinterpret_cast<const float4*>(state.ptr[k])[i];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float s[S > 0 ? S : 1];
#pragma unroll
        for (int k = 0; k < S; ++k) s[k] = detail::lane(sv[k], j);
        detail::lane(pv, j) =
            op(coefficients, 4 * i + j, detail::lane(pv, j), detail::lane(gv, j), s);
#pragma unroll
        for (int k = 0; k < S; ++k) detail::lane(sv[k], j) = s[k];
      }
      reinterpret_cast<float4*>(p)[i] = pv;
      if (bf16_p != nullptr) {  // 8-byte aligned (the launcher checks): one store of 4 bits
        const ushort4 bits = {math::bf16_bits(pv.x), math::bf16_bits(pv.y), math::bf16_bits(pv.z),
                              math::bf16_bits(pv.w)};
        reinterpret_cast<ushort4*>(bf16_p)[i] = bits;
      }
#pragma unroll
      for (int k = 0; k < S; ++k) reinterpret_cast<float4*>(state.ptr[k])[i] = sv[k];
    }
    scalar_begin = n4 * 4;
  }
  // The tail (fewer than 4 elements) of the vectorised pass, or everything when unaligned.
  for (int64_t i = scalar_begin + first; i < n; i += stride) {
    float s[S > 0 ? S : 1];
#pragma unroll
    for (int k = 0; k < S; ++k) s[k] = state.ptr[k][i];
    const float updated = op(coefficients, i, p[i], g[i], s);
    p[i] = updated;
    if (bf16_p != nullptr) bf16_p[i] = math::bf16_bits(updated);
#pragma unroll
    for (int k = 0; k < S; ++k) state.ptr[k][i] = s[k];
  }

  detail::finish_step(step_counter, !skipped);
}

// Launches one optimizer step over n parameters on `stream`. Always at least one block, even
// for n == 0, so that the device step counter advances with every step (not skipped).
template <int S, typename Op>
void launch_optimizer_step(int64_t n, float* p, const float* g, StateBuffers<S> state, const Op& op,
                           int32_t* step_counter, const int32_t* skip, cudaStream_t stream,
                           uint16_t* bf16_p = nullptr) {
  auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  bool vectorized = aligned(p) && aligned(g) && reinterpret_cast<uintptr_t>(bf16_p) % 8 == 0;
  for (int k = 0; k < S; ++k) vectorized = vectorized && aligned(state.ptr[k]);
  const int64_t units = vectorized ? (n + 3) / 4 : n;
  const int blocks = static_cast<int>(
      std::clamp<int64_t>((units + kBlockThreads - 1) / kBlockThreads, 1, kOptimizerMaxBlocks));
  auto* const kernel = optimizer_step_kernel<S, Op>;
  MLPX_LAUNCH(kernel, blocks, kBlockThreads, 0, stream)
  (n, p, g, state, op, step_counter, skip, vectorized, bf16_p);
  MLPX_CUDA_CHECK_LAUNCH();
}

}  // namespace mlpx::cuda
