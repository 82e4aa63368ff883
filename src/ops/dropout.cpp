#include "mlpx/dropout.h"

#include <string>

#include "core/check.h"
#include "core/dispatch.h"
#include "cpu/dropout.h"
#include "kernels/dropout.h"
#include "math/dropout.h"
#include "math/streams.h"
#include "mlpx/error.h"

namespace mlpx {

namespace {

// The draws' counter holds the step and the element's block side by side (math/dropout.h).
constexpr int64_t kMaxStep = int64_t{1} << 31;  // plus an int32 offset: below 2^32
constexpr int64_t kMaxElements = int64_t{1} << 34;

// Checks the mask against the `n` elements of `like` and returns its draws.
math::DropoutDraws draws_of(const std::string& op, const DropoutMask& mask, const Tensor& like) {
  MLPX_CHECK(mask.p >= 0.0 && mask.p < 1.0, ValueError, op,
             ": expected a drop probability p in [0, 1), found ", mask.p);
  MLPX_CHECK(mask.step >= 0 && mask.step < kMaxStep, ValueError, op,
             ": expected a step in [0, 2^31), found ", mask.step);
  MLPX_CHECK(mask.first_element >= 0 && mask.first_element + like.numel() <= kMaxElements,
             ValueError, op, ": expected elements below 2^34 per layer and step, found ",
             mask.first_element, " + ", like.numel());
  MLPX_CHECK(mask.layer < (uint64_t{1} << 40), ValueError, op,
             ": expected a layer index below 2^40, found ", mask.layer);
  math::DropoutDraws d;
  d.key.seed = mask.seed;
  d.key.stream = math::kStreamDropout + mask.layer;
  d.key.threshold = math::dropout_threshold(mask.p);
  d.step_base = static_cast<uint64_t>(mask.step);
  d.first_element = static_cast<uint64_t>(mask.first_element);
  if (mask.step_offset.defined()) {
    detail::check_tensor(op, "step_offset", mask.step_offset, {1}, DType::kInt32, like.device());
    d.step_offset = mask.step_offset.data<int32_t>();
  }
  return d;
}

void check_elementwise(const std::string& op, Activation activation) {
  const bool rowwise =
      math::visit(activation, [](auto member) { return decltype(member)::kIsRowwise; });
  MLPX_CHECK(!rowwise, ValueError, op, ": expected an elementwise activation, found ",
             activation_name(activation), " (row-wise: apply it first, then drop with identity)");
}

}  // namespace

void dropout_forward(Activation activation, const Tensor& z, Tensor& out, const DropoutMask& mask,
                     std::optional<double> alpha_or_default) {
  const double alpha = alpha_or_default.value_or(default_activation_alpha(activation));
  const std::string op = activation_name(activation) + " + dropout forward";
  check_elementwise(op, activation);
  detail::check_float(op, "z", z);
  detail::check_like(op, "out (like z)", out, z);
  const math::DropoutDraws draws = draws_of(op, mask, z);
  const int64_t n = z.numel();
  detail::dispatch(
      op, z,
      [&] {
        cuda::dropout_forward(activation, z.data<float>(), out.data<float>(), n,
                              static_cast<float>(alpha), math::dropout_scale<float>(mask.p), draws,
                              z.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::dropout_forward(activation, z.data<T>(), out.data<T>(), n, static_cast<T>(alpha),
                             math::dropout_scale<T>(mask.p), draws);
      });
}

void dropout_backward(Activation activation, const Tensor& z, const Tensor& dout, Tensor& dz,
                      const DropoutMask& mask, std::optional<double> alpha_or_default) {
  const double alpha = alpha_or_default.value_or(default_activation_alpha(activation));
  const std::string op = activation_name(activation) + " + dropout backward";
  check_elementwise(op, activation);
  detail::check_float(op, "dout", dout);
  detail::check_like(op, "dz (like dout)", dz, dout);
  // The fused backward reads z when the derivative reads anything (the output is recomputed).
  const bool uses_z =
      activation_backward_uses_input(activation) || activation_backward_uses_output(activation);
  if (uses_z || z.defined()) detail::check_like(op, "z (like dout)", z, dout);
  const math::DropoutDraws draws = draws_of(op, mask, dout);
  const int64_t n = dout.numel();
  auto input = [&](auto zero) { return uses_z ? z.data<decltype(zero)>() : nullptr; };
  detail::dispatch(
      op, dout,
      [&] {
        cuda::dropout_backward(activation, input(float{}), dout.data<float>(), dz.data<float>(), n,
                               static_cast<float>(alpha), math::dropout_scale<float>(mask.p), draws,
                               dout.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::dropout_backward(activation, input(zero), dout.data<T>(), dz.data<T>(), n,
                              static_cast<T>(alpha), math::dropout_scale<T>(mask.p), draws);
      });
}

}  // namespace mlpx
