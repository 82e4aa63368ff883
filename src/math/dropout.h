// Inverted dropout after an activation, shared by the CPU loop (src/cpu/dropout.cpp) and the
// CUDA kernel (kernels/dropout.cu). Element e of a layer's output at training step s is kept
// when its 32-bit Philox draw is at least threshold = floor(p 2^32): draw word e mod 4 of the
// block at counter (e / 4, s) in stream kStreamDropout + layer under the run's seed. So the
// mask is a pure function of (seed, step, layer, element): both backends draw the same bits,
// a resumed run redraws the same masks, and the backward pass regenerates the forward's mask
// instead of storing it.
#pragma once

#include <cstdint>

#include "math/activation.h"
#include "math/hd.h"
#include "math/philox.h"

namespace mlpx::math {

// Where one layer's masks come from. `step` < 2^32 and elements < 2^34 per layer and step
// (checked by the ops entry), so block and step share the 64-bit index without overlap.
struct DropoutKey {
  uint64_t seed = 0;
  uint64_t stream = 0;  // kStreamDropout + layer
  uint32_t threshold = 0;
};

// The draws of one call over n consecutive elements: step = step_base + *step_offset
// (step_offset may be nullptr; a pointer into the tensors' memory, read when the loop or
// kernel runs, so that a replayed CUDA graph draws the next step's mask), and the elements are
// first_element .. first_element + n - 1 of the layer's batch.
struct DropoutDraws {
  DropoutKey key;
  uint64_t step_base = 0;
  const int32_t* step_offset = nullptr;
  uint64_t first_element = 0;
};

// floor(p 2^32) for p in [0, 1): a draw below it drops the element (probability p, to 2^-32).
inline uint32_t dropout_threshold(double p) { return static_cast<uint32_t>(p * 4294967296.0); }

// The four draws of elements 4 block .. 4 block + 3 at `step`.
MLPX_HD Philox4x32 dropout_draws(const DropoutKey& key, uint64_t step, uint64_t block) {
  return philox_block(key.seed, key.stream, (step << 32) | block);
}

// What a kept element is multiplied by: 1 / (1 - p), formed in T as PyTorch's dropout does
// (its noise tensor, 1 where kept, is divided in place by 1 - p, so float32 gets
// 1.0f / float(1 - p)). tests/reference/dropout_torch.py checks the bits.
template <typename T>
MLPX_HD T dropout_scale(double p) {
  return T(1) / static_cast<T>(1.0 - p);
}

// The mask factor of one element: scale where kept, 0 where dropped. Multiplying by it (never
// selecting 0) keeps PyTorch's input * noise: a dropped NaN stays NaN, a dropped -x gives -0.
template <typename T>
MLPX_HD T dropout_factor(uint32_t draw, uint32_t threshold, T scale) {
  return draw >= threshold ? scale : T(0);
}

// out = f(z) * factor: the activation and the dropout in one pass, for any elementwise member
// of the activations' table (a rowwise one, softmax, is applied first, then dropped with
// identity).
template <typename Member, typename T>
MLPX_HD T dropout_forward_value(T z, T factor, T alpha) {
  return Member::value(z, alpha) * factor;
}

// Whether the fused backward reads z: every member whose derivative reads anything, since a
// member that reads its output recomputes it from z (the output is not kept).
template <typename Member>
MLPX_HD constexpr bool dropout_reads_input() {
  return Member::kBackwardReadsInput || Member::kBackwardReadsOutput;
}

// dz = f'(z) (dout * factor): the gradient through the mask, then through the activation,
// as autograd composes nn.Dropout after the activation. f(z) is recomputed from z for the
// members whose derivative reads their output (sigmoid, tanh).
template <typename Member, typename T>
MLPX_HD T dropout_backward_value(T z, T dout, T factor, T alpha) {
  T y = T(0);
  if constexpr (Member::kBackwardReadsOutput) y = Member::value(z, alpha);
  return Member::grad(z, y, dout * factor, alpha);
}

}  // namespace mlpx::math
