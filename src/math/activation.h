// Activation formulas, shared by the CPU loops (src/cpu/activation.cpp) and the CUDA kernels
// (kernels/activation.cu). Also the scalar helpers that the loss formulas build on: typed
// exp/log overloads and the streaming log-sum-exp used by softmax and the fused losses.
#pragma once

#include <math.h>

#include <cmath>

#include "math/hd.h"
#include "mlpx/activation.h"

namespace mlpx::math {

// One name per function for float and double, so templated formulas call expf for float in
// both host and device code (device code has no std::exp overloads).
MLPX_HD float exp_of(float x) { return expf(x); }
MLPX_HD double exp_of(double x) { return exp(x); }
MLPX_HD float expm1_of(float x) { return expm1f(x); }
MLPX_HD double expm1_of(double x) { return expm1(x); }
MLPX_HD float log_of(float x) { return logf(x); }
MLPX_HD double log_of(double x) { return log(x); }
MLPX_HD float log1p_of(float x) { return log1pf(x); }
MLPX_HD double log1p_of(double x) { return log1p(x); }
MLPX_HD float tanh_of(float x) { return tanhf(x); }
MLPX_HD double tanh_of(double x) { return tanh(x); }
MLPX_HD float abs_of(float x) { return fabsf(x); }
MLPX_HD double abs_of(double x) { return fabs(x); }
MLPX_HD bool is_nan(float x) { return x != x; }
MLPX_HD bool is_nan(double x) { return x != x; }

// 1 / (1 + e^-x) without overflow: exp is only ever taken of -|x|, so sigmoid(+-100) is
// exactly 1 or a tiny positive number and y (1 - y) stays finite. Both branches share the
// one exp, and the sign only selects the result (no divergence, vectorisable).
template <typename T>
MLPX_HD T sigmoid(T x) {
  const T e = exp_of(-abs_of(x));  // in (0, 1]
  const T r = T(1) / (T(1) + e);
  return x >= T(0) ? r : e * r;
}

// y = f(x) for the elementwise activations (softmax is row-wise: see softmax_* below).
// NaN goes through every branch as NaN (comparisons are written so that NaN fails them).
template <Activation kAct, typename T>
MLPX_HD T activation_value(T x, T alpha) {
  if constexpr (kAct == Activation::kSigmoid) {
    return sigmoid(x);
  } else if constexpr (kAct == Activation::kTanh) {
    return tanh_of(x);
  } else if constexpr (kAct == Activation::kRelu) {
    return x < T(0) ? T(0) : x;
  } else if constexpr (kAct == Activation::kLeakyRelu) {
    return x < T(0) ? alpha * x : x;
  } else if constexpr (kAct == Activation::kElu) {
    return x > T(0) ? x : alpha * expm1_of(x);
  } else {
    return x;  // identity (softmax never comes here)
  }
}

// dx = dy * f'(.) for the elementwise activations: from y for sigmoid and tanh, from x for
// the relu family (the derivative at the kink 0 is the left one, as in PyTorch).
template <Activation kAct, typename T>
MLPX_HD T activation_grad(T x, T y, T dy, T alpha) {
  if constexpr (kAct == Activation::kSigmoid) {
    return dy * y * (T(1) - y);
  } else if constexpr (kAct == Activation::kTanh) {
    return dy * (T(1) - y * y);
  } else if constexpr (kAct == Activation::kRelu) {
    return x > T(0) ? dy : T(0);
  } else if constexpr (kAct == Activation::kLeakyRelu) {
    return x > T(0) ? dy : alpha * dy;
  } else if constexpr (kAct == Activation::kElu) {
    return x > T(0) ? dy : dy * alpha * exp_of(x);
  } else {
    return dy;  // identity
  }
}

// Streaming log-sum-exp: (max, sum of exp(x - max)) over the values pushed so far, rescaled
// whenever the max grows, so a row is reduced in one read and exp never overflows.
// log-sum-exp = max + log(sum). Start from {-inf, 0}. NaN poisons sum and so the result.
template <typename T>
struct MaxSum {
  T max;
  T sum;
};

template <typename T>
MLPX_HD MaxSum<T> max_sum_empty() {
  return {-INFINITY, T(0)};
}

template <typename T>
MLPX_HD void max_sum_push(MaxSum<T>& acc, T x) {
  if (x > acc.max) {
    acc.sum = acc.sum * exp_of(acc.max - x) + T(1);
    acc.max = x;
  } else {
    // x == max covers -inf == -inf (exp(-inf - -inf) would be NaN); such terms are
    // rescaled to 0 as soon as a finite value arrives.
    acc.sum += x == acc.max ? T(1) : exp_of(x - acc.max);
  }
}

// Combines two partial reductions (for tree reductions across threads).
template <typename T>
MLPX_HD MaxSum<T> max_sum_merge(MaxSum<T> a, MaxSum<T> b) {
  if (a.max == b.max) return {a.max, a.sum + b.sum};
  if (a.max > b.max) return {a.max, a.sum + b.sum * exp_of(b.max - a.max)};
  // b.max > a.max, or a NaN max (then exp gives NaN and the sum is poisoned).
  return {b.max, a.sum * exp_of(a.max - b.max) + b.sum};
}

// Softmax of x given its row's reduction: exp(x - max) / sum, with inv_sum = 1 / sum.
template <typename T>
MLPX_HD T softmax_value(T x, T max, T inv_sum) {
  return exp_of(x - max) * inv_sum;
}

// Softmax backward: dx = y (dy - sum_j dy_j y_j), with dot = sum_j dy_j y_j over the row.
template <typename T>
MLPX_HD T softmax_grad(T y, T dy, T dot) {
  return y * (dy - dot);
}

}  // namespace mlpx::math
