#include "mlpx/gemm.h"

#include <type_traits>

#include "core/check.h"
#include "core/dispatch.h"
#include "core/names.h"
#include "cpu/bf16.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "kernels/bf16.h"
#include "kernels/gemm.h"
#include "mlpx/error.h"
#include "ops/gemm_bf16_weight.h"

namespace mlpx {

Precision parse_precision(const std::string& name) {
  return detail::parse_enum(detail::kPrecisionNames, name, "precision");
}

std::string precision_name(Precision precision) {
  return detail::enum_name(detail::kPrecisionNames, precision);
}

void gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor& c,
          double alpha, double beta, Precision precision) {
  detail::check_2d("gemm", "a", a);
  detail::check_2d("gemm", "b", b);
  detail::check_2d("gemm", "c", c);
  MLPX_CHECK(a.dtype() == c.dtype() && b.dtype() == c.dtype() && a.device() == c.device() &&
                 b.device() == c.device(),
             ShapeError, "gemm: expected one dtype and device, found a ", a.describe(), ", b ",
             b.describe(), ", c ", c.describe());
  const int64_t m = transpose_a ? a.cols() : a.rows();
  const int64_t k = transpose_a ? a.rows() : a.cols();
  const int64_t kb = transpose_b ? b.cols() : b.rows();
  const int64_t n = transpose_b ? b.rows() : b.cols();
  MLPX_CHECK(k == kb && c.rows() == m && c.cols() == n, ShapeError, "gemm: expected op(a) [", m,
             ", ", k, "] x op(b) [", k, ", ", n, "] -> c [", m, ", ", n, "], found op(b) [", kb,
             ", ", n, "] and c ", shape_str(c.shape()));
  MLPX_CHECK(precision != Precision::kTf32 || c.device().is_cuda(), ValueError, "gemm: precision ",
             precision_name(precision), " needs a CUDA device, found ", c.describe());
  MLPX_CHECK(precision == Precision::kFp32 || c.dtype() == DType::kFloat32, ValueError,
             "gemm: precision ", precision_name(precision), " rounds float32 inputs, found ",
             c.describe());
  detail::dispatch(
      "gemm", c,
      [&] {
        cuda::gemm(c.device().index, transpose_a, transpose_b, m, n, k, static_cast<float>(alpha),
                   a.data<float>(), b.data<float>(), static_cast<float>(beta), c.data<float>(),
                   precision);
      },
      [&](auto zero) {
        using T = decltype(zero);
        if constexpr (std::is_same_v<T, float>) {
          if (precision == Precision::kBf16) {
            cpu::gemm_bf16(transpose_a, transpose_b, m, n, k, static_cast<float>(alpha),
                           a.data<float>(), b.data<float>(), static_cast<float>(beta),
                           c.data<float>());
            return;
          }
        }
        cpu::gemm<T>(transpose_a, transpose_b, m, n, k, static_cast<T>(alpha), a.data<T>(),
                     b.data<T>(), static_cast<T>(beta), c.data<T>());
      });
}

namespace ops {

void gemm_bf16_weight(const Tensor& a, bool transpose_a, const Tensor& b, const uint16_t* b_bits,
                      bool transpose_b, Tensor& c) {
  gemm_bf16_bits(a, nullptr, transpose_a, b, b_bits, transpose_b, c);
}

void gemm_bf16_bits(const Tensor& a, const uint16_t* a_bits, bool transpose_a, const Tensor& b,
                    const uint16_t* b_bits, bool transpose_b, Tensor& c) {
  if (a_bits == nullptr && b_bits == nullptr) {
    gemm(a, transpose_a, b, transpose_b, c, 1.0, 0.0, Precision::kBf16);
    return;
  }
  detail::check_2d("gemm", "a", a);
  detail::check_2d("gemm", "b", b);
  detail::check_2d("gemm", "c", c);
  MLPX_CHECK(a.dtype() == DType::kFloat32 && b.dtype() == DType::kFloat32 &&
                 c.dtype() == DType::kFloat32 && a.device() == c.device() &&
                 b.device() == c.device(),
             ValueError,
             "gemm: expected float32 tensors on one device beside their bf16 copies, "
             "found a ",
             a.describe(), ", b ", b.describe(), ", c ", c.describe());
  const int64_t m = transpose_a ? a.cols() : a.rows();
  const int64_t k = transpose_a ? a.rows() : a.cols();
  const int64_t kb = transpose_b ? b.cols() : b.rows();
  const int64_t n = transpose_b ? b.rows() : b.cols();
  MLPX_CHECK(k == kb && c.rows() == m && c.cols() == n, ShapeError, "gemm: expected op(a) [", m,
             ", ", k, "] x op(b) [", k, ", ", n, "] -> c [", m, ", ", n, "], found op(b) [", kb,
             ", ", n, "] and c ", shape_str(c.shape()));
  if (c.device().is_cuda()) {
    cuda::gemm_bf16(c.device().index, transpose_a, transpose_b, m, n, k, 1.0f, a.data<float>(),
                    a_bits, b.data<float>(), b_bits, 0.0f, c.data<float>());
    return;
  }
  cpu::gemm_bf16(transpose_a, transpose_b, m, n, k, 1.0f, a.data<float>(), b.data<float>(), 0.0f,
                 c.data<float>(), cpu::Bf16Engine::kBest, b_bits, a_bits);
}

void round_to_bf16_bits(const Tensor& x, uint16_t* bits) {
  MLPX_CHECK(x.dtype() == DType::kFloat32, ValueError,
             "round_to_bf16_bits: expected a float32 tensor, found ", x.describe());
  const float* values = x.data<float>();
  if (x.device().is_cuda()) {
    cuda::round_to_bf16_bits(values, bits, x.numel(), x.device());
    return;
  }
  constexpr int64_t kGrain = 65536;  // elements per chunk, as the bf16 GEMM's input rounding
  cpu::parallel_for(x.numel(), kGrain, [&](int64_t first, int64_t last) {
    cpu::round_to_bf16_bits(values + first, bits + first, last - first);
  });
}

}  // namespace ops

void set_cpu_threads(int threads) {
  MLPX_CHECK(threads >= 1, ValueError, "cpu threads: expected at least 1, found ", threads);
  cpu::set_gemm_threads(threads);
}

int cpu_threads() { return cpu::gemm_threads(); }

}  // namespace mlpx
