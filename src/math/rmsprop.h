// RMSprop as torch.optim.RMSprop (not centered, no momentum):
//   g' = g + wd p;  s = alpha s + (1 - alpha) g'^2;  p -= lr g' / (sqrt(s) + eps).
#pragma once

#include <cmath>

#include "math/hd.h"

namespace mlpx::math {

struct RmspropHyper {
  double lr = 0;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0;
};

template <typename T>
struct RmspropCoefficients {
  T lr, alpha, one_minus_alpha, eps, weight_decay;
};

// 1 - alpha is formed in double, then rounded, as torch forms it in Python.
template <typename T>
MLPX_HD RmspropCoefficients<T> rmsprop_coefficients(const RmspropHyper& h) {
  return {static_cast<T>(h.lr), static_cast<T>(h.alpha), static_cast<T>(1.0 - h.alpha),
          static_cast<T>(h.eps), static_cast<T>(h.weight_decay)};
}

// Updates the running mean of squares `square_avg` in place, returns the new p.
template <typename T>
MLPX_HD T rmsprop_update(T p, T g, T& square_avg, const RmspropCoefficients<T>& c) {
  using std::sqrt;
  if (c.weight_decay != T(0)) g += c.weight_decay * p;
  square_avg = c.alpha * square_avg + c.one_minus_alpha * (g * g);
  return p - c.lr * (g / (sqrt(square_avg) + c.eps));
}

}  // namespace mlpx::math
