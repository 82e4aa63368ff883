// Adam and AdamW as torch.optim.Adam / AdamW (amsgrad off), step t counted from 1:
//   adam:  g' = g + wd p            adamw: p *= 1 - lr wd, g' = g
//   m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)     (eps outside the sqrt)
#pragma once

#include <cmath>
#include <cstdint>

#include "math/hd.h"

namespace mlpx::math {

struct AdamHyper {
  double lr = 0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool decoupled = false;  // adamw
};

// Everything one step needs, rounded once to the parameter type.
template <typename T>
struct AdamCoefficients {
  T beta1, beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay;
  T decay;                  // adamw: 1 - lr wd; adam: 1
  T step_size;              // lr / (1 - b1^t)
  T bias_correction2_sqrt;  // sqrt(1 - b2^t)
  bool decoupled;
};

// The coefficients of step t (t >= 1), formed in double as torch forms them in Python.
template <typename T>
MLPX_HD AdamCoefficients<T> adam_coefficients(const AdamHyper& h, int64_t t) {
  using std::pow;
  using std::sqrt;
  const double td = static_cast<double>(t);
  const double bias_correction1 = 1.0 - pow(h.beta1, td);
  const double bias_correction2 = 1.0 - pow(h.beta2, td);
  AdamCoefficients<T> c;
  c.beta1 = static_cast<T>(h.beta1);
  c.beta2 = static_cast<T>(h.beta2);
  c.one_minus_beta1 = static_cast<T>(1.0 - h.beta1);
  c.one_minus_beta2 = static_cast<T>(1.0 - h.beta2);
  c.eps = static_cast<T>(h.eps);
  c.weight_decay = static_cast<T>(h.weight_decay);
  c.decay = static_cast<T>(h.decoupled ? 1.0 - h.lr * h.weight_decay : 1.0);
  c.step_size = static_cast<T>(h.lr / bias_correction1);
  c.bias_correction2_sqrt = static_cast<T>(sqrt(bias_correction2));
  c.decoupled = h.decoupled;
  return c;
}

// Updates the moments exp_avg (m) and exp_avg_sq (v) in place, returns the new p.
template <typename T>
MLPX_HD T adam_update(T p, T g, T& exp_avg, T& exp_avg_sq, const AdamCoefficients<T>& c) {
  using std::sqrt;
  if (c.decoupled) {
    p *= c.decay;
  } else if (c.weight_decay != T(0)) {
    g += c.weight_decay * p;
  }
  exp_avg = c.beta1 * exp_avg + c.one_minus_beta1 * g;
  exp_avg_sq = c.beta2 * exp_avg_sq + c.one_minus_beta2 * (g * g);
  const T denom = sqrt(exp_avg_sq) / c.bias_correction2_sqrt + c.eps;
  return p - c.step_size * (exp_avg / denom);
}

}  // namespace mlpx::math
