// SGD with optional momentum, Nesterov momentum and L2 weight decay, as torch.optim.SGD
// (dampening 0):
//   g' = g + wd p;  v = mu v + g' (v = g' on the first step: v starts at 0);
//   p -= lr v, or with nesterov p -= lr (g' + mu v).
#pragma once

#include "math/hd.h"

namespace mlpx::math {

// Hyperparameters as the host holds them (double).
struct SgdHyper {
  double lr = 0;
  double momentum = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

// The same, rounded once to the parameter type.
template <typename T>
struct SgdCoefficients {
  T lr, momentum, weight_decay;
  bool nesterov;
};

template <typename T>
MLPX_HD SgdCoefficients<T> sgd_coefficients(const SgdHyper& h) {
  return {static_cast<T>(h.lr), static_cast<T>(h.momentum), static_cast<T>(h.weight_decay),
          h.nesterov};
}

// Plain SGD: the new p.
template <typename T>
MLPX_HD T sgd_update(T p, T g, const SgdCoefficients<T>& c) {
  if (c.weight_decay != T(0)) g += c.weight_decay * p;
  return p - c.lr * g;
}

// SGD with momentum: updates the momentum buffer `buf` in place, returns the new p.
template <typename T>
MLPX_HD T sgd_momentum_update(T p, T g, T& buf, const SgdCoefficients<T>& c) {
  if (c.weight_decay != T(0)) g += c.weight_decay * p;
  // mu * 0 + g == g exactly, so a zeroed buffer reproduces torch's "v = g" first step.
  buf = c.momentum * buf + g;
  const T d = c.nesterov ? g + c.momentum * buf : buf;
  return p - c.lr * d;
}

}  // namespace mlpx::math
