// Activation functions, forward and backward (formulas in mlpx/math/activation.h).
#pragma once

#include <optional>
#include <string>

#include "mlpx/enums.h"
#include "mlpx/tensor.h"

namespace mlpx {

// The members, their names, flags and formulas: MLPX_ACTIVATIONS in mlpx/enums.h.
Activation parse_activation(const std::string& name);
std::string activation_name(Activation activation);

// True when a layer may set the activation's alpha: the slope of leaky_relu below 0 and the
// scale of elu.
bool activation_takes_alpha(Activation activation);

// The alpha an activation takes when none is given, PyTorch's: the slope of leaky_relu below 0
// (nn.LeakyReLU, 0.01) and the scale of elu (nn.ELU, 1.0); 0 for the others, which take none.
double default_activation_alpha(Activation activation);

// True when the backward pass reads the forward output y (sigmoid, tanh, softmax).
bool activation_backward_uses_output(Activation activation);
// True when the backward pass reads the forward input x (relu, leaky_relu, elu). Identity
// reads neither.
bool activation_backward_uses_input(Activation activation);

// y = f(x). x, y: [rows, cols] (or 1-D), same dtype and device; softmax is taken over each
// row. y may be x itself. `alpha` is the slope of leaky_relu and the scale of elu; unset:
// default_activation_alpha(activation).
void activation_forward(Activation activation, const Tensor& x, Tensor& y,
                        std::optional<double> alpha = std::nullopt);

// dx = dy * f'(...), with f' computed from x (relu family) or y (sigmoid, tanh, softmax:
// dx = y * (dy - sum_j dy_j y_j) per row). x, y, dy, dx: one shape; dx may be dy itself.
void activation_backward(Activation activation, const Tensor& x, const Tensor& y, const Tensor& dy,
                         Tensor& dx, std::optional<double> alpha = std::nullopt);

}  // namespace mlpx
