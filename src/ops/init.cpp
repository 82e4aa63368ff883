#include "mlpx/init.h"

#include <cmath>

#include "core/dispatch.h"
#include "core/names.h"
#include "cpu/init.h"
#include "kernels/init.h"
#include "math/init.h"
#include "mlpx/error.h"

namespace mlpx {

Init parse_init(const std::string& name) {
  return detail::parse_enum(detail::kInitNames, name, "init");
}

std::string init_name(Init init) { return detail::enum_name(detail::kInitNames, init); }

double init_scale(Init init, int64_t fan_in, int64_t fan_out, double param) {
  const math::InitRule rule = math::init_rule(init);
  switch (rule.fan) {
    case math::kNoFan:
      return 0.0;
    case math::kGiven:
      MLPX_CHECK(param >= 0 && std::isfinite(param), ValueError, init_name(init),
                 ": expected a finite scale >= 0, found ", param);
      return param;
    case math::kFanIn:
      MLPX_CHECK(fan_in > 0, ValueError, init_name(init), ": expected fan_in > 0, found ", fan_in);
      return std::sqrt(rule.k / static_cast<double>(fan_in));
    case math::kFanSum:
      MLPX_CHECK(fan_in > 0 && fan_out > 0, ValueError, init_name(init),
                 ": expected fan_in > 0 and fan_out > 0, found ", fan_in, " and ", fan_out);
      return std::sqrt(rule.k / static_cast<double>(fan_in + fan_out));
  }
  return 0.0;
}

bool init_draws_bias(Init init) { return math::init_rule(init).bias == math::kBiasDrawn; }

void init_tensor(Tensor& weight, Init init, int64_t fan_in, int64_t fan_out, double param,
                 uint64_t seed, uint64_t stream) {
  const double scale = init_scale(init, fan_in, fan_out, param);
  const int64_t n = weight.numel();
  detail::dispatch(
      "init_tensor", weight,
      [&] {
        cuda::init_values(weight.data<float>(), n, init, scale, seed, stream, weight.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::init_values(weight.data<T>(), n, init, scale, seed, stream);
      });
}

}  // namespace mlpx
