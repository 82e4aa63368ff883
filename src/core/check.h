// The preconditions of the Tensor-level ops, one line each at the op's entry. Each throws
// ShapeError "<op>: expected <name> <what>, found <tensor>". Internal.
#pragma once

#include <string_view>

#include "mlpx/tensor.h"

namespace mlpx::detail {

// `t` is defined.
void check_defined(std::string_view op, std::string_view name, const Tensor& t);
// `t` is defined and 2-D.
void check_2d(std::string_view op, std::string_view name, const Tensor& t);
// `t` is float32 on any device, or float64 on the CPU (the kernels are float32).
void check_float(std::string_view op, std::string_view name, const Tensor& t);
// `t` has exactly this shape, dtype and device.
void check_tensor(std::string_view op, std::string_view name, const Tensor& t, const Shape& shape,
                  DType dtype, Device device);
// `t` has `shape` and the dtype and device of `ref`.
void check_tensor(std::string_view op, std::string_view name, const Tensor& t, const Shape& shape,
                  const Tensor& ref);
// `t` has the shape, dtype and device of `ref`.
void check_like(std::string_view op, std::string_view name, const Tensor& t, const Tensor& ref);

}  // namespace mlpx::detail
