// Launchers of the activation kernels (kernels/activation.cu). Internal.
#pragma once

#include <cstdint>

#include "mlpx/device.h"
#include "mlpx/enums.h"

namespace mlpx::cuda {

// y = f(x) over [rows, cols] float32 (softmax: over each row). y may equal x.
void activation_forward(Activation activation, const float* x, float* y, int64_t rows, int64_t cols,
                        float alpha, Device device);

// dx = dy * f'(.); x is read by the relu family, y by sigmoid, tanh and softmax; the other
// may be nullptr. dx may equal dy.
void activation_backward(Activation activation, const float* x, const float* y, const float* dy,
                         float* dx, int64_t rows, int64_t cols, float alpha, Device device);

}  // namespace mlpx::cuda
