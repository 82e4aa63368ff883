// CPU loops of the fused activation + inverted dropout (formulas in mlpx/math/dropout.h).
// Internal.
#pragma once

#include <cstdint>

#include "math/dropout.h"
#include "mlpx/enums.h"

namespace mlpx::cpu {

using math::DropoutDraws;

// out = f(z) * factor over n elements (elementwise activations only; softmax is refused by
// the ops entry). out may equal z.
template <typename T>
void dropout_forward(Activation activation, const T* z, T* out, int64_t n, T alpha, T scale,
                     const DropoutDraws& draws);

// dz = f'(z) (dout * factor) over n elements, the factor regenerated from the same draws.
// dz may equal dout.
template <typename T>
void dropout_backward(Activation activation, const T* z, const T* dout, T* dz, int64_t n, T alpha,
                      T scale, const DropoutDraws& draws);

}  // namespace mlpx::cpu
