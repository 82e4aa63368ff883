#include "mlpx/activation.h"

#include "core/check.h"
#include "core/dispatch.h"
#include "core/names.h"
#include "cpu/activation.h"
#include "kernels/activation.h"
#include "math/activation.h"

namespace mlpx {

Activation parse_activation(const std::string& name) {
  return detail::parse_enum(detail::kActivationNames, name, "activation");
}

std::string activation_name(Activation activation) {
  return detail::enum_name(detail::kActivationNames, activation);
}

bool activation_takes_alpha(Activation activation) {
  return math::visit(activation, [](auto member) { return decltype(member)::kHasAlpha; });
}

double default_activation_alpha(Activation activation) {
  return math::visit(activation, [](auto member) { return decltype(member)::kDefaultAlpha; });
}

bool activation_backward_uses_output(Activation activation) {
  return math::visit(activation,
                     [](auto member) { return decltype(member)::kBackwardReadsOutput; });
}

bool activation_backward_uses_input(Activation activation) {
  return math::visit(activation, [](auto member) { return decltype(member)::kBackwardReadsInput; });
}

void activation_forward(Activation activation, const Tensor& x, Tensor& y,
                        std::optional<double> alpha_or_default) {
  const double alpha = alpha_or_default.value_or(default_activation_alpha(activation));
  const std::string op = activation_name(activation) + " forward";
  detail::check_float(op, "x", x);
  detail::check_like(op, "y (like x)", y, x);
  const int64_t rows = x.rows(), cols = x.cols();
  detail::dispatch(
      op, x,
      [&] {
        cuda::activation_forward(activation, x.data<float>(), y.data<float>(), rows, cols,
                                 static_cast<float>(alpha), x.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::activation_forward(activation, x.data<T>(), y.data<T>(), rows, cols,
                                static_cast<T>(alpha));
      });
}

void activation_backward(Activation activation, const Tensor& x, const Tensor& y, const Tensor& dy,
                         Tensor& dx, std::optional<double> alpha_or_default) {
  const double alpha = alpha_or_default.value_or(default_activation_alpha(activation));
  const std::string op = activation_name(activation) + " backward";
  detail::check_float(op, "dy", dy);
  detail::check_like(op, "dx (like dy)", dx, dy);
  // Only the forward tensor the derivative reads (the table's flags) is required; the other may
  // be left undefined, and is checked when given.
  const bool uses_output = activation_backward_uses_output(activation);
  const bool uses_input = activation_backward_uses_input(activation);
  if (uses_input || x.defined()) detail::check_like(op, "x (like dy)", x, dy);
  if (uses_output || y.defined()) detail::check_like(op, "y (like dy)", y, dy);
  const int64_t rows = dy.rows(), cols = dy.cols();
  auto input = [&](auto zero) { return uses_input ? x.data<decltype(zero)>() : nullptr; };
  auto output = [&](auto zero) { return uses_output ? y.data<decltype(zero)>() : nullptr; };
  detail::dispatch(
      op, dy,
      [&] {
        cuda::activation_backward(activation, input(float{}), output(float{}), dy.data<float>(),
                                  dx.data<float>(), rows, cols, static_cast<float>(alpha),
                                  dy.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::activation_backward(activation, input(zero), output(zero), dy.data<T>(), dx.data<T>(),
                                 rows, cols, static_cast<T>(alpha));
      });
}

}  // namespace mlpx
