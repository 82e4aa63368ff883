// The activations' table (MLPX_ACTIVATIONS in mlpx/enums.h) made code: one member struct per
// activation with its flags and formulas, and the one `visit` that turns a runtime Activation
// into its member. The CPU loops (src/cpu/activation.cpp, dropout.cpp), the CUDA kernels
// (kernels/activation.cu, dropout.cu) and the ops entry all go through it, so adding an
// activation to the table adds it everywhere. Also the scalar helpers that the formulas and
// the loss formulas build on: typed exp/log overloads and the streaming log-sum-exp used by
// softmax and the fused losses.
#pragma once

#include <math.h>

#include <cmath>
#include <string>
#include <vector>

#include "math/hd.h"
#include "mlpx/enums.h"
#include "mlpx/error.h"

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

MLPX_HD float erf_of(float x) { return erff(x); }
MLPX_HD double erf_of(double x) { return erf(x); }

// GELU, exact: x Phi(x) with Phi(x) = (1 + erf(x / sqrt 2)) / 2 (torch.nn.GELU()); its slope
// Phi(x) + x phi(x), phi the standard normal density.
template <typename T>
MLPX_HD T gelu_erf(T x) {
  return T(0.5) * x * (T(1) + erf_of(x * T(0.70710678118654752440)));
}
template <typename T>
MLPX_HD T gelu_erf_slope(T x) {
  const T cdf = T(0.5) * (T(1) + erf_of(x * T(0.70710678118654752440)));
  const T pdf = T(0.39894228040143267794) * exp_of(T(-0.5) * x * x);
  return cdf + x * pdf;
}

// GELU, tanh form (torch.nn.GELU(approximate="tanh")): x (1 + tanh(u)) / 2 with
// u = sqrt(2 / pi) (x + 0.044715 x^3); slope (1 + t) / 2 + x (1 - t^2) u'(x) / 2, t = tanh(u).
template <typename T>
MLPX_HD T gelu_tanh(T x) {
  const T t = tanh_of(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x));
  return T(0.5) * x * (T(1) + t);
}
template <typename T>
MLPX_HD T gelu_tanh_slope(T x) {
  const T t = tanh_of(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x));
  const T du = T(0.79788456080286535588) * (T(1) + T(3) * T(0.044715) * x * x);
  return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du;
}

// ActivationMember<kind>: one table row. kKind, kName, kFlags (ActivationFlags), the flags one
// by one as bools (kHasAlpha, kBackwardReadsInput, kBackwardReadsOutput, kIsRowwise),
// kDefaultAlpha, and the elementwise formulas value(x, alpha) = f(x) and
// grad(x, y, dy, alpha) = dy f'(.), which read only the operand the flags name (the other is
// passed as 0). A rowwise member (softmax) has its own formulas below; its columns are unused.
template <Activation kKind>
struct ActivationMember;

// The table's formula columns name x, y, dy and alpha; a member that does not read one of
// them leaves it unused.
#define MLPX_ACTIVATION_MEMBER(kind, name, flags, default_alpha, forward, backward) \
  template <>                                                                       \
  struct ActivationMember<Activation::kind> : ActivationFlags {                     \
    static constexpr Activation kKind = Activation::kind;                           \
    static constexpr const char* kName = name;                                      \
    static constexpr unsigned kFlags = (flags);                                     \
    static constexpr bool kHasAlpha = (kFlags & kTakesAlpha) != 0;                  \
    static constexpr bool kBackwardReadsInput = (kFlags & kReadsInput) != 0;        \
    static constexpr bool kBackwardReadsOutput = (kFlags & kReadsOutput) != 0;      \
    static constexpr bool kIsRowwise = (kFlags & kRowwise) != 0;                    \
    static constexpr bool kEpilogueIsBias = (kFlags & kEpilogueBias) != 0;          \
    static constexpr bool kEpilogueIsBiasRelu = (kFlags & kEpilogueBiasRelu) != 0;  \
    static constexpr bool kEpilogueIsGelu = (kFlags & kEpilogueBiasGeluTanh) != 0;  \
    static constexpr double kDefaultAlpha = (default_alpha);                        \
    template <typename T>                                                           \
    MLPX_HD static T value(T x, [[maybe_unused]] T alpha) {                         \
      return (forward);                                                             \
    }                                                                               \
    template <typename T>                                                           \
    MLPX_HD static T grad([[maybe_unused]] T x, [[maybe_unused]] T y, T dy,         \
                          [[maybe_unused]] T alpha) {                               \
      return (backward);                                                            \
    }                                                                               \
  };
MLPX_ACTIVATIONS(MLPX_ACTIVATION_MEMBER)
#undef MLPX_ACTIVATION_MEMBER

// visit() for device code, where a kernel's layers differ in their activation at run time (the
// fused MLP kernels): the same table's switch, without the host's exception (a value from
// outside the table, which the host's checks refuse before any launch, computes as identity).
template <typename F>
MLPX_HD decltype(auto) visit_in_kernel(Activation activation, F&& f) {
  switch (activation) {
#define MLPX_VISIT_IN_KERNEL_CASE(kind, ...) \
  case Activation::kind:                     \
    return f(ActivationMember<Activation::kind>{});
    MLPX_ACTIVATIONS(MLPX_VISIT_IN_KERNEL_CASE)
#undef MLPX_VISIT_IN_KERNEL_CASE
  }
  return f(ActivationMember<Activation::kIdentity>{});
}

// Every activation, in the table's order (for tests that cover the whole family).
#define MLPX_ACTIVATION_VALUE(kind, ...) Activation::kind,
inline constexpr Activation kActivations[] = {MLPX_ACTIVATIONS(MLPX_ACTIVATION_VALUE)};
#undef MLPX_ACTIVATION_VALUE

// f(ActivationMember<activation>{}): the one switch on an activation. Every function that
// depends on the activation is written once, generic over the member, and reached through
// here. Host code; the kernels it launches are templated on the member.
template <typename F>
decltype(auto) visit(Activation activation, F&& f) {
  switch (activation) {
#define MLPX_VISIT_CASE(kind, ...) \
  case Activation::kind:           \
    return f(ActivationMember<Activation::kind>{});
    MLPX_ACTIVATIONS(MLPX_VISIT_CASE)
#undef MLPX_VISIT_CASE
  }
  // Only a value cast from outside the enum comes here.
  throw ValueError("activation: expected a member of the table (mlpx/enums.h), found value " +
                   std::to_string(static_cast<int>(activation)));
}

// The members that are not rowwise: those the dropout fusion and the elementwise kernels take.
inline std::vector<Activation> elementwise_activations() {
  std::vector<Activation> members;
  for (Activation a : kActivations) {
    if (!visit(a, [](auto member) { return decltype(member)::kIsRowwise; })) members.push_back(a);
  }
  return members;
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
