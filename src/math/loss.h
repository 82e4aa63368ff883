// Loss formulas, shared by the CPU loops (src/cpu/loss.cpp) and the CUDA kernels
// (kernels/loss.cu), one LossMember per row of the losses' table (MLPX_LOSSES in mlpx/enums.h),
// and the one `visit` that turns a runtime Loss into its member. Each loss is computed with its
// gradient in one pass over a row; the row reductions (log-sum-exp) come from
// mlpx/math/activation.h.
#pragma once

#include <cstdint>
#include <string>

#include "math/activation.h"
#include "math/hd.h"
#include "mlpx/enums.h"
#include "mlpx/error.h"

namespace mlpx::math {

// Per-element part of the elementwise losses (mse, sse, bce): the element's contribution to
// the row sum, and its gradient before the caller's scale. The row loss is
// sum * row_scale and the gradient grad * grad_scale, with the scales of loss_scales().
template <typename T>
struct ElementLoss {
  T value;
  T grad;
};

// mse and sse: (y - t)^2, and y - t (the factor 2, sse's 0.5 and the means live in the
// scales).
template <typename T>
MLPX_HD ElementLoss<T> squared_error(T y, T t) {
  const T d = y - t;
  return {d * d, d};
}

// bce on logits: max(z, 0) - z t + log1p(exp(-|z|)), derivative sigmoid(z) - t. Stable for
// any finite z; NaN or Inf in z gives NaN (never hidden).
template <typename T>
MLPX_HD ElementLoss<T> bce_with_logits(T z, T t) {
  const T relu = z > T(0) ? z : T(0);
  return {relu - z * t + log1p_of(exp_of(-abs_of(z))), sigmoid(z) - t};
}

// t log t with 0 log 0 = 0 (the entropy term of kl_div).
template <typename T>
MLPX_HD T x_log_x(T t) {
  return t == T(0) ? T(0) : t * log_of(t);
}

// Scales that turn row sums into row_loss and element derivatives into d(batch loss)/dy.
// grad_scale folds in the 1/B of the batch mean; row_scale is the per-row normalisation.
struct LossScales {
  double row;   // row_loss = row * sum over the row's elements
  double grad;  // grad = grad * per-element derivative
};

// The fused pass of a rowwise loss: each has its own CPU loop and kernel pair.
struct CrossEntropyPass {};
struct KlDivPass {};

// LossRow<kind>: the table's row (MLPX_LOSSES in mlpx/enums.h): kKind, kName, kFlags and the
// flags one by one.
template <Loss kKind>
struct LossRow;

#define MLPX_LOSS_ROW(kind, name, flags)                                   \
  template <>                                                              \
  struct LossRow<Loss::kind> : LossFlags {                                 \
    static constexpr Loss kKind = Loss::kind;                              \
    static constexpr const char* kName = name;                             \
    static constexpr unsigned kFlags = (flags);                            \
    static constexpr bool kUsesClassLabels = (kFlags & kClassLabels) != 0; \
    static constexpr bool kIsRowwise = (kFlags & kRowwise) != 0;           \
    static constexpr bool kFitsRegression = (kFlags & kRegression) != 0;   \
    static constexpr Activation kPrediction =                              \
        (kFlags & kPredictsSoftmax) != 0   ? Activation::kSoftmax          \
        : (kFlags & kPredictsSigmoid) != 0 ? Activation::kSigmoid          \
                                           : Activation::kIdentity;        \
  };
MLPX_LOSSES(MLPX_LOSS_ROW)
#undef MLPX_LOSS_ROW

// LossMember<kind>: the row and the member's formulas. Every member has
//   scales(inv_rows, inv_cols): its LossScales for a batch of 1 / inv_rows rows of
//     1 / inv_cols columns (the rows its gradient averages over);
// an elementwise member element(y, t): its ElementLoss; a rowwise one FusedPass, the tag of its
// fused pass. A member of the table without its LossMember fails to compile (visit below).
template <Loss kKind>
struct LossMember;

template <>
struct LossMember<Loss::kMse> : LossRow<Loss::kMse> {
  // mean of (y-t)^2 over B*K elements; d/dy = 2 (y-t) / (B K)
  static LossScales scales(double inv_rows, double inv_cols) {
    return {inv_cols, 2.0 * inv_rows * inv_cols};
  }
  template <typename T>
  MLPX_HD static ElementLoss<T> element(T y, T t) {
    return squared_error(y, t);
  }
};

template <>
struct LossMember<Loss::kSse> : LossRow<Loss::kSse> {
  // 0.5 sum (y-t)^2 per row, mean over rows; d/dy = (y-t) / B
  static LossScales scales(double inv_rows, double /*inv_cols*/) { return {0.5, inv_rows}; }
  template <typename T>
  MLPX_HD static ElementLoss<T> element(T y, T t) {
    return squared_error(y, t);
  }
};

template <>
struct LossMember<Loss::kBce> : LossRow<Loss::kBce> {
  // mean over B*K elements; d/dz = (sigmoid(z) - t) / (B K)
  static LossScales scales(double inv_rows, double inv_cols) {
    return {inv_cols, inv_rows * inv_cols};
  }
  template <typename T>
  MLPX_HD static ElementLoss<T> element(T z, T t) {
    return bce_with_logits(z, t);
  }
};

template <>
struct LossMember<Loss::kCrossEntropy> : LossRow<Loss::kCrossEntropy> {
  using FusedPass = CrossEntropyPass;
  static LossScales scales(double inv_rows, double /*inv_cols*/) { return {1.0, inv_rows}; }
};

template <>
struct LossMember<Loss::kKlDiv> : LossRow<Loss::kKlDiv> {
  using FusedPass = KlDivPass;
  static LossScales scales(double inv_rows, double /*inv_cols*/) { return {1.0, inv_rows}; }
};

// Every loss, in the table's order (for tests that cover the whole family).
#define MLPX_LOSS_VALUE(kind, ...) Loss::kind,
inline constexpr Loss kLosses[] = {MLPX_LOSSES(MLPX_LOSS_VALUE)};
#undef MLPX_LOSS_VALUE

// f(LossMember<loss>{}): the one switch on a loss. Host code.
template <typename F>
decltype(auto) visit(Loss loss, F&& f) {
  switch (loss) {
#define MLPX_VISIT_CASE(kind, ...) \
  case Loss::kind:                 \
    return f(LossMember<Loss::kind>{});
    MLPX_LOSSES(MLPX_VISIT_CASE)
#undef MLPX_VISIT_CASE
  }
  throw ValueError("loss: expected a member of the table (mlpx/enums.h), found value " +
                   std::to_string(static_cast<int>(loss)));
}

// Member's scales for `rows` rows (the rows its gradient averages over) of `cols` columns.
template <typename Member>
LossScales loss_scales(int64_t rows, int64_t cols) {
  const double inv_rows = rows > 0 ? 1.0 / static_cast<double>(rows) : 0.0;
  const double inv_cols = cols > 0 ? 1.0 / static_cast<double>(cols) : 0.0;
  return Member::scales(inv_rows, inv_cols);
}

// cross_entropy row loss: logsumexp(z) - z_label = (max - z_label) + log(sum), in this order
// so that a row of equal logits gives exactly log(K).
template <typename T>
MLPX_HD T cross_entropy_row_loss(MaxSum<T> lse, T z_label) {
  return (lse.max - z_label) + log_of(lse.sum);
}

// cross_entropy with label smoothing s over K classes (nn.CrossEntropyLoss(label_smoothing=s)):
// the target row is q = (1 - s) onehot(label) + s / K, so the row loss is
// (1 - s) nll + s mean_k(logsumexp(z) - z_k), where mean_k(lse - z_k) = (max - z_sum / K) +
// log(sum). s = 0 returns the plain row loss, bit for bit.
template <typename T>
MLPX_HD T smoothed_cross_entropy_row_loss(MaxSum<T> lse, T z_label, T z_sum, T smoothing,
                                          T inv_cols) {
  const T nll = cross_entropy_row_loss(lse, z_label);
  if (smoothing == T(0)) return nll;
  const T uniform = (lse.max - z_sum * inv_cols) + log_of(lse.sum);
  return (T(1) - smoothing) * nll + smoothing * uniform;
}

// cross_entropy gradient: (softmax(z) - q) * grad_scale with the smoothed target
// q = (1 - s) onehot(label) + s / K; s = 0 gives exactly (softmax(z) - onehot(label)).
template <typename T>
MLPX_HD T cross_entropy_grad(T z, bool is_label, T max, T inv_sum, T grad_scale, T smoothing,
                             T inv_cols) {
  const T q = (is_label ? T(1) - smoothing : T(0)) + smoothing * inv_cols;
  return (softmax_value(z, max, inv_sum) - q) * grad_scale;
}

// kl_div element term: t (log t - log_softmax(z)), log_softmax(z) = (z - max) - log(sum).
template <typename T>
MLPX_HD T kl_div_term(T z, T t, T max, T log_sum) {
  return x_log_x(t) - t * ((z - max) - log_sum);
}

// kl_div gradient: (softmax(z) sum_k t_k - t) * grad_scale; sum_k t_k need not be 1.
template <typename T>
MLPX_HD T kl_div_grad(T z, T t, T max, T inv_sum, T target_sum, T grad_scale) {
  return (softmax_value(z, max, inv_sum) * target_sum - t) * grad_scale;
}

// Sample weights: a row's loss and gradient scale by its weight; a batch's weights come
// normalised to mean 1 (w_i rows / sum_j w_j), so that the mean of the weighted row losses is
// the weighted average sum_i w_i l_i / sum_i w_i (numpy's average with weights, as
// scikit-learn averages a weighted loss). A batch whose weights sum to 0 has weight 0 everywhere
// (no loss, no gradient), not 0/0.
template <typename T>
MLPX_HD T normalized_row_weight(T weight, T rows, T weight_sum) {
  return weight_sum > T(0) ? weight * rows / weight_sum : T(0);
}

// A row's weight, or 1 without weights.
template <typename T>
MLPX_HD T row_weight_of(const T* row_weight, int64_t row) {
  return row_weight != nullptr ? row_weight[row] : T(1);
}

// Argmax with the first maximum winning: true when (value, index) beats (best, best_index).
// A total order (NaN counts as the largest value, as in torch.argmax), so a sequential loop
// and a tree reduction pick the same element.
template <typename T>
MLPX_HD bool argmax_beats(T value, int64_t index, T best, int64_t best_index) {
  const bool value_nan = is_nan(value), best_nan = is_nan(best);
  if (value_nan || best_nan) return value_nan && (!best_nan || index < best_index);
  return value > best || (value == best && index < best_index);
}

// Whether one output of a sigmoid (bce) model is right: its probability sigmoid(z) > 0.5,
// i.e. z > 0, against a 0/1 target read as target > 0.5. A NaN output is never right.
template <typename T>
MLPX_HD bool output_correct(T output, T target) {
  return !is_nan(output) && (output > T(0)) == (target > T(0.5));
}

}  // namespace mlpx::math
