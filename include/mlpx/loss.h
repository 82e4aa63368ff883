// Losses, each computed with its gradient in one fused pass (formulas in mlpx/math/loss.h).
#pragma once

#include <string>

#include "mlpx/enums.h"
#include "mlpx/tensor.h"

namespace mlpx {

// The members, their names and flags: MLPX_LOSSES in mlpx/enums.h.
Loss parse_loss(const std::string& name);
std::string loss_name(Loss loss);
// cross_entropy takes int32 class indices [B]; the others float targets [B, K].
bool loss_uses_class_labels(Loss loss);
// What `predict` (the command, Python's Model.predict) applies to the outputs of a model
// trained with `loss`: kSoftmax for cross_entropy (class probabilities), kSigmoid for bce
// (each output's probability), kIdentity for the others (their raw outputs).
Activation prediction_activation(Loss loss);

// output: [B, K] logits (cross_entropy: softmax fused in; kl_div: log_softmax fused in;
//         bce: sigmoid fused in) or predictions (mse, sse).
// target: int32 [B] class indices (cross_entropy), else [B, K] of output's dtype
//         (probability rows for kl_div).
// row_loss: [B]; row i's share, such that the batch loss is the mean of row_loss:
//   mse  sum_k (y - t)^2 / K          sse  0.5 sum_k (y - t)^2
//   cross_entropy  logsumexp(z) - z_label
//   kl_div  sum_k t (log t - log_softmax(z)), 0 log 0 = 0
//   bce  sum_k (max(z,0) - z t + log1p(exp(-|z|))) / K
// grad: nullptr, or [B, K]: d(batch loss)/d(output), so already divided by B.
// grad_rows: the rows of the batch whose mean loss `grad` differentiates; 0 means B. A
//   rank's share of a data-parallel batch passes the whole batch's rows (>= B), so that the
//   ranks' gradients sum to the whole batch's.
// row_weight: nullptr, or [B] of output's dtype and device: row i's row_loss and gradient are
//   multiplied by row_weight[i] (sample weights; normalize_row_weights makes a batch's weights
//   mean 1, so that the mean of row_loss is the weighted average sum w_i l_i / sum w_i).
// label_smoothing: cross_entropy only, in [0, 1] (nn.CrossEntropyLoss(label_smoothing=s)): the
//   target row is (1 - s) onehot(label) + s / K, so row_loss is
//   (1 - s) (logsumexp(z) - z_label) + s mean_k(logsumexp(z) - z_k); 0 is the plain loss.
// A label outside [0, K) is a ValueError naming it and its row (on the GPU, raised at the
// next synchronize()). NaN or Inf in output propagates to row_loss: never hidden.
void loss_forward_backward(Loss loss, const Tensor& output, const Tensor& target, Tensor& row_loss,
                           Tensor* grad, int64_t grad_rows = 0, const Tensor* row_weight = nullptr,
                           double label_smoothing = 0.0);

// normalized [N] = weights [N] * N / sum(weights) (all 0 when the sum is 0): a batch's sample
// weights as loss_forward_backward's row_weight, so that the batch loss is
// sum_i w_i l_i / sum_i w_i. Float, one device; normalized may be weights. On the device, no
// host synchronisation.
void normalize_row_weights(const Tensor& weights, Tensor& normalized);

// accumulator[0] += scale * sum(values). values: [N]; accumulator: [1], same dtype and
// device. The order of additions is fixed: the same bits on every run.
void accumulate_sum(const Tensor& values, Tensor& accumulator, double scale = 1.0);

// correct[0] += number of rows i of output [B, K] whose argmax (first maximum) equals
// labels[i]. labels: int32 [B]; correct: int32 [1]; all on one device.
void accumulate_correct(const Tensor& output, const Tensor& labels, Tensor& correct);

// correct[0] += number of elements (i, j) of output [B, K] that are right for 0/1 targets
// [B, K] (bce, one or several labels per row): output > 0 (sigmoid > 0.5) exactly where
// target > 0.5. correct: int32 [1]; all on one device, output and target of one dtype.
void accumulate_correct_per_output(const Tensor& output, const Tensor& target, Tensor& correct);

}  // namespace mlpx
