// Weight initialisation: the value of element `index` of a weight, as a pure function of
// (seed, stream, index), shared by the CPU loop and the CUDA kernel.
#pragma once

#include <cstdint>

#include "math/hd.h"
#include "math/philox.h"
#include "mlpx/enums.h"

namespace mlpx {

namespace math {

MLPX_HD bool init_is_uniform(Init init) {
  return init == Init::kUniform || init == Init::kXavierUniform || init == Init::kHeUniform;
}

// `scale` is the standard deviation for normal schemes and the bound a for uniform ones.
MLPX_HD double init_value(Init init, double scale, uint64_t seed, uint64_t stream, uint64_t index) {
  if (init == Init::kZeros) return 0.0;
  return init_is_uniform(init) ? uniform_draw(seed, stream, index, scale)
                               : scale * normal_draw(seed, stream, index);
}

}  // namespace math
}  // namespace mlpx
