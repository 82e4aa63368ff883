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

template <typename Member, typename T>
void forward_loop(const T* z, T* out, int64_t n, T alpha, T scale, const DropoutDraws& d) {
  for_each_factor(d, n, scale, [&](int64_t i, T factor) {
    out[i] = math::dropout_forward_value<Member>(z[i], factor, alpha);
  });
}

template <typename Member, typename T>
void backward_loop(const T* z, const T* dout, T* dz, int64_t n, T alpha, T scale,
                   const DropoutDraws& d) {
  for_each_factor(d, n, scale, [&](int64_t i, T factor) {
    // A member that reads nothing (identity) reads no z (it may be nullptr).
    const T zi = math::dropout_reads_input<Member>() ? z[i] : T(0);
    dz[i] = math::dropout_backward_value<Member>(zi, dout[i], factor, alpha);
  });
}

}  // namespace

// Rowwise activations (softmax) are refused by the ops entry: they are applied first, then
// dropped with identity.
template <typename T>
void dropout_forward(Activation activation, const T* z, T* out, int64_t n, T alpha, T scale,
                     const DropoutDraws& draws) {
  math::visit(activation, [&](auto member) {
    using Member = decltype(member);
    if constexpr (!Member::kIsRowwise) forward_loop<Member>(z, out, n, alpha, scale, draws);
  });
}

template <typename T>
void dropout_backward(Activation activation, const T* z, const T* dout, T* dz, int64_t n, T alpha,
                      T scale, const DropoutDraws& draws) {
  math::visit(activation, [&](auto member) {
    using Member = decltype(member);
    if constexpr (!Member::kIsRowwise) backward_loop<Member>(z, dout, dz, n, alpha, scale, draws);
  });
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
