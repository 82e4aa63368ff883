#include "mlpx/init.h"

#include <cmath>

#include "cpu/init.h"
#include "memory.h"
#include "mlpx/error.h"
#if MLPX_WITH_CUDA
#include "cuda/runtime.h"
#include "kernels/init.h"
#endif

namespace mlpx {

namespace {
struct InitName {
  Init init;
  const char* name;
};
constexpr InitName kInitNames[] = {
    {Init::kZeros, "zeros"},
    {Init::kNormal, "normal"},
    {Init::kUniform, "uniform"},
    {Init::kXavierNormal, "xavier_normal"},
    {Init::kXavierUniform, "xavier_uniform"},
    {Init::kHeNormal, "he_normal"},
    {Init::kHeUniform, "he_uniform"},
};
}  // namespace

Init parse_init(const std::string& name) {
  for (const auto& entry : kInitNames) {
    if (name == entry.name) return entry.init;
  }
  throw ValueError(
      "init: expected one of zeros, normal, uniform, xavier_normal, xavier_uniform, "
      "he_normal, he_uniform; found '" +
      name + "'");
}

std::string init_name(Init init) {
  for (const auto& entry : kInitNames) {
    if (init == entry.init) return entry.name;
  }
  return "?";
}

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
  if (weight.device().is_cuda()) {
#if MLPX_WITH_CUDA
    cuda::init_values(weight.data<float>(), n, init, scale, seed, stream,
                      cuda::stream_of(weight.device()));
    return;
#else
    detail::fail_without_cuda("init_tensor");
#endif
  }
  if (weight.dtype() == DType::kFloat64) {
    cpu::init_values(weight.data<double>(), n, init, scale, seed, stream);
  } else {
    cpu::init_values(weight.data<float>(), n, init, scale, seed, stream);
  }
}

}  // namespace mlpx
