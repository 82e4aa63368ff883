#include "mlpx/init.h"

#include <cmath>

#include "core/dispatch.h"
#include "core/names.h"
#include "cpu/init.h"
#include "kernels/init.h"
#include "mlpx/error.h"

namespace mlpx {

Init parse_init(const std::string& name) {
  return detail::parse_enum(detail::kInitNames, name, "init");
}

std::string init_name(Init init) { return detail::enum_name(detail::kInitNames, init); }

double init_scale(Init init, int64_t fan_in, double param) {
  const bool uses_fan_in = init == Init::kXavierNormal || init == Init::kXavierUniform ||
                           init == Init::kHeNormal || init == Init::kHeUniform;
  MLPX_CHECK(!uses_fan_in || fan_in > 0, ValueError, init_name(init),
             ": expected fan_in > 0, found ", fan_in);
  const double n = static_cast<double>(fan_in);
  switch (init) {
    case Init::kZeros:
      return 0.0;
    case Init::kNormal:
    case Init::kUniform:
      MLPX_CHECK(param >= 0 && std::isfinite(param), ValueError, init_name(init),
                 ": expected a finite scale >= 0, found ", param);
      return param;
    case Init::kXavierNormal:
      return std::sqrt(1.0 / n);
    case Init::kXavierUniform:
      return std::sqrt(3.0 / n);
    case Init::kHeNormal:
      return std::sqrt(2.0 / n);
    case Init::kHeUniform:
      return std::sqrt(6.0 / n);
  }
  return 0.0;
}

void init_tensor(Tensor& weight, Init init, int64_t fan_in, double param, uint64_t seed,
                 uint64_t stream) {
  const double scale = init_scale(init, fan_in, param);
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
