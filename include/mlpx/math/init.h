// Weight initialisation: the value of element `index` of a weight, as a pure function of
// (seed, stream, index), shared by the CPU loop and the CUDA kernel.
#pragma once

#include <cstdint>

#include "mlpx/math/hd.h"
#include "mlpx/math/philox.h"

namespace mlpx {

enum class Init {
  kZeros,
  kNormal,         // N(0, std^2), std given
  kUniform,        // U(-a, a), a given
  kXavierNormal,   // N(0, 1/fan_in)
  kXavierUniform,  // U(-sqrt(3/fan_in), sqrt(3/fan_in)): the same variance
  kHeNormal,       // N(0, 2/fan_in)
  kHeUniform,      // U(-sqrt(6/fan_in), sqrt(6/fan_in))
};

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
