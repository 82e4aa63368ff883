// LayerNorm and BatchNorm, forward and backward (torch.nn.LayerNorm, torch.nn.BatchNorm1d;
// formulas in src/math/norm.h). x, y, dy, dx: [B, C]; weight, bias and every statistic: [C]
// (BatchNorm) or [B] (LayerNorm's per-row mean and rstd). One dtype and device throughout.
#pragma once

#include "mlpx/tensor.h"

namespace mlpx {

// LayerNorm over each row of x [B, C]: y = (x - mean) rstd weight + bias with the row's mean
// and rstd = 1 / sqrt(biased var + eps); mean [B] and rstd [B] are written for the backward.
void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                        Tensor& y, Tensor& mean, Tensor& rstd);

// From dy [B, C]: dx [B, C], dweight [C], dbias [C] (overwritten), given the forward's x, mean
// and rstd. dx may be dy itself.
void layer_norm_backward(const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dweight,
                         Tensor& dbias);

// BatchNorm's batch statistics over the rows of x [B, C]: mean [C] and the biased var [C]
// (two passes, a fixed order of additions). `count` is what the sums are divided by: B, or
// the rows of every data-parallel rank together, whose partial results are then summed.
void batch_norm_mean(const Tensor& x, double count, Tensor& mean);
void batch_norm_variance(const Tensor& x, const Tensor& mean, double count, Tensor& var);

// y = (x - mean) / sqrt(var + eps) weight + bias per column: training (batch statistics) and
// eval (running statistics) alike. y may be x itself.
void batch_norm_apply(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight,
                      const Tensor& bias, double eps, Tensor& y);

// torch's running statistics after a training batch of `count` rows (count >= 2):
// running_mean = (1 - momentum) running_mean + momentum mean, and running_var likewise from the
// unbiased variance var count / (count - 1); num_batches_tracked [1] (a float) counts one more.
// ValueError for count < 2.
void batch_norm_update_running(const Tensor& mean, const Tensor& var, double count, double momentum,
                               Tensor& running_mean, Tensor& running_var,
                               Tensor& num_batches_tracked);

// BatchNorm's parameter gradients, column sums over the rows of dy [B, C]: dweight = sum of
// dy x_hat, dbias = sum of dy (overwritten).
void batch_norm_param_grads(const Tensor& x, const Tensor& mean, const Tensor& var, double eps,
                            const Tensor& dy, Tensor& dweight, Tensor& dbias);

// BatchNorm's dx [B, C] from dy, given the column sums of batch_norm_param_grads over the
// `count` rows the statistics were taken over (summed over the ranks when they were). dx may be
// dy itself.
void batch_norm_input_grad(const Tensor& x, const Tensor& mean, const Tensor& var,
                           const Tensor& weight, const Tensor& dweight_sum, const Tensor& dbias_sum,
                           double eps, double count, const Tensor& dy, Tensor& dx);

}  // namespace mlpx
