// Weight initialisation: the value of element `index` of a weight, as a pure function of
// (seed, stream, index), shared by the CPU loop and the CUDA kernel.
#pragma once

#include <cstdint>

#include "math/hd.h"
#include "math/philox.h"
#include "mlpx/enums.h"

namespace mlpx {

namespace math {

// The columns of the init table (MLPX_INITS in mlpx/enums.h).
enum InitDraw { kNormalDraw, kUniformDraw };
enum InitFan { kNoFan, kGiven, kFanIn, kFanSum };
enum InitBias { kBiasZero, kBiasDrawn };

// One row of the table: s = sqrt(k / fan) is the normal draws' std, the uniform draws' bound.
struct InitRule {
  InitDraw draw;
  InitFan fan;
  double k;
  InitBias bias;
};

MLPX_HD InitRule init_rule(Init init) {
  switch (init) {
#define MLPX_INIT_RULE(kind, name, draw, fan, k, bias) \
  case Init::kind:                                     \
    return InitRule{draw, fan, k, bias};
    MLPX_INITS(MLPX_INIT_RULE)
#undef MLPX_INIT_RULE
  }
  return InitRule{kNormalDraw, kNoFan, 0.0, kBiasZero};
}

MLPX_HD bool init_is_uniform(Init init) { return init_rule(init).draw == kUniformDraw; }

// `scale` is the standard deviation for normal schemes and the bound a for uniform ones.
MLPX_HD double init_value(Init init, double scale, uint64_t seed, uint64_t stream, uint64_t index) {
  if (init == Init::kZeros) return 0.0;
  return init_is_uniform(init) ? uniform_draw(seed, stream, index, scale)
                               : scale * normal_draw(seed, stream, index);
}

}  // namespace math
}  // namespace mlpx
