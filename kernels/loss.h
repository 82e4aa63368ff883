// Launchers of the loss and metric kernels (kernels/loss.cu). float32; each loss is one
// kernel that writes row_loss[rows] and, when grad is not nullptr, grad[rows, cols]: the
// gradient of a batch mean over `grad_rows` rows (see cpu/loss.h). Internal.
#pragma once

#include <cstdint>

#include "mlpx/device.h"
#include "mlpx/enums.h"

namespace mlpx::cuda {

// row_weight: nullptr, or [rows]: each row's loss and gradient scale by its weight.

// mse, sse, bce: output and target [rows, cols].
void elementwise_loss(Loss loss, const float* output, const float* target, float* row_loss,
                      float* grad, int64_t rows, int64_t cols, int64_t grad_rows,
                      const float* row_weight, Device device);

// cross_entropy on logits [rows, cols] with int32 labels [rows]: softmax, loss and dlogits
// in one kernel, probabilities never stored. A label outside [0, cols) sets the device's
// status flag (the first fault wins; raised by the next synchronize()), and its row gets a NaN loss
// and a zero gradient. label_smoothing in [0, 1] (0: none), fused into the same pass.
void cross_entropy(const float* logits, const int32_t* labels, float* row_loss, float* grad,
                   int64_t rows, int64_t cols, int64_t grad_rows, const float* row_weight,
                   double label_smoothing, Device device);

// kl_div on logits and target rows [rows, cols].
void kl_div(const float* logits, const float* target, float* row_loss, float* grad, int64_t rows,
            int64_t cols, int64_t grad_rows, const float* row_weight, Device device);

// normalized[i] = weights[i] * n / sum(weights) (math::normalized_row_weight): one block, the
// sum in double by a fixed tree. normalized may be weights.
void normalize_row_weights(const float* weights, int64_t n, float* normalized, Device device);

// accumulator[0] += scale * sum(values[0..n)): one block, fixed-order tree in double.
void accumulate_sum(const float* values, int64_t n, float* accumulator, double scale,
                    Device device);

// correct[0] += rows whose argmax (first maximum) equals their label (integer atomics).
void accumulate_correct(const float* output, const int32_t* labels, int64_t rows, int64_t cols,
                        int32_t* correct, Device device);

// correct[0] += elements of output and target [n] with math::output_correct (integer atomics).
void accumulate_correct_per_output(const float* output, const float* target, int64_t n,
                                   int32_t* correct, Device device);

}  // namespace mlpx::cuda
