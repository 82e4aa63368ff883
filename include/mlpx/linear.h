// The Linear layer, stored as PyTorch does: weight [out, in], bias [out], y = x W^T + b.
#pragma once

#include "mlpx/gemm.h"
#include "mlpx/tensor.h"

namespace mlpx {

// y[B, out] = x[B, in] * weight[out, in]^T + bias[out]; the GEMM in `precision`. An undefined
// bias adds nothing (a Linear without a bias). weight_bf16: nullptr, or with kBf16 weight's
// [out * in] elements already rounded, as math::bf16_bits of each, on weight's device
// (Sequential's copy): the GEMMs read it instead of rounding weight.
void linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y,
                    Precision precision = Precision::kFp32, const uint16_t* weight_bf16 = nullptr);

// What a Linear layer's GEMM computes after its products (mlpx/enums.h, the activation
// table's epilogue flags): kPlain the GEMM alone (the bias and the activation are separate
// kernels), kBias the bias in the epilogue, kBiasRelu the bias and a ReLU, kBiasGeluTanh the
// bias and gelu_tanh (linear_forward_gelu_tanh: it keeps the pre-activation, which
// linear_forward_epilogue has no place for).
enum class LinearEpilogue { kPlain, kBias, kBiasRelu, kBiasGeluTanh };

// y[B, out] = epilogue(x[B, in] * weight[out, in]^T + bias[out]): kBias is linear_forward;
// kBiasRelu also applies ReLU (on a CUDA device a NaN may become 0, as the simulator's cuBLASLt
// epilogue makes it; on the CPU it stays NaN). On a CUDA device, fp32 or tf32, one cuBLASLt
// GEMM with that epilogue; elsewhere (the CPU, bf16) linear_forward then the ReLU kernel.
// kPlain is refused: the caller runs its plain path.
// relu_mask: nullptr, or with kBiasRelu on a CUDA device in fp32 or tf32 an int32 tensor
// [B, relu_mask_words(out)] that receives the ReLU's bit mask (cuBLASLt's RELU_AUX_BIAS: bit o of
// row r set where y[r, o] > 0) for linear_backward_epilogue's DRELU; refused elsewhere.
void linear_forward_epilogue(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y,
                             LinearEpilogue epilogue, Precision precision = Precision::kFp32,
                             Tensor* relu_mask = nullptr);

// int32 words per row of a ReLU bit mask for `units` outputs: cuBLASLt wants the mask's leading
// dimension in bits a multiple of 128, so units rounded up to 128, over 32.
int64_t relu_mask_words(int64_t units);

// z[B, out] = x[B, in] * weight[out, in]^T + bias[out] and y[B, out] = gelu_tanh(z) (the tanh
// form, torch's GELU(approximate="tanh")); z is kept for the backward, which reads it. On a CUDA
// device in fp32 or tf32 with gelu_tanh_epilogue_fits(out): one cuBLASLt GEMM (GELU_AUX_BIAS,
// with z as its aux); elsewhere linear_forward into z, then the gelu_tanh kernel into y.
void linear_forward_gelu_tanh(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& z,
                              Tensor& y, Precision precision = Precision::kFp32);

// Whether a layer of `units` outputs can keep its pre-activation [B, units] as cuBLASLt's GELU
// aux: the aux's leading dimension (here units) must be a multiple of 8 elements.
bool gelu_tanh_epilogue_fits(int64_t units);

// The input gradient of a Linear above a gelu_tanh layer, through that GELU's backward:
// dx[B, in] = (dy[B, out] weight[out, in]) * gelu_tanh'(z_below[B, in]), which is d loss / d z
// of the layer below (z_below as linear_forward_gelu_tanh kept it); with dbias_below defined
// ([in]) also that layer's bias gradient, the sum of dx over the rows. On a CUDA device in fp32
// or tf32 with gelu_tanh_epilogue_fits(in): one cuBLASLt GEMM (DGELU_BGRAD; DGELU without
// dbias_below), the sum in cuBLASLt's order; elsewhere the GEMM, the gelu_tanh backward kernel
// and sum_rows.
void linear_input_grad_gelu_tanh(const Tensor& dy, const Tensor& weight, const Tensor& z_below,
                                 Tensor& dx, Tensor& dbias_below,
                                 Precision precision = Precision::kFp32);

// linear_backward with its epilogues (cuBLASLt, on a CUDA device in fp32 or tf32): dweight =
// dy^T x with dbias (when defined) summed in the same GEMM (BGRADB), and dx = dy * weight, then,
// with relu_mask_below (the layer below's mask from linear_forward_epilogue, [B,
// relu_mask_words(in)]), set to 0 where the layer below's ReLU was not positive (DRELU): dx is
// then d loss / d z of the layer below. dbias's sum is cuBLASLt's, in its own order (not
// sum_rows's: see docs/gpu-speed.md). Elsewhere (the CPU, bf16, float64, an empty batch) it is
// linear_backward, and a relu_mask_below is refused there.
void linear_backward_epilogue(const Tensor& x, const Tensor& weight, const Tensor& dy,
                              Tensor& dweight, Tensor& dbias, Tensor* dx,
                              const Tensor* relu_mask_below,
                              Precision precision = Precision::kFp32);

// From dy[B, out]: dweight[out, in] = dy^T x; dbias[out] = sum over rows of dy (a
// deterministic reduction: the same bits on every run); dx[B, in] = dy * weight, skipped when
// dx is nullptr (the first layer needs none); dbias undefined: none (a Linear without a bias).
// Gradients are overwritten, not accumulated. The GEMMs run in `precision`; weight_bf16 as
// linear_forward's.
void linear_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, Tensor& dweight,
                     Tensor& dbias, Tensor* dx, Precision precision = Precision::kFp32,
                     const uint16_t* weight_bf16 = nullptr);

// y[B, n] += bias[n] on every row.
void add_bias(Tensor& y, const Tensor& bias);
// sums[n] = sum over the rows of x[B, n], in a fixed order (no floating-point atomics).
void sum_rows(const Tensor& x, Tensor& sums);

}  // namespace mlpx
