// CPU loops of the activations (formulas in mlpx/math/activation.h). Internal.
#pragma once

#include <cstdint>

#include "mlpx/enums.h"

namespace mlpx::cpu {

// y = f(x) over [rows, cols] (softmax: over each row). y may equal x.
template <typename T>
void activation_forward(Activation activation, const T* x, T* y, int64_t rows, int64_t cols,
                        T alpha);

// dx = dy * f'(.) over [rows, cols]; reads x (relu family) or y (sigmoid, tanh, softmax);
// the other may be nullptr. dx may equal dy.
template <typename T>
void activation_backward(Activation activation, const T* x, const T* y, const T* dy, T* dx,
                         int64_t rows, int64_t cols, T alpha);

// Precision "bf16": a layer's bias, activation and the rounding of its output for the next
// GEMM in one pass over [rows, cols], where add_bias, activation_forward and the GEMM's input
// rounding (round_to_bf16_bits) each made one: z[r, c] = z[r, c] + bias[c] (bias nullptr: none),
// y = f(z), y_bits = math::bf16_bits(y) (y_bits nullptr: not written). y may equal z (identity
// keeps no second buffer). The same bits as those three passes.
void bias_activation_round_forward(Activation activation, float* z, const float* bias, float* y,
                                   uint16_t* y_bits, int64_t rows, int64_t cols, float alpha);

// Its backward: dx = dy * f'(.) as activation_backward, and dx_bits = math::bf16_bits(dx) in the
// same pass (what both bf16 GEMMs of the layer's backward read). dx may equal dy (identity:
// dx is dy and only the bits are written).
void activation_backward_round(Activation activation, const float* x, const float* y,
                               const float* dy, float* dx, uint16_t* dx_bits, int64_t rows,
                               int64_t cols, float alpha);

}  // namespace mlpx::cpu
