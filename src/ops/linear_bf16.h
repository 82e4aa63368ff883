// A plain layer (no norm, dropout or residual add) in precision "bf16" on the CPU, where every
// GEMM input is rounded to bfloat16: the pass that writes an activation or a gradient also
// writes its bf16 bits, so no GEMM rounds its input in a pass of its own. Internal: the model's
// step (src/nn/model.cpp) keeps the bits between forward and backward.
#pragma once

#include <cstdint>

#include "mlpx/enums.h"
#include "mlpx/linear.h"
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
// dweight = dz^T x (from dz_bits and x_bits, the forward's); dbias = the row sums of dz's bf16
// values (undefined: none; dz then holds those values, so with a bias dz must not be a tensor
// the caller still needs); dx = dz W ([B, in]; nullptr: not formed). The bits of
// activation_backward + linear_backward, but for the bias gradient, which sums what the GEMMs
// read (as the GPU's BGRADB epilogue: docs/precision.md).
void activation_linear_backward_bf16(const Tensor& x, const uint16_t* x_bits, const Tensor& weight,
                                     const uint16_t* weight_bits, const Tensor& z, const Tensor& a,
                                     Activation activation, double alpha, const Tensor& upstream,
                                     Tensor& dz, uint16_t* dz_bits, Tensor& dweight, Tensor& dbias,
                                     Tensor* dx);

// Precision "bf16" on a CUDA device through cuBLASLt's epilogues (kernels/gemm.h), float32
// tensors with their bits given (each *_bits: the tensor's elements as math::bf16_bits,
// row-major, on its device; the tensor itself is then only checked for shape, never read).

// The layer's forward with its bias (and ReLU, epilogue kBiasRelu) in the GEMM's epilogue from
// x's [B, in] and weight's [out, in] bits: into y ([B, out], float32; y_bits nullptr) or into
// y_bits (B * out bf16 bits, the next layer's operand, the fp32 result rounded once; y
// nullptr). relu_mask: as linear_forward_epilogue's ([B, relu_mask_words(out)] int32, only
// with kBiasRelu), or nullptr.
void linear_forward_epilogue_bf16(const Tensor& x, const uint16_t* x_bits, const Tensor& weight,
                                  const uint16_t* weight_bits, const Tensor& bias,
                                  LinearEpilogue epilogue, Tensor* y, uint16_t* y_bits,
                                  Tensor* relu_mask);

// dweight [out, in] = dz^T x from dz's [B, out] and x's [B, in] bits, with dbias [out] (if
// defined) in the same GEMM's epilogue (BGRADB): the sum over rows of dz's bf16 values.
void linear_weight_grad_bf16(const Tensor& x, const uint16_t* x_bits, const Tensor& dz,
                             const uint16_t* dz_bits, Tensor& dweight, Tensor& dbias);

// The input gradient dx = dz W ([B, in], the shape of `dx`, which is not written) from dz's
// and weight's bits, written as bf16 bits into dx_bits (the layer below's dz for its two
// GEMMs), with that layer's ReLU backward in the epilogue where relu_mask_below (its forward's
// mask, [B, relu_mask_words(in)]) is given (DRELU).
void linear_input_grad_bf16(const Tensor& dz, const uint16_t* dz_bits, const Tensor& weight,
                            const uint16_t* weight_bits, const Tensor* relu_mask_below,
                            const Tensor& dx, uint16_t* dx_bits);

}  // namespace mlpx::ops
