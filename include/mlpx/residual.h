// The skip connection of a residual layer: out = x + y, elementwise.
#pragma once

#include "mlpx/tensor.h"

namespace mlpx {

// out = x + y; x, y, out of one shape, dtype and device. out may be x or y.
void residual_add(const Tensor& x, const Tensor& y, Tensor& out);

}  // namespace mlpx
