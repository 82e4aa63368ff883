// Weight initialisation schemes (formulas in src/math/init.h).
#pragma once

#include <cstdint>
#include <string>

#include "mlpx/enums.h"
#include "mlpx/tensor.h"

namespace mlpx {

// The schemes and their names: MLPX_INITS in mlpx/enums.h.
Init parse_init(const std::string& name);
std::string init_name(Init init);

// The standard deviation (normal schemes) or bound a (uniform schemes) that `init` uses for
// a weight with `fan_in` inputs. `param` is the std of kNormal and the a of kUniform; the
// fan-in schemes ignore it.
double init_scale(Init init, int64_t fan_in, double param);

// Fills `weight` (any shape, float32 or float64, any device) with draws of `init`. The
// values depend only on (seed, stream, element index): the same on every backend. Use one
// stream per tensor (the layer index, say).
void init_tensor(Tensor& weight, Init init, int64_t fan_in, double param, uint64_t seed,
                 uint64_t stream);

}  // namespace mlpx
