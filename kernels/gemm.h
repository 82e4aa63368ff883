// Row-major GEMM on the GPU through cuBLAS. Internal.
#pragma once

#include <cstdint>

#include "mlpx/enums.h"

namespace mlpx::cuda {
// c[M,N] = alpha * op(a) * op(b) + beta * c, row-major float32, on `device`'s stream, with the
// compute type of `precision`: kFp32 CUBLAS_COMPUTE_32F (fp32 math, never TF32: the handle is in
// its default math mode; not _PEDANTIC, which would also forbid cuBLAS's fast fp32 paths and is
// documented as a testing mode), kTf32 TF32 tensor cores (inputs rounded to 10-bit mantissas,
// fp32 accumulation), kBf16 bf16 tensor cores (inputs rounded to bfloat16 by kernels/bf16.cu
// into the context's scratch, fp32 accumulation and output).
void gemm(int device, bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
          float alpha, const float* a, const float* b, float beta, float* c, Precision precision);

// gemm() in precision kBf16 with either operand's bfloat16 rounding given: a_bits (b_bits)
// nullptr, or a's m*k (b's k*n) elements in a's (b's) row-major layout as math::bf16_bits, on
// the device, which cuBLAS reads instead of rounding a (b) into scratch; a (b) itself is then
// not read. The same bits of c either way.
void gemm_bf16(int device, bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
               float alpha, const float* a, const uint16_t* a_bits, const float* b,
               const uint16_t* b_bits, float beta, float* c);

// The Linear forward with its bias (and a ReLU) in the GEMM's epilogue, through cuBLASLt:
// y[batch, out] = x[batch, in] w[out, in]^T + bias[out], then max(y, 0) when `relu`; fp32 or
// tf32 (`precision`; bf16 is not taken here). In cuBLASLt's column-major terms y^T[out, batch]
// = w x^T: A = w (op T, ld in), B = x (op N, ld in), D = y^T (ld out), bias per row of D.
// relu_mask: nullptr, or with `relu` the ReLU's bit mask for a later DRELU (RELU_AUX_BIAS): bit
// o + r * mask_ld_bits is set where y[r, o] > 0 before the ReLU; mask_ld_bits a multiple of 128
// and >= out (cuBLASLt's rule for the bit mask's leading dimension), the buffer
// batch * mask_ld_bits / 8 bytes.
void gemm_bias_epilogue(int device, int64_t batch, int64_t in, int64_t out, const float* x,
                        const float* w, const float* bias, float* y, bool relu, Precision precision,
                        void* relu_mask = nullptr, int64_t mask_ld_bits = 0);

// The Linear's weight gradient with its bias gradient in the epilogue (BGRADB), through
// cuBLASLt: dweight[out, in] = dy[batch, out]^T x[batch, in] and dbias[out] = the sum over rows
// of dy (cuBLASLt's reduction order, not sum_rows's); fp32 or tf32. Column-major: dweight^T[in,
// out] = x^T dy: A = x (op N, ld in), B = dy (op T, ld out), the bias gradient per column of D,
// summed over k = batch.
void gemm_weight_grad_bgrad(int device, int64_t batch, int64_t in, int64_t out, const float* x,
                            const float* dy, float* dweight, float* dbias, Precision precision);

// The Linear's input gradient with the ReLU backward of the layer below in the epilogue
// (DRELU): dx[batch, in] = (dy[batch, out] w[out, in]) where relu_mask's bit is set, else 0;
// relu_mask as gemm_bias_epilogue wrote it for the layer below (its units = in). fp32 or tf32.
// Column-major: dx^T[in, batch] = w^T dy^T: A = w (op N, ld in), B = dy (op N, ld out).
void gemm_input_grad_drelu(int device, int64_t batch, int64_t in, int64_t out, const float* dy,
                           const float* w, const void* relu_mask, int64_t mask_ld_bits, float* dx,
                           Precision precision);

// Precision bf16 through cuBLASLt: bf16 operands given as bits (math::bf16_bits, row-major as
// the fp32 tensors they round), fp32 accumulation and epilogue, fp32 bias and bias gradient
// (CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE), and a bf16 D where the next GEMM reads it: the
// epilogue's fp32 result rounded once to nearest even as it is stored (cuBLASLt's
// conversion). The layouts are those of the fp32 functions above.

// gemm_bias_epilogue from x's and w's bits, writing either y[batch, out] in fp32 (y_bits
// nullptr: a network's last layer) or y's bf16 bits (y nullptr: the next layer's operand);
// relu_mask and mask_ld_bits as there.
void gemm_bias_epilogue_bf16(int device, int64_t batch, int64_t in, int64_t out,
                             const uint16_t* x_bits, const uint16_t* w_bits, const float* bias,
                             float* y, uint16_t* y_bits, bool relu, void* relu_mask = nullptr,
                             int64_t mask_ld_bits = 0);

// dweight[out, in] = dy^T x from dy's [batch, out] and x's [batch, in] bits, fp32; with dbias
// (not nullptr) the bias gradient in the epilogue (BGRADB): dy's bf16 values summed over the
// batch in fp32.
void gemm_weight_grad_bf16(int device, int64_t batch, int64_t in, int64_t out,
                           const uint16_t* x_bits, const uint16_t* dy_bits, float* dweight,
                           float* dbias);

// dx[batch, in] = dy[batch, out] w[out, in] from bits, written as bf16 bits (the layer below's
// dz, read by its two GEMMs); with relu_mask (not nullptr) the ReLU backward of the layer below
// in the epilogue (DRELU), the mask as gemm_bias_epilogue(_bf16) wrote it (units = in).
void gemm_input_grad_bf16(int device, int64_t batch, int64_t in, int64_t out,
                          const uint16_t* dy_bits, const uint16_t* w_bits, const void* relu_mask,
                          int64_t mask_ld_bits, uint16_t* dx_bits);
// The Linear forward with its bias and the GELU in the GEMM's epilogue (GELU_AUX_BIAS), through
// cuBLASLt: pre[r, o] = (x w^T)[r, o] + bias[o] and y = gelu_tanh(pre) (math::gelu_tanh, the
// tanh form: the GELU cuBLASLt's epilogue computes, docs/gpu-speed.md); fp32 or tf32. pre is
// [batch, pre_ld] row-major (element o + r * pre_ld), pre_ld a multiple of 8 and >= out
// (cuBLASLt's rule for a non-bitmask aux's leading dimension, in elements). Layout as
// gemm_bias_epilogue's.
void gemm_bias_gelu_tanh_epilogue(int device, int64_t batch, int64_t in, int64_t out,
                                  const float* x, const float* w, const float* bias, float* y,
                                  float* pre, int64_t pre_ld, Precision precision);

// The Linear's input gradient with the GELU backward of the layer below in the epilogue (DGELU):
// dx[batch, in] = (dy[batch, out] w[out, in]) * gelu_tanh_slope(pre_below), pre_below as
// gemm_bias_gelu_tanh_epilogue wrote it for the layer below (its units = in, ld pre_ld). With
// dbias_below (not nullptr), also the layer below's bias gradient, dbias_below[in] = the sum of
// dx over the batch (DGELU_BGRAD, cuBLASLt's order). fp32 or tf32; layout as
// gemm_input_grad_drelu's.
void gemm_input_grad_dgelu(int device, int64_t batch, int64_t in, int64_t out, const float* dy,
                           const float* w, const float* pre_below, int64_t pre_ld, float* dx,
                           float* dbias_below, Precision precision);
}  // namespace mlpx::cuda
