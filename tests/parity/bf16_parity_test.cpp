// precision "bf16" on the GPU against the CPU: the rounding kernel bit for bit (NaN,
// infinities, ties and subnormals included), cuBLAS's bf16 GEMM against the CPU's and a
// float64 reference on rounded inputs, and a model's forward and backward.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "mlpx/gemm.h"
#include "mlpx/model.h"
#include "test_util.h"

namespace mlpx {
namespace {

std::vector<uint32_t> bits_of(const std::vector<float>& v) {
  std::vector<uint32_t> out(v.size());
  std::memcpy(out.data(), v.data(), v.size() * sizeof(float));
  return out;
}

TEST(Bf16Parity, RoundingKernelMatchesCpuBitForBit) {
  MLPX_REQUIRE_CUDA();
  // Every 7th sign-exponent-mantissa top half (NaN and infinity ones included), each with the
  // dropped halves that decide a rounding: 56,172 patterns.
  std::vector<uint32_t> patterns;
  for (uint32_t top = 0; top < 0x10000u; top += 7) {
    for (uint32_t low : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu}) {
      patterns.push_back((top << 16) | low);
    }
  }
  for (uint32_t special : {0x7f800000u, 0xff800000u, 0x7f800001u, 0x7fc00000u, 0x7f7fffffu,
                           0x00008000u, 0x00018000u, 0x80000000u}) {
    patterns.push_back(special);
  }
  std::vector<float> values(patterns.size());
  std::memcpy(values.data(), patterns.data(), patterns.size() * sizeof(float));
  const auto n = static_cast<int64_t>(values.size());
  const Tensor x = Tensor::from_vector(values, {n});
  Tensor cpu_out({n}, DType::kFloat32);
  round_to_bf16(x, cpu_out);
  Tensor gpu = x.to(Device::cuda(0));
  round_to_bf16(gpu, gpu);  // in place
  EXPECT_EQ(bits_of(gpu.to_vector<float>()), bits_of(cpu_out.to_vector<float>()));
}

double relative_error(const std::vector<float>& out, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = static_cast<double>(out[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

// The same bf16 products on both devices, summed in different orders (cuBLAS's, OpenBLAS's or
// oneDNN's): float32 rounding apart (near 1e-7), while fp32 on the GPU is bfloat16's rounding
// away (near 1e-3).
TEST(Bf16Parity, GemmMatchesCpuOnEveryTranspose) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const int64_t m = 24, n = 17, k = 160;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(testing::Message() << "ta " << ta << " tb " << tb);
      const Tensor a =
          Tensor::from_vector(test::random_values<float>(m * k, 31),
                              ta ? std::vector<int64_t>{k, m} : std::vector<int64_t>{m, k});
      const Tensor b =
          Tensor::from_vector(test::random_values<float>(k * n, 32),
                              tb ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n});
      Tensor c_cpu({m, n}, DType::kFloat32);
      gemm(a, ta, b, tb, c_cpu, 1.0, 0.0, Precision::kBf16);
      Tensor c_gpu({m, n}, DType::kFloat32, gpu);
      const Tensor a_gpu = a.to(gpu), b_gpu = b.to(gpu);
      gemm(a_gpu, ta, b_gpu, tb, c_gpu, 1.0, 0.0, Precision::kBf16);
      const auto bf16_cpu = c_cpu.to_vector<float>();
      EXPECT_LT(relative_error(c_gpu.to_vector<float>(), bf16_cpu), 1e-6);
      gemm(a_gpu, ta, b_gpu, tb, c_gpu, 1.0, 0.0, Precision::kFp32);
      EXPECT_GT(relative_error(c_gpu.to_vector<float>(), bf16_cpu), 1e-4);
    }
  }
}

TEST(Bf16Parity, ModelForwardAndBackwardMatchCpu) {
  MLPX_REQUIRE_CUDA();
  Sequential cpu(20,
                 {{33, Activation::kRelu}, {17, Activation::kTanh}, {5, Activation::kIdentity}});
  cpu.init(Init::kHeNormal, 0, 9);
  cpu.set_precision(Precision::kBf16);
  Sequential gpu = cpu.to(Device::cuda(0));
  ASSERT_EQ(gpu.precision(), Precision::kBf16);
  const Tensor x = Tensor::from_vector(test::random_values<float>(32 * 20, 3), {32, 20});
  const Tensor dy = Tensor::from_vector(test::random_values<float>(32 * 5, 4), {32, 5});
  EXPECT_TRUE(test::all_close(gpu.forward(x.to(Device::cuda(0))).to_vector<float>(),
                              cpu.forward(x).to_vector<float>(), 1e-5, 1e-4));
  cpu.backward(dy);
  gpu.backward(dy.to(Device::cuda(0)));
  EXPECT_TRUE(
      test::all_close(gpu.grads().to_vector<float>(), cpu.grads().to_vector<float>(), 1e-5, 1e-4));
}

}  // namespace
}  // namespace mlpx
