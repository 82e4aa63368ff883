// CPU loops of the activations (formulas in mlpx/math/activation.h). Internal.
#pragma once

#include <cstdint>

#include "mlpx/enums.h"

namespace mlpx::cpu {

// y = f(x) over [rows, cols] (softmax: over each row). y may equal x.
template <typename T>
void activation_forward(Activation activation, const T* x, T* y, int64_t rows, int64_t cols,
                        T alpha);

// dx = dy * f'(.) over [rows, cols]; reads x (relu family) or y (sigmoid, tanh, softmax);
// the other may be nullptr. dx may equal dy.
template <typename T>
void activation_backward(Activation activation, const T* x, const T* y, const T* dy, T* dx,
                         int64_t rows, int64_t cols, T alpha);

}  // namespace mlpx::cpu
