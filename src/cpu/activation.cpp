#include "cpu/activation.h"

#include "math/activation.h"

namespace mlpx::cpu {

namespace {

template <Activation kAct, typename T>
void forward_elementwise(const T* x, T* y, int64_t n, T alpha) {
  for (int64_t i = 0; i < n; ++i) y[i] = math::activation_value<kAct>(x[i], alpha);
}

template <Activation kAct, typename T>
void backward_elementwise(const T* x, const T* y, const T* dy, T* dx, int64_t n, T alpha) {
  for (int64_t i = 0; i < n; ++i) {
    // Only the operand this activation reads is dereferenced; the other may be nullptr.
    const T xi = x != nullptr ? x[i] : T(0);
    const T yi = y != nullptr ? y[i] : T(0);
    dx[i] = math::activation_grad<kAct>(xi, yi, dy[i], alpha);
  }
}

template <typename T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    math::MaxSum<T> acc = math::max_sum_empty<T>();
    for (int64_t c = 0; c < cols; ++c) math::max_sum_push(acc, xr[c]);
    const T inv_sum = T(1) / acc.sum;
    for (int64_t c = 0; c < cols; ++c) yr[c] = math::softmax_value(xr[c], acc.max, inv_sum);
  }
}

template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * cols;
    const T* dyr = dy + r * cols;
    T* dxr = dx + r * cols;
    T dot = T(0);
    for (int64_t c = 0; c < cols; ++c) dot += dyr[c] * yr[c];
    for (int64_t c = 0; c < cols; ++c) dxr[c] = math::softmax_grad(yr[c], dyr[c], dot);
  }
}

}  // namespace

template <typename T>
void activation_forward(Activation activation, const T* x, T* y, int64_t rows, int64_t cols,
                        T alpha) {
  const int64_t n = rows * cols;
  switch (activation) {
    case Activation::kIdentity:
      if (x != y) forward_elementwise<Activation::kIdentity>(x, y, n, alpha);
      return;
    case Activation::kSigmoid:
      return forward_elementwise<Activation::kSigmoid>(x, y, n, alpha);
    case Activation::kTanh:
      return forward_elementwise<Activation::kTanh>(x, y, n, alpha);
    case Activation::kRelu:
      return forward_elementwise<Activation::kRelu>(x, y, n, alpha);
    case Activation::kLeakyRelu:
      return forward_elementwise<Activation::kLeakyRelu>(x, y, n, alpha);
    case Activation::kElu:
      return forward_elementwise<Activation::kElu>(x, y, n, alpha);
    case Activation::kSoftmax:
      return softmax_forward(x, y, rows, cols);
  }
}

template <typename T>
void activation_backward(Activation activation, const T* x, const T* y, const T* dy, T* dx,
                         int64_t rows, int64_t cols, T alpha) {
  const int64_t n = rows * cols;
  switch (activation) {
    case Activation::kIdentity:
      if (dy != dx) backward_elementwise<Activation::kIdentity>(x, y, dy, dx, n, alpha);
      return;
    case Activation::kSigmoid:
      return backward_elementwise<Activation::kSigmoid>(x, y, dy, dx, n, alpha);
    case Activation::kTanh:
      return backward_elementwise<Activation::kTanh>(x, y, dy, dx, n, alpha);
    case Activation::kRelu:
      return backward_elementwise<Activation::kRelu>(x, y, dy, dx, n, alpha);
    case Activation::kLeakyRelu:
      return backward_elementwise<Activation::kLeakyRelu>(x, y, dy, dx, n, alpha);
    case Activation::kElu:
      return backward_elementwise<Activation::kElu>(x, y, dy, dx, n, alpha);
    case Activation::kSoftmax:
      return softmax_backward(y, dy, dx, rows, cols);
  }
}

template void activation_forward(Activation, const float*, float*, int64_t, int64_t, float);
template void activation_forward(Activation, const double*, double*, int64_t, int64_t, double);
template void activation_backward(Activation, const float*, const float*, const float*, float*,
                                  int64_t, int64_t, float);
template void activation_backward(Activation, const double*, const double*, const double*, double*,
                                  int64_t, int64_t, double);

}  // namespace mlpx::cpu
