#include "cpu/activation.h"

#include <algorithm>

#include "cpu/bf16.h"
#include "cpu/linear.h"
#include "cpu/parallel.h"
#include "math/activation.h"
#include "math/bf16.h"
#include "math/linear.h"

namespace mlpx::cpu {

namespace {

// Elements per chunk of an elementwise pass split over mlpx's threads (cpu/parallel.h): every
// element alone, so the same bits; passes of fewer elements (most batches below 256 rows of a
// 256-unit layer) run on the calling thread.
inline constexpr int64_t kParallelGrain = 65536;

template <typename Member, typename T>
void forward_elementwise(const T* x, T* y, int64_t n, T alpha) {
  for (int64_t i = 0; i < n; ++i) y[i] = Member::value(x[i], alpha);
}

template <typename Member, typename T>
void backward_elementwise(const T* x, const T* y, const T* dy, T* dx, int64_t n, T alpha) {
  for (int64_t i = 0; i < n; ++i) {
    // Only the operand this activation reads is dereferenced; the other may be nullptr.
    T xi = T(0), yi = T(0);
    if constexpr (Member::kBackwardReadsInput) xi = x[i];
    if constexpr (Member::kBackwardReadsOutput) yi = y[i];
    dx[i] = Member::grad(xi, yi, dy[i], alpha);
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
  math::visit(activation, [&](auto member) {
    using Member = decltype(member);
    if constexpr (Member::kIsRowwise) {
      static_assert(Member::kKind == Activation::kSoftmax,
                    "a rowwise activation needs its own row loops here");
      softmax_forward(x, y, rows, cols);
    } else if (Member::kKind != Activation::kIdentity || x != y) {  // identity in place: no-op
      parallel_for(rows * cols, kParallelGrain, [&](int64_t first, int64_t last) {
        forward_elementwise<Member>(x + first, y + first, last - first, alpha);
      });
    }
  });
}

template <typename T>
void activation_backward(Activation activation, const T* x, const T* y, const T* dy, T* dx,
                         int64_t rows, int64_t cols, T alpha) {
  math::visit(activation, [&](auto member) {
    using Member = decltype(member);
    if constexpr (Member::kIsRowwise) {
      static_assert(Member::kKind == Activation::kSoftmax,
                    "a rowwise activation needs its own row loops here");
      softmax_backward(y, dy, dx, rows, cols);
    } else if (Member::kKind != Activation::kIdentity || dy != dx) {
      parallel_for(rows * cols, kParallelGrain, [&](int64_t first, int64_t last) {
        // x or y may be nullptr where the member does not read it.
        backward_elementwise<Member>(x != nullptr ? x + first : nullptr,
                                     y != nullptr ? y + first : nullptr, dy + first, dx + first,
                                     last - first, alpha);
      });
    }
  });
}

namespace {

// Rows per chunk of a rowwise-split pass: about kParallelGrain elements.
int64_t row_grain(int64_t cols) {
  return std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(cols, 1));
}

}  // namespace

void bias_activation_round_forward(Activation activation, float* z, const float* bias, float* y,
                                   uint16_t* y_bits, int64_t rows, int64_t cols, float alpha) {
  math::visit(activation, [&](auto member) {
    using Member = decltype(member);
    if constexpr (Member::kIsRowwise) {
      // softmax reads whole rows: the three passes as they were.
      if (bias != nullptr) add_bias(z, bias, rows, cols);
      activation_forward(activation, z, y, rows, cols, alpha);
      if (y_bits != nullptr) round_to_bf16_bits(y, y_bits, rows * cols);
    } else {
      parallel_for(rows, row_grain(cols), [&](int64_t first, int64_t last) {
        for (int64_t r = first; r < last; ++r) {
          float* zr = z + r * cols;
          float* yr = y + r * cols;
          uint16_t* br = y_bits != nullptr ? y_bits + r * cols : nullptr;
          for (int64_t c = 0; c < cols; ++c) {
            const float pre = bias != nullptr ? math::bias_add(zr[c], bias[c]) : zr[c];
            const float out = Member::value(pre, alpha);
            if (bias != nullptr) zr[c] = pre;
            yr[c] = out;  // after zr[c]: y may be z
            if (br != nullptr) br[c] = math::bf16_bits(out);
          }
        }
      });
    }
  });
}

void activation_backward_round(Activation activation, const float* x, const float* y,
                               const float* dy, float* dx, uint16_t* dx_bits, int64_t rows,
                               int64_t cols, float alpha) {
  math::visit(activation, [&](auto member) {
    using Member = decltype(member);
    if constexpr (Member::kIsRowwise) {
      activation_backward(activation, x, y, dy, dx, rows, cols, alpha);
      round_to_bf16_bits(dx, dx_bits, rows * cols);
    } else {
      parallel_for(rows * cols, kParallelGrain, [&](int64_t first, int64_t last) {
        for (int64_t i = first; i < last; ++i) {
          // Only the operand this activation reads is dereferenced; the other may be nullptr.
          float xi = 0.0f, yi = 0.0f;
          if constexpr (Member::kBackwardReadsInput) xi = x[i];
          if constexpr (Member::kBackwardReadsOutput) yi = y[i];
          const float g = Member::grad(xi, yi, dy[i], alpha);
          // identity in place: g is dy[i], already there (dy may be a caller's tensor).
          if (Member::kKind != Activation::kIdentity || dx != dy) dx[i] = g;
          dx_bits[i] = math::bf16_bits(g);
        }
      });
    }
  });
}

template void activation_forward(Activation, const float*, float*, int64_t, int64_t, float);
template void activation_forward(Activation, const double*, double*, int64_t, int64_t, double);
template void activation_backward(Activation, const float*, const float*, const float*, float*,
                                  int64_t, int64_t, float);
template void activation_backward(Activation, const double*, const double*, const double*, double*,
                                  int64_t, int64_t, double);

}  // namespace mlpx::cpu
