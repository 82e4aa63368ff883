// Matrix products on row-major 2-D tensors: OpenBLAS on the CPU, cuBLAS on the GPU.
#pragma once

#include "mlpx/tensor.h"

namespace mlpx {

// c = alpha * op(a) * op(b) + beta * c, where op(x) is x or x^T.
// op(a): [M, K], op(b): [K, N], c: [M, N]; all one dtype and one device. With beta == 0,
// c's previous contents are ignored (NaN included). On the GPU, float32 runs in true fp32
// (no TF32).
void gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor& c,
          double alpha = 1.0, double beta = 0.0);

}  // namespace mlpx
