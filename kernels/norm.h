// Launchers of the LayerNorm and BatchNorm kernels (kernels/norm.cu), float32; the CPU twins
// and what each computes: src/cpu/norm.h. Internal.
#pragma once

#include <cstdint>

#include "math/norm.h"
#include "mlpx/device.h"

namespace mlpx::cuda {

void layer_norm_forward(const float* x, const float* weight, const float* bias, float eps, float* y,
                        float* mean, float* rstd, int64_t rows, int64_t cols, Device device);
void layer_norm_input_grad(const float* x, const float* weight, const float* mean,
                           const float* rstd, const float* dy, float* dx, int64_t rows,
                           int64_t cols, Device device);
void norm_column_sum(math::NormColumnTerm term, const math::NormColumnOperands<float>& operands,
                     float scale, float* out, int64_t rows, int64_t cols, Device device);
void batch_norm_apply(const float* x, const float* mean, const float* var, const float* weight,
                      const float* bias, float eps, float* y, int64_t rows, int64_t cols,
                      Device device);
void batch_norm_input_grad(const float* x, const float* dy, const float* mean, const float* var,
                           const float* weight, const float* dweight_sum, const float* dbias_sum,
                           float eps, float inv_count, float* dx, int64_t rows, int64_t cols,
                           Device device);
void batch_norm_update_running(const float* mean, const float* var, float count, float momentum,
                               float* running_mean, float* running_var, float* batches,
                               int64_t cols, Device device);

}  // namespace mlpx::cuda
