// The Linear layer on the GPU against the CPU in float32 over 60 (batch, in, out) shapes:
// forward, dW, db, dx, add_bias and sum_rows; sum_rows gives the same bits on both backends
// and on every run.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>
#include <vector>

#include "mlpx/activation.h"
#include "mlpx/linear.h"
#include "test_util.h"

namespace mlpx {
namespace {

constexpr double kAtol = 1e-5;
constexpr double kRtol = 1e-4;

// (batch, in, out)
std::vector<std::array<int64_t, 3>> parity_shapes() {
  std::vector<std::array<int64_t, 3>> shapes = {
      {0, 5, 3},    {0, 1, 1},      {1, 1, 1},     {1, 7, 3},      {7, 1, 1},       {7, 3, 1},
      {1, 1025, 2}, {1025, 2, 3},   {3, 257, 5},   {257, 3, 257},  {2, 9, 1025},    {1025, 1, 1},
      {33, 10, 10}, {128, 784, 10}, {513, 31, 17}, {64, 255, 129}, {17, 100, 2049}, {1, 1, 257}};
  std::mt19937_64 gen(77);
  std::uniform_int_distribution<int64_t> batch(1, 300), width(1, 600);
  while (shapes.size() < 60) shapes.push_back({batch(gen), width(gen), width(gen)});
  return shapes;
}

std::vector<float> values(int64_t n, uint64_t seed, double scale) {
  return test::random_values<float>(static_cast<size_t>(n), seed, -scale, scale);
}

TEST(LinearParity, ForwardAndBackwardMatchCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 1;
  for (const auto& [batch, in, out] : parity_shapes()) {
    SCOPED_TRACE(::testing::Message() << "batch " << batch << " in " << in << " out " << out);
    // Weight-sized scales keep fp32 GEMM rounding well inside the tolerance.
    const Tensor x = Tensor::from_vector(values(batch * in, seed++, 1.0), {batch, in});
    const Tensor w = Tensor::from_vector(values(out * in, seed++, 0.1), {out, in});
    const Tensor b = Tensor::from_vector(values(out, seed++, 1.0), {out});
    const Tensor dy = Tensor::from_vector(values(batch * out, seed++, 0.1), {batch, out});

    Tensor y({batch, out}), dw({out, in}), db({out}), dx({batch, in});
    linear_forward(x, w, b, y);
    linear_backward(x, w, dy, dw, db, &dx);

    Tensor y_g({batch, out}, DType::kFloat32, gpu), dw_g({out, in}, DType::kFloat32, gpu),
        db_g({out}, DType::kFloat32, gpu), dx_g({batch, in}, DType::kFloat32, gpu);
    linear_forward(x.to(gpu), w.to(gpu), b.to(gpu), y_g);
    linear_backward(x.to(gpu), w.to(gpu), dy.to(gpu), dw_g, db_g, &dx_g);
    EXPECT_TRUE(test::all_close(y_g.to_vector<float>(), y.to_vector<float>(), kAtol, kRtol)) << "y";
    EXPECT_TRUE(test::all_close(dw_g.to_vector<float>(), dw.to_vector<float>(), kAtol, kRtol))
        << "dW";
    EXPECT_TRUE(test::all_close(db_g.to_vector<float>(), db.to_vector<float>(), kAtol, kRtol))
        << "db";
    EXPECT_TRUE(test::all_close(dx_g.to_vector<float>(), dx.to_vector<float>(), kAtol, kRtol))
        << "dx";
  }
  synchronize(gpu);
}

// The cuBLASLt epilogues (bias, bias+ReLU) against the plain path on the GPU (GEMM, bias
// kernel, ReLU kernel) and the CPU. On the simulator both GEMMs accumulate alike, so fused and
// plain are bit for bit there; a real GPU is held to the CPU tolerance.
TEST(LinearParity, EpilogueMatchesPlainPathAndCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 500;
  const std::array<std::array<int64_t, 3>, 4> shapes = {
      {{1, 1, 1}, {7, 3, 5}, {33, 10, 129}, {5, 257, 3}}};
  for (const LinearEpilogue epilogue : {LinearEpilogue::kBias, LinearEpilogue::kBiasRelu}) {
    for (const auto& [batch, in, out] : shapes) {
      SCOPED_TRACE(::testing::Message() << "relu " << (epilogue == LinearEpilogue::kBiasRelu)
                                        << " batch " << batch << " in " << in << " out " << out);
      const Tensor x = Tensor::from_vector(values(batch * in, seed++, 1.0), {batch, in});
      const Tensor w = Tensor::from_vector(values(out * in, seed++, 0.1), {out, in});
      const Tensor b = Tensor::from_vector(values(out, seed++, 1.0), {out});
      Tensor y_cpu({batch, out});
      linear_forward_epilogue(x, w, b, y_cpu, epilogue);
      Tensor y_plain({batch, out}, DType::kFloat32, gpu),
          y_fused({batch, out}, DType::kFloat32, gpu);
      linear_forward(x.to(gpu), w.to(gpu), b.to(gpu), y_plain);
      if (epilogue == LinearEpilogue::kBiasRelu)
        activation_forward(Activation::kRelu, y_plain, y_plain);
      linear_forward_epilogue(x.to(gpu), w.to(gpu), b.to(gpu), y_fused, epilogue);
      const std::vector<float> fused = y_fused.to_vector<float>();
      EXPECT_TRUE(test::all_close(fused, y_cpu.to_vector<float>(), kAtol, kRtol)) << "vs CPU";
#ifdef MLPX_SIM
      const std::vector<float> plain = y_plain.to_vector<float>();
      EXPECT_EQ(std::memcmp(fused.data(), plain.data(), fused.size() * sizeof(float)), 0);
#endif
      if (epilogue == LinearEpilogue::kBiasRelu) {
        for (const float v : fused) EXPECT_GE(v, 0.0f);
      }
    }
  }
  synchronize(gpu);
}

TEST(LinearParity, AddBiasAndSumRowsMatchCpuBitForBit) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 100;
  for (const auto& [rows, cols, unused] : parity_shapes()) {
    SCOPED_TRACE(::testing::Message() << "[" << rows << ", " << cols << "]");
    const Tensor x = Tensor::from_vector(values(rows * cols, seed++, 0.1), {rows, cols});
    const Tensor bias = Tensor::from_vector(values(cols, seed++, 1.0), {cols});
    Tensor y = x.clone();
    add_bias(y, bias);
    Tensor y_g = x.to(gpu);
    add_bias(y_g, bias.to(gpu));
    EXPECT_TRUE(test::all_close(y_g.to_vector<float>(), y.to_vector<float>(), kAtol, kRtol));

    Tensor sums({cols});
    sum_rows(x, sums);
    Tensor sums_g1({cols}, DType::kFloat32, gpu), sums_g2({cols}, DType::kFloat32, gpu);
    sum_rows(x.to(gpu), sums_g1);
    sum_rows(x.to(gpu), sums_g2);
    const std::vector<float> c = sums.to_vector<float>(), g1 = sums_g1.to_vector<float>(),
                             g2 = sums_g2.to_vector<float>();
    EXPECT_TRUE(test::all_close(g1, c, kAtol, kRtol));
    // One fixed order of additions (mlpx/math/linear.h) on both backends.
    ASSERT_EQ(g1.size(), c.size());
    EXPECT_EQ(std::memcmp(g1.data(), c.data(), c.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(g1.data(), g2.data(), c.size() * sizeof(float)), 0);
  }
}

// A tall input (many rows per column tile) stays deterministic.
TEST(LinearParity, SumRowsTallIsDeterministic) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const int64_t rows = 100003, cols = 77;
  const Tensor x = Tensor::from_vector(values(rows * cols, 5, 3.0), {rows, cols}, gpu);
  Tensor a({cols}, DType::kFloat32, gpu), b({cols}, DType::kFloat32, gpu);
  sum_rows(x, a);
  sum_rows(x, b);
  const std::vector<float> va = a.to_vector<float>(), vb = b.to_vector<float>();
  EXPECT_EQ(std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)), 0);
  Tensor c({cols});
  sum_rows(x.to(Device::cpu()), c);
  EXPECT_TRUE(test::all_close(va, c.to_vector<float>(), 1e-3, kRtol));
}

}  // namespace
}  // namespace mlpx
