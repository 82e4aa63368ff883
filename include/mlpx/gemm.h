// Matrix products on row-major 2-D tensors: OpenBLAS on the CPU, cuBLAS on the GPU.
#pragma once

#include <string>

#include "mlpx/tensor.h"

namespace mlpx {

// The arithmetic of a float32 GEMM. kFp32: true fp32 on every device. kTf32: inputs rounded
// to TF32 (10-bit mantissa) on a CUDA device's tensor cores, fp32 accumulation; CUDA only.
enum class Precision { kFp32, kTf32 };

// "fp32", "tf32".
Precision parse_precision(const std::string& name);
std::string precision_name(Precision precision);

// c = alpha * op(a) * op(b) + beta * c, where op(x) is x or x^T.
// op(a): [M, K], op(b): [K, N], c: [M, N]; all one dtype and one device. With beta == 0,
// c's previous contents are ignored (NaN included). kTf32 needs float32 on a CUDA device.
void gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor& c,
          double alpha = 1.0, double beta = 0.0, Precision precision = Precision::kFp32);

// The threads each CPU GEMM of this process may use (OpenBLAS's setting; its default, and
// $OPENBLAS_NUM_THREADS's, is the number of cores). ValueError unless threads >= 1.
void set_cpu_threads(int threads);
int cpu_threads();

}  // namespace mlpx
