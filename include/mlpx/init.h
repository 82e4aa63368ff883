// Weight initialisation schemes (formulas in src/math/init.h).
#pragma once

#include <cstdint>
#include <string>

#include "mlpx/tensor.h"

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

// "zeros", "normal", "uniform", "xavier_normal", "xavier_uniform", "he_normal", "he_uniform".
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
