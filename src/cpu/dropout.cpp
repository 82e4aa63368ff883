#include "cpu/dropout.h"

#include <algorithm>

namespace mlpx::cpu {

namespace {

// Calls body(i, factor) for i in [0, n), one Philox block per four elements.
template <typename T, typename Body>
void for_each_factor(const DropoutDraws& d, int64_t n, T scale, Body&& body) {
  const uint64_t step = d.step_base + (d.step_offset != nullptr ? *d.step_offset : 0);
  int64_t i = 0;
  while (i < n) {
    const uint64_t e = d.first_element + static_cast<uint64_t>(i);
    const math::Philox4x32 r = math::dropout_draws(d.key, step, e >> 2);
    const int64_t end = std::min<int64_t>(n, i + 4 - static_cast<int64_t>(e & 3));
    for (uint64_t word = e & 3; i < end; ++i, ++word) {
      body(i, math::dropout_factor(r.v[word], d.key.threshold, scale));
    }
  }
}

template <Activation kAct, typename T>
void forward_loop(const T* z, T* out, int64_t n, T alpha, T scale, const DropoutDraws& d) {
  for_each_factor(d, n, scale, [&](int64_t i, T factor) {
    out[i] = math::dropout_forward_value<kAct>(z[i], factor, alpha);
  });
}

template <Activation kAct, typename T>
void backward_loop(const T* z, const T* dout, T* dz, int64_t n, T alpha, T scale,
                   const DropoutDraws& d) {
  for_each_factor(d, n, scale, [&](int64_t i, T factor) {
    // identity reads no z (it may be nullptr).
    const T zi = kAct == Activation::kIdentity ? T(0) : z[i];
    dz[i] = math::dropout_backward_value<kAct>(zi, dout[i], factor, alpha);
  });
}

}  // namespace

template <typename T>
void dropout_forward(Activation activation, const T* z, T* out, int64_t n, T alpha, T scale,
                     const DropoutDraws& draws) {
  switch (activation) {
    case Activation::kIdentity:
      return forward_loop<Activation::kIdentity>(z, out, n, alpha, scale, draws);
    case Activation::kSigmoid:
      return forward_loop<Activation::kSigmoid>(z, out, n, alpha, scale, draws);
    case Activation::kTanh:
      return forward_loop<Activation::kTanh>(z, out, n, alpha, scale, draws);
    case Activation::kRelu:
      return forward_loop<Activation::kRelu>(z, out, n, alpha, scale, draws);
    case Activation::kLeakyRelu:
      return forward_loop<Activation::kLeakyRelu>(z, out, n, alpha, scale, draws);
    case Activation::kElu:
      return forward_loop<Activation::kElu>(z, out, n, alpha, scale, draws);
    case Activation::kSoftmax:
      return;  // refused by the ops entry
  }
}

template <typename T>
void dropout_backward(Activation activation, const T* z, const T* dout, T* dz, int64_t n, T alpha,
                      T scale, const DropoutDraws& draws) {
  switch (activation) {
    case Activation::kIdentity:
      return backward_loop<Activation::kIdentity>(z, dout, dz, n, alpha, scale, draws);
    case Activation::kSigmoid:
      return backward_loop<Activation::kSigmoid>(z, dout, dz, n, alpha, scale, draws);
    case Activation::kTanh:
      return backward_loop<Activation::kTanh>(z, dout, dz, n, alpha, scale, draws);
    case Activation::kRelu:
      return backward_loop<Activation::kRelu>(z, dout, dz, n, alpha, scale, draws);
    case Activation::kLeakyRelu:
      return backward_loop<Activation::kLeakyRelu>(z, dout, dz, n, alpha, scale, draws);
    case Activation::kElu:
      return backward_loop<Activation::kElu>(z, dout, dz, n, alpha, scale, draws);
    case Activation::kSoftmax:
      return;  // refused by the ops entry
  }
}

template void dropout_forward(Activation, const float*, float*, int64_t, float, float,
                              const DropoutDraws&);
template void dropout_forward(Activation, const double*, double*, int64_t, double, double,
                              const DropoutDraws&);
template void dropout_backward(Activation, const float*, const float*, float*, int64_t, float,
                               float, const DropoutDraws&);
template void dropout_backward(Activation, const double*, const double*, double*, int64_t, double,
                               double, const DropoutDraws&);

}  // namespace mlpx::cpu
