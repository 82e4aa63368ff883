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
// kernels), kBias the bias in the epilogue, kBiasRelu the bias and a ReLU.
enum class LinearEpilogue { kPlain, kBias, kBiasRelu };

// y[B, out] = epilogue(x[B, in] * weight[out, in]^T + bias[out]): kBias is linear_forward;
// kBiasRelu also applies ReLU (on a CUDA device a NaN may become 0, as the simulator's cuBLASLt
// epilogue makes it; on the CPU it stays NaN). On a CUDA device, fp32 or tf32, one cuBLASLt
// GEMM with that epilogue; elsewhere (the CPU, bf16) linear_forward then the ReLU kernel.
// kPlain is refused: the caller runs its plain path.
void linear_forward_epilogue(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y,
                             LinearEpilogue epilogue, Precision precision = Precision::kFp32);

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
