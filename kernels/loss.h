// Launchers of the loss and metric kernels (kernels/loss.cu). float32; each loss is one
// kernel that writes row_loss[rows] and, when grad is not nullptr, grad[rows, cols]. Internal.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/status.h"
#include "mlpx/loss.h"

namespace mlpx::cuda {

// mse, sse, bce: output and target [rows, cols].
void elementwise_loss(Loss loss, const float* output, const float* target, float* row_loss,
                      float* grad, int64_t rows, int64_t cols, cudaStream_t stream);

// cross_entropy on logits [rows, cols] with int32 labels [rows]: softmax, loss and dlogits
// in one kernel, probabilities never stored. A label outside [0, cols) sets `status` (the
// first fault wins), and its row gets a NaN loss and a zero gradient.
void cross_entropy(const float* logits, const int32_t* labels, float* row_loss, float* grad,
                   int64_t rows, int64_t cols, DeviceStatus* status, cudaStream_t stream);

// kl_div on logits and target rows [rows, cols].
void kl_div(const float* logits, const float* target, float* row_loss, float* grad, int64_t rows,
            int64_t cols, cudaStream_t stream);

// accumulator[0] += scale * sum(values[0..n)): one block, fixed-order tree in double.
void accumulate_sum(const float* values, int64_t n, float* accumulator, double scale,
                    cudaStream_t stream);

// correct[0] += rows whose argmax (first maximum) equals their label (integer atomics).
void accumulate_correct(const float* output, const int32_t* labels, int64_t rows, int64_t cols,
                        int32_t* correct, cudaStream_t stream);

}  // namespace mlpx::cuda
