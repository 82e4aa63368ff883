// Activation functions, forward and backward (formulas in mlpx/math/activation.h).
#pragma once

#include <string>

#include "mlpx/tensor.h"

namespace mlpx {

enum class Activation { kIdentity, kSigmoid, kTanh, kRelu, kLeakyRelu, kElu, kSoftmax };

// "identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax".
Activation parse_activation(const std::string& name);
std::string activation_name(Activation activation);

// True when the backward pass reads the forward output y (sigmoid, tanh, softmax); false
// when it reads the forward input x (relu, leaky_relu, elu) or nothing (identity).
bool activation_backward_uses_output(Activation activation);

// y = f(x). x, y: [rows, cols] (or 1-D), same dtype and device; softmax is taken over each
// row. y may be x itself. `alpha` is the slope of leaky_relu and the scale of elu.
void activation_forward(Activation activation, const Tensor& x, Tensor& y, double alpha = 0.01);

// dx = dy * f'(...), with f' computed from x (relu family) or y (sigmoid, tanh, softmax:
// dx = y * (dy - sum_j dy_j y_j) per row). x, y, dy, dx: one shape; dx may be dy itself.
void activation_backward(Activation activation, const Tensor& x, const Tensor& y, const Tensor& dy,
                         Tensor& dx, double alpha = 0.01);

}  // namespace mlpx
