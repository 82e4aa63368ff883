#include "core/check.h"

#include "mlpx/error.h"

namespace mlpx::detail {

void check_defined(std::string_view op, std::string_view name, const Tensor& t) {
  MLPX_CHECK(t.defined(), ShapeError, op, ": expected ", name, ", found an undefined tensor");
}

void check_2d(std::string_view op, std::string_view name, const Tensor& t) {
  check_defined(op, name, t);
  MLPX_CHECK(t.dim() == 2, ShapeError, op, ": expected ", name, " to be 2-D, found ", t.describe());
}

void check_float(std::string_view op, std::string_view name, const Tensor& t) {
  check_defined(op, name, t);
  MLPX_CHECK(t.dtype() == DType::kFloat32 || (t.dtype() == DType::kFloat64 && t.device().is_cpu()),
             ShapeError, op, ": expected ", name, " float32 (or float64 on the CPU), found ",
             t.describe());
}

void check_tensor(std::string_view op, std::string_view name, const Tensor& t, const Shape& shape,
                  DType dtype, Device device) {
  check_defined(op, name, t);
  MLPX_CHECK(t.shape() == shape && t.dtype() == dtype && t.device() == device, ShapeError, op,
             ": expected ", name, " ", shape_str(shape), " ", dtype_name(dtype), " ", device.str(),
             ", found ", t.describe());
}

void check_tensor(std::string_view op, std::string_view name, const Tensor& t, const Shape& shape,
                  const Tensor& ref) {
  check_tensor(op, name, t, shape, ref.dtype(), ref.device());
}

void check_like(std::string_view op, std::string_view name, const Tensor& t, const Tensor& ref) {
  check_tensor(op, name, t, ref.shape(), ref.dtype(), ref.device());
}

}  // namespace mlpx::detail
