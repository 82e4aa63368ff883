// LayerNorm and BatchNorm formulas (torch.nn.LayerNorm, torch.nn.BatchNorm1d), shared by the
// CPU loops (src/cpu/norm.cpp) and the CUDA kernels (kernels/norm.cu). Both normalize
// x_hat = (x - mean) * rstd with rstd = 1 / sqrt(var + eps) and the biased variance, then scale
// and shift: y = x_hat * weight + bias. LayerNorm takes mean and var over each row (a sample's
// features), BatchNorm over each column (a feature over the batch's rows).
//
// Backward, with n the values each statistic is taken over and dx_hat = dy * weight:
//   dx = rstd * (dx_hat - sum(dx_hat) / n - x_hat * sum(dx_hat * x_hat) / n),
//   dweight = sum over the other axis of dy * x_hat, dbias = sum over the other axis of dy.
// For BatchNorm the two sums are weight[c] * dbias[c] and weight[c] * dweight[c], so the
// backward needs only the parameter gradients' column sums (which data-parallel ranks can
// all-reduce to normalize as one process would).
#pragma once

#include <math.h>

#include <cstdint>
#include <type_traits>

#include "math/hd.h"
#include "math/linear.h"

namespace mlpx::math {

MLPX_HD float sqrt_of(float x) { return sqrtf(x); }
MLPX_HD double sqrt_of(double x) { return sqrt(x); }

template <typename T>
MLPX_HD T norm_rstd(T var, T eps) {
  return T(1) / sqrt_of(var + eps);
}

template <typename T>
MLPX_HD T norm_value(T x, T mean, T rstd, T weight, T bias) {
  return (x - mean) * rstd * weight + bias;
}

// dx from dy at x_hat, given mean(dx_hat) and mean(dx_hat * x_hat) over the statistic's n.
template <typename T>
MLPX_HD T norm_input_grad(T dy, T x_hat, T weight, T rstd, T mean_dx_hat, T mean_dx_hat_x_hat) {
  return rstd * (dy * weight - mean_dx_hat - x_hat * mean_dx_hat_x_hat);
}

// A running statistic after one training batch, as torch: (1 - momentum) r + momentum s.
template <typename T>
MLPX_HD T running_update(T running, T batch_value, T momentum) {
  return (T(1) - momentum) * running + momentum * batch_value;
}

// The terms the column reductions of the norms sum (over rows r, for each column c), in the
// fixed lane order of math/linear.h (the same bits on every run).
// `stat` is the column's biased variance (BatchNorm, rstd from it and eps) or the row's rstd
// (LayerNorm).
//   kX:              x                                   BatchNorm's mean
//   kCenteredSquare: (x - mean[c])^2                     BatchNorm's variance
//   kDyXhatByColumn: dy (x - mean[c]) rstd(stat[c], eps) BatchNorm's dweight
//   kDyXhatByRow:    dy (x - mean[r]) stat[r]            LayerNorm's dweight
//   kDy:             dy                                  dbias of both
enum class NormColumnTerm { kX, kCenteredSquare, kDyXhatByColumn, kDyXhatByRow, kDy };

// The operands of a column term; a term reads only those it names (the others may be null).
template <typename T>
struct NormColumnOperands {
  const T* x;
  const T* dy;
  const T* mean;
  const T* stat;
  T eps;
};

template <NormColumnTerm kTerm, typename T>
MLPX_HD T norm_column_term(const NormColumnOperands<T>& o, int64_t r, int64_t c, int64_t cols) {
  const int64_t i = r * cols + c;
  if constexpr (kTerm == NormColumnTerm::kX) {
    return o.x[i];
  } else if constexpr (kTerm == NormColumnTerm::kCenteredSquare) {
    const T d = o.x[i] - o.mean[c];
    return d * d;
  } else if constexpr (kTerm == NormColumnTerm::kDyXhatByColumn) {
    return o.dy[i] * ((o.x[i] - o.mean[c]) * norm_rstd(o.stat[c], o.eps));
  } else if constexpr (kTerm == NormColumnTerm::kDyXhatByRow) {
    return o.dy[i] * ((o.x[i] - o.mean[r]) * o.stat[r]);
  } else {
    return o.dy[i];
  }
}

// The one switch on a column term: f(std::integral_constant<NormColumnTerm, term>{}).
template <typename F>
decltype(auto) visit_column_term(NormColumnTerm term, F&& f) {
  switch (term) {
    case NormColumnTerm::kX:
      return f(std::integral_constant<NormColumnTerm, NormColumnTerm::kX>{});
    case NormColumnTerm::kCenteredSquare:
      return f(std::integral_constant<NormColumnTerm, NormColumnTerm::kCenteredSquare>{});
    case NormColumnTerm::kDyXhatByColumn:
      return f(std::integral_constant<NormColumnTerm, NormColumnTerm::kDyXhatByColumn>{});
    case NormColumnTerm::kDyXhatByRow:
      return f(std::integral_constant<NormColumnTerm, NormColumnTerm::kDyXhatByRow>{});
    case NormColumnTerm::kDy:
      break;
  }
  return f(std::integral_constant<NormColumnTerm, NormColumnTerm::kDy>{});
}

}  // namespace mlpx::math
