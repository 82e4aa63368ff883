// precision "bf16" on the GPU against the CPU: the rounding kernel bit for bit (NaN,
// infinities, ties and subnormals included), and cuBLAS's bf16 GEMM against the CPU's (a
// model's forward and backward: SequentialCuda.ForwardBackwardMatchCpu).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/graph.h"
#include "mlpx/gemm.h"
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
  // dropped halves that decide a rounding: 56,178 patterns, and 8 special ones.
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
      EXPECT_LT(test::relative_error(c_gpu.to_vector<float>(), bf16_cpu), 1e-6);
      gemm(a_gpu, ta, b_gpu, tb, c_gpu, 1.0, 0.0, Precision::kFp32);
      EXPECT_GT(test::relative_error(c_gpu.to_vector<float>(), bf16_cpu), 1e-4);
    }
  }
}

// A captured bf16 GEMM names the context's scratch; a larger bf16 GEMM after the capture (an
// evaluation with bigger batches between two replays of a training step) grows the scratch,
// and the graph must still replay onto memory that exists (the simulator faults on a freed
// allocation) and give the same result.
TEST(Bf16Parity, CapturedGemmReplaysAfterTheScratchGrew) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const int64_t m = 8, n = 6, k = 40;
  const Tensor a = Tensor::from_vector(test::random_values<float>(m * k, 51), {m, k}).to(gpu);
  const Tensor b = Tensor::from_vector(test::random_values<float>(k * n, 52), {k, n}).to(gpu);
  Tensor c({m, n}, DType::kFloat32, gpu);
  gemm(a, false, b, false, c, 1.0, 0.0, Precision::kBf16);  // plain: sizes the scratch
  const auto expected = c.to_vector<float>();
  cuda::StepGraph graph(gpu);
  std::string why;
  ASSERT_TRUE(graph.capture([&] { gemm(a, false, b, false, c, 1.0, 0.0, Precision::kBf16); }, why))
      << why;
  const int64_t big = 96;
  const Tensor x =
      Tensor::from_vector(test::random_values<float>(big * big, 53), {big, big}).to(gpu);
  Tensor y({big, big}, DType::kFloat32, gpu);
  gemm(x, false, x, false, y, 1.0, 0.0, Precision::kBf16);  // grows the scratch
  c.fill_zero();
  graph.launch();
  EXPECT_EQ(c.to_vector<float>(), expected);
}

}  // namespace
}  // namespace mlpx
