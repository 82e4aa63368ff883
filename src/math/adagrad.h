// Adagrad as torch.optim.Adagrad (lr_decay 0, initial_accumulator_value 0):
//   g' = g + wd p;  sum += g'^2;  p -= lr g' / (sqrt(sum) + eps).
#pragma once

#include <cmath>

#include "math/hd.h"

namespace mlpx::math {

struct AdagradHyper {
  double lr = 0;
  double eps = 1e-10;
  double weight_decay = 0;
};

template <typename T>
struct AdagradCoefficients {
  T lr, eps, weight_decay;
};

template <typename T>
MLPX_HD AdagradCoefficients<T> adagrad_coefficients(const AdagradHyper& h) {
  return {static_cast<T>(h.lr), static_cast<T>(h.eps), static_cast<T>(h.weight_decay)};
}

// Updates the accumulator `sum` in place, returns the new p.
template <typename T>
MLPX_HD T adagrad_update(T p, T g, T& sum, const AdagradCoefficients<T>& c) {
  using std::sqrt;
  if (c.weight_decay != T(0)) g += c.weight_decay * p;
  sum += g * g;
  return p - c.lr * (g / (sqrt(sum) + c.eps));
}

}  // namespace mlpx::math
