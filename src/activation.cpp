#include "mlpx/activation.h"

#include "cpu/activation.h"
#include "memory.h"
#include "mlpx/error.h"
#if MLPX_WITH_CUDA
#include "cuda/runtime.h"
#include "kernels/activation.h"
#endif

namespace mlpx {

namespace {
struct ActivationName {
  Activation activation;
  const char* name;
};
constexpr ActivationName kActivationNames[] = {
    {Activation::kIdentity, "identity"},
    {Activation::kSigmoid, "sigmoid"},
    {Activation::kTanh, "tanh"},
    {Activation::kRelu, "relu"},
    {Activation::kLeakyRelu, "leaky_relu"},
    {Activation::kElu, "elu"},
    {Activation::kSoftmax, "softmax"},
};

// `t` must be defined with the shape, dtype and device of `ref`.
void check_like(const char* op, const char* name, const Tensor& t, const char* ref_name,
                const Tensor& ref) {
  MLPX_CHECK(t.defined(), ShapeError, op, ": expected ", name, " ", ref.describe(), " (like ",
             ref_name, "), found an undefined tensor");
  MLPX_CHECK(t.shape() == ref.shape() && t.dtype() == ref.dtype() && t.device() == ref.device(),
             ShapeError, op, ": expected ", name, " ", ref.describe(), " (like ", ref_name,
             "), found ", t.describe());
}

// float32 anywhere, float64 on the CPU only.
void check_float(const char* op, const Tensor& t) {
  MLPX_CHECK(t.dtype() == DType::kFloat32 || (t.dtype() == DType::kFloat64 && t.device().is_cpu()),
             ShapeError, op, ": expected float32 (or float64 on the CPU), found ", t.describe());
}
}  // namespace

Activation parse_activation(const std::string& name) {
  for (const auto& entry : kActivationNames) {
    if (name == entry.name) return entry.activation;
  }
  throw ValueError(
      "activation: expected one of identity, sigmoid, tanh, relu, leaky_relu, elu, softmax; "
      "found '" +
      name + "'");
}

std::string activation_name(Activation activation) {
  for (const auto& entry : kActivationNames) {
    if (activation == entry.activation) return entry.name;
  }
  return "?";
}

bool activation_backward_uses_output(Activation activation) {
  return activation == Activation::kSigmoid || activation == Activation::kTanh ||
         activation == Activation::kSoftmax;
}

void activation_forward(Activation activation, const Tensor& x, Tensor& y, double alpha) {
  const std::string op = activation_name(activation) + " forward";
  MLPX_CHECK(x.defined(), ShapeError, op, ": expected an input x, found an undefined tensor");
  check_like(op.c_str(), "y", y, "x", x);
  check_float(op.c_str(), x);
  const int64_t rows = x.rows(), cols = x.cols();
  if (x.device().is_cuda()) {
#if MLPX_WITH_CUDA
    cuda::activation_forward(activation, x.data<float>(), y.data<float>(), rows, cols,
                             static_cast<float>(alpha), cuda::stream_of(x.device()));
    return;
#else
    detail::fail_without_cuda("activation_forward");
#endif
  }
  if (x.dtype() == DType::kFloat64) {
    cpu::activation_forward(activation, x.data<double>(), y.data<double>(), rows, cols, alpha);
  } else {
    cpu::activation_forward(activation, x.data<float>(), y.data<float>(), rows, cols,
                            static_cast<float>(alpha));
  }
}

void activation_backward(Activation activation, const Tensor& x, const Tensor& y, const Tensor& dy,
                         Tensor& dx, double alpha) {
  const std::string op = activation_name(activation) + " backward";
  MLPX_CHECK(dy.defined(), ShapeError, op, ": expected dy, found an undefined tensor");
  check_like(op.c_str(), "dx", dx, "dy", dy);
  check_float(op.c_str(), dy);
  // Only the forward tensor the derivative reads is required; the other may be left
  // undefined, and is checked when given.
  const bool uses_output = activation_backward_uses_output(activation);
  const bool uses_input = !uses_output && activation != Activation::kIdentity;
  if (uses_input || x.defined()) check_like(op.c_str(), "x", x, "dy", dy);
  if (uses_output || y.defined()) check_like(op.c_str(), "y", y, "dy", dy);
  const int64_t rows = dy.rows(), cols = dy.cols();
  if (dy.device().is_cuda()) {
#if MLPX_WITH_CUDA
    cuda::activation_backward(activation, uses_input ? x.data<float>() : nullptr,
                              uses_output ? y.data<float>() : nullptr, dy.data<float>(),
                              dx.data<float>(), rows, cols, static_cast<float>(alpha),
                              cuda::stream_of(dy.device()));
    return;
#else
    detail::fail_without_cuda("activation_backward");
#endif
  }
  if (dy.dtype() == DType::kFloat64) {
    cpu::activation_backward(activation, uses_input ? x.data<double>() : nullptr,
                             uses_output ? y.data<double>() : nullptr, dy.data<double>(),
                             dx.data<double>(), rows, cols, alpha);
  } else {
    cpu::activation_backward(activation, uses_input ? x.data<float>() : nullptr,
                             uses_output ? y.data<float>() : nullptr, dy.data<float>(),
                             dx.data<float>(), rows, cols, static_cast<float>(alpha));
  }
}

}  // namespace mlpx
