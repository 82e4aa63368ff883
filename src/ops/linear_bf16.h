// A plain layer (no norm, dropout or residual add) in precision "bf16" on the CPU, where every
// GEMM input is rounded to bfloat16: the pass that writes an activation or a gradient also
// writes its bf16 bits, so no GEMM rounds its input in a pass of its own. Internal: the model's
// step (src/nn/model.cpp) keeps the bits between forward and backward.
#pragma once

#include <cstdint>

#include "mlpx/enums.h"
#include "mlpx/tensor.h"

namespace mlpx::ops {

// x: [B, in] with x_bits its B * in bf16 bits (math::bf16_bits of each element, row-major);
// weight: [out, in] with weight_bits likewise; bias: [out] or undefined (none). Writes
// z = x W^T + bias: [B, out], a = f(z): [B, out] (a may be z: identity), and a_bits (B * out,
// nullptr: not written): a's bits for the next layer's GEMM. The bits of linear_forward +
// activation_forward + the next GEMM's rounding; bias, activation and rounding in one pass.
void linear_activation_forward_bf16(const Tensor& x, const uint16_t* x_bits, const Tensor& weight,
                                    const uint16_t* weight_bits, const Tensor& bias,
                                    Activation activation, double alpha, Tensor& z, Tensor& a,
                                    uint16_t* a_bits);

// Its backward from upstream = d loss / d a: [B, out]. dz = upstream * f'(z or a) with its bits
// in dz_bits (B * out) in one pass (identity: dz may be upstream itself, only rounded);
// dweight = dz^T x (from dz_bits and x_bits, the forward's); dbias = dz's row sums (undefined:
// none); dx = dz W ([B, in]; nullptr: not formed). The bits of activation_backward +
// linear_backward.
void activation_linear_backward_bf16(const Tensor& x, const uint16_t* x_bits, const Tensor& weight,
                                     const uint16_t* weight_bits, const Tensor& z, const Tensor& a,
                                     Activation activation, double alpha, const Tensor& upstream,
                                     Tensor& dz, uint16_t* dz_bits, Tensor& dweight, Tensor& dbias,
                                     Tensor* dx);

}  // namespace mlpx::ops
