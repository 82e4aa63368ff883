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
// a weight [fan_out, fan_in]: sqrt(k / fan_in) or sqrt(k / (fan_in + fan_out)) by its row of
// the table. `param` is the std of kNormal and the a of kUniform; the other schemes ignore it.
double init_scale(Init init, int64_t fan_in, int64_t fan_out, double param);

// Whether `init` also draws the biases (torch_default: U(+-1/sqrt(fan_in)), as nn.Linear);
// the other schemes leave them 0.
bool init_draws_bias(Init init);

// Fills `weight` (any shape, float32 or float64, any device) with draws of `init` for a layer
// of `fan_in` inputs and `fan_out` outputs (a bias is drawn at the weight's scale). The values
// depend only on (seed, stream, element index): the same on every backend. Use one stream per
// tensor (the layer index, say).
void init_tensor(Tensor& weight, Init init, int64_t fan_in, int64_t fan_out, double param,
                 uint64_t seed, uint64_t stream);

}  // namespace mlpx
