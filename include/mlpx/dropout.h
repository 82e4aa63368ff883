// Inverted dropout after an activation, in one pass forward and one backward (formulas and
// the draws in mlpx/math/dropout.h): as nn.Dropout(p) placed after the activation in a torch
// nn.Sequential in training mode, each element of f(z) is dropped (set to 0) with probability
// p and kept elements are multiplied by 1 / (1 - p), so the expected output is f(z).
#pragma once

#include <cstdint>
#include <optional>

#include "mlpx/activation.h"
#include "mlpx/tensor.h"

namespace mlpx {

// Which mask one dropout draws. Element (r, c) of a layer's [B, units] output at training
// step s is kept or dropped by a counter-based Philox draw of (seed, s, layer, element
// first_element + r * units + c): the same bits on every device, at every call with the same
// mask, and after a resume. s = step + *step_offset.
struct DropoutMask {
  double p = 0.0;      // the drop probability, in [0, 1)
  uint64_t seed = 0;   // the run's seed
  uint64_t layer = 0;  // the layer's index in its model
  int64_t step = 0;    // the training step, in [0, 2^31)
  // Optional int32 [1] on the tensors' device, added to `step` when the op runs (not when it
  // is enqueued), so one captured CUDA graph draws each replay's own mask. Undefined: 0.
  Tensor step_offset;
  // Where z's first element sits in the layer's whole batch (a data-parallel rank's rows
  // start there); first_element + numel < 2^34.
  int64_t first_element = 0;
};

// out = f(z) * m / (1 - p), m = 0 or 1 by `mask`. z, out: [rows, cols] (or 1-D), same dtype
// and device; out may be z itself. Elementwise activations only (softmax is row-wise: apply
// it first with activation_forward, then this with identity). ValueError for p outside
// [0, 1) or a step or element index out of the draws' range; ShapeError for the tensors.
void dropout_forward(Activation activation, const Tensor& z, Tensor& out, const DropoutMask& mask,
                     std::optional<double> alpha = std::nullopt);

// dz = f'(z) * dout * m / (1 - p) with the forward's mask, regenerated (not stored): z, dout,
// dz of one shape; dz may be dout itself; z may be undefined for identity.
void dropout_backward(Activation activation, const Tensor& z, const Tensor& dout, Tensor& dz,
                      const DropoutMask& mask, std::optional<double> alpha = std::nullopt);

}  // namespace mlpx
