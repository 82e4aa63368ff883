// Launchers of the fused activation + inverted dropout kernels (kernels/dropout.cu). Internal.
#pragma once

#include <cstdint>

#include "math/dropout.h"
#include "mlpx/device.h"
#include "mlpx/enums.h"

namespace mlpx::cuda {

// out = f(z) * factor over n float32 elements (elementwise activations; see
// mlpx/math/dropout.h for the draws). draws.step_offset, when set, is device memory. out may
// equal z.
void dropout_forward(Activation activation, const float* z, float* out, int64_t n, float alpha,
                     float scale, const math::DropoutDraws& draws, Device device);

// dz = f'(z) (dout * factor), the factor regenerated from the same draws. dz may equal dout;
// z may be nullptr for identity.
void dropout_backward(Activation activation, const float* z, const float* dout, float* dz,
                      int64_t n, float alpha, float scale, const math::DropoutDraws& draws,
                      Device device);

}  // namespace mlpx::cuda
