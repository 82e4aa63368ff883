// Matrix products on row-major 2-D tensors: OpenBLAS on the CPU, cuBLAS on the GPU.
#pragma once

#include <string>

#include "mlpx/enums.h"
#include "mlpx/tensor.h"

namespace mlpx {

// The arithmetic of a float32 GEMM. kFp32: true fp32 on every device. kTf32: inputs rounded
// to TF32 (10-bit mantissa) on a CUDA device's tensor cores, fp32 accumulation; CUDA only.
// kBf16: inputs rounded to bfloat16 (7-bit mantissa, nearest even), fp32 accumulation and
// output, on every device: cuBLAS's bf16 tensor cores on a GPU; on the CPU oneDNN's AMX or
// AVX-512 BF16 matmul where the CPU has one, else the rounded inputs through the fp32 GEMM
// (same products, fp32 speed). Weights, gradients and optimizer state stay float32.
// (Precision and its names: MLPX_PRECISIONS in mlpx/enums.h.)

// "fp32", "tf32", "bf16".
Precision parse_precision(const std::string& name);
std::string precision_name(Precision precision);

// c = alpha * op(a) * op(b) + beta * c, where op(x) is x or x^T.
// op(a): [M, K], op(b): [K, N], c: [M, N]; all one dtype and one device. With beta == 0,
// c's previous contents are ignored (NaN included). kTf32 needs float32 on a CUDA device,
// kBf16 float32 on any device.
void gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor& c,
          double alpha = 1.0, double beta = 0.0, Precision precision = Precision::kFp32);

// The threads each CPU GEMM of this process may use (OpenBLAS's setting; its default, and
// $OPENBLAS_NUM_THREADS's, is the number of cores). ValueError unless threads >= 1.
void set_cpu_threads(int threads);
int cpu_threads();

// out = x with every element rounded to the nearest bfloat16 (ties to even; NaN and infinities
// kept), still float32: the values a kBf16 GEMM multiplies. x, out: float32, one shape and
// device; out may be x.
void round_to_bf16(const Tensor& x, Tensor& out);

// How precision kBf16 multiplies on this machine's CPU, for reports: e.g. "oneDNN 2.6.3,
// AVX-512 with AMX" or "emulated through the fp32 GEMM (oneDNN 2.6.3, AVX2: no bf16 matmul)".
std::string cpu_bf16_engine();

}  // namespace mlpx
