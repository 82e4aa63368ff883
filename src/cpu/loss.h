// CPU loops of the losses and the metric accumulators (formulas in mlpx/math/loss.h).
// Each loss writes row_loss[rows] and, when grad is not nullptr, grad[rows, cols] in one pass
// over its inputs; the gradient is that of a batch mean over `grad_rows` rows (rows, or a
// global batch's rows when these rows are one rank's share of it). Internal.
#pragma once

#include <cstdint>

#include "mlpx/enums.h"

namespace mlpx::cpu {

// row_weight: nullptr, or [rows]: each row's loss and gradient scale by its weight.

// mse, sse, bce: output and target [rows, cols].
template <typename T>
void elementwise_loss(Loss loss, const T* output, const T* target, T* row_loss, T* grad,
                      int64_t rows, int64_t cols, int64_t grad_rows, const T* row_weight);

// cross_entropy on logits [rows, cols] with int32 labels [rows], label smoothing in [0, 1]
// (0: none). Throws ValueError naming the first label outside [0, cols) and its row, before
// writing anything.
template <typename T>
void cross_entropy(const T* logits, const int32_t* labels, T* row_loss, T* grad, int64_t rows,
                   int64_t cols, int64_t grad_rows, const T* row_weight, double label_smoothing);

// kl_div on logits and target rows [rows, cols].
template <typename T>
void kl_div(const T* logits, const T* target, T* row_loss, T* grad, int64_t rows, int64_t cols,
            int64_t grad_rows, const T* row_weight);

// normalized[i] = weights[i] * n / sum(weights) (math::normalized_row_weight; the sum in
// double, first to last). n >= 0; normalized may be weights.
template <typename T>
void normalize_row_weights(const T* weights, int64_t n, T* normalized);

// accumulator[0] += scale * sum(values[0..n)), summed in double, first to last.
template <typename T>
void accumulate_sum(const T* values, int64_t n, T* accumulator, double scale);

// correct[0] += rows whose argmax (first maximum) equals their label.
template <typename T>
void accumulate_correct(const T* output, const int32_t* labels, int64_t rows, int64_t cols,
                        int32_t* correct);

// correct[0] += elements i of [0, n) with math::output_correct(output[i], target[i]).
template <typename T>
void accumulate_correct_per_output(const T* output, const T* target, int64_t n, int32_t* correct);

}  // namespace mlpx::cpu
