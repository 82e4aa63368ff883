// The gradient buffer's own formulas (clip_grad_norm's scale), shared by the CPU loop
// (src/cpu/gradients.cpp) and the kernel (kernels/gradients.cu).
#pragma once

#include <cmath>

#include "math/hd.h"

namespace mlpx::math {

// torch.nn.utils.clip_grad_norm_'s factor for a global L2 norm `norm`:
// min(1, max_norm / (norm + 1e-6)). A NaN norm gives NaN, as in PyTorch (never hidden).
MLPX_HD double clip_scale(double norm, double max_norm) {
  const double scale = max_norm / (norm + 1e-6);
  return scale < 1.0 ? scale : (scale >= 1.0 ? 1.0 : scale);
}

}  // namespace mlpx::math
