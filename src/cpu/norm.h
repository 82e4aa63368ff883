// CPU loops of LayerNorm and BatchNorm (formulas in math/norm.h). Internal.
#pragma once

#include <cstdint>

#include "math/norm.h"

namespace mlpx::cpu {

// LayerNorm over each row of x [rows, cols]: y = norm_value(...); mean[r], rstd[r] kept for the
// backward.
template <typename T>
void layer_norm_forward(const T* x, const T* weight, const T* bias, T eps, T* y, T* mean, T* rstd,
                        int64_t rows, int64_t cols);

// LayerNorm's dx [rows, cols] from dy, with the forward's mean and rstd per row.
template <typename T>
void layer_norm_input_grad(const T* x, const T* weight, const T* mean, const T* rstd, const T* dy,
                           T* dx, int64_t rows, int64_t cols);

// out[c] = scale * sum over rows of the term (math::NormColumnTerm), in the fixed lane order.
template <typename T>
void norm_column_sum(math::NormColumnTerm term, const math::NormColumnOperands<T>& operands,
                     T scale, T* out, int64_t rows, int64_t cols);

// y = norm_value(x, mean[c], rstd(var[c], eps), weight[c], bias[c]) over [rows, cols].
template <typename T>
void batch_norm_apply(const T* x, const T* mean, const T* var, const T* weight, const T* bias,
                      T eps, T* y, int64_t rows, int64_t cols);

// BatchNorm's dx from dy, given the column sums dweight_sum (of dy x_hat) and dbias_sum (of dy)
// over the n rows the statistics were taken over (inv_count = 1 / n).
template <typename T>
void batch_norm_input_grad(const T* x, const T* dy, const T* mean, const T* var, const T* weight,
                           const T* dweight_sum, const T* dbias_sum, T eps, T inv_count, T* dx,
                           int64_t rows, int64_t cols);

// running_mean, running_var [cols] after a batch of `count` rows with biased `var`: torch's
// update, with the unbiased variance var * count / (count - 1); batches[0] counts one more.
template <typename T>
void batch_norm_update_running(const T* mean, const T* var, T count, T momentum, T* running_mean,
                               T* running_var, T* batches, int64_t cols);

}  // namespace mlpx::cpu
