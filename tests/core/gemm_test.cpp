#include "mlpx/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "mlpx/error.h"
#include "test_util.h"

namespace mlpx {
namespace {

// c = op(a) op(b) by the textbook triple loop, in double.
std::vector<double> naive_gemm(const std::vector<double>& a, bool ta, const std::vector<double>& b,
                               bool tb, int64_t m, int64_t n, int64_t k) {
  std::vector<double> c(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p) {
        const double av = ta ? a[p * m + i] : a[i * k + p];
        const double bv = tb ? b[j * k + p] : b[p * n + j];
        c[i * n + j] += av * bv;
      }
  return c;
}

struct GemmCase {
  int64_t m, n, k;
  bool ta, tb;
};

class GemmTest : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmTest, CpuMatchesNaiveLoop) {
  const auto [m, n, k, ta, tb] = GetParam();
  const auto a = test::random_values<double>(m * k, 1);
  const auto b = test::random_values<double>(k * n, 2);
  const auto expected = naive_gemm(a, ta, b, tb, m, n, k);
  const Shape a_shape = ta ? Shape{k, m} : Shape{m, k};
  const Shape b_shape = tb ? Shape{n, k} : Shape{k, n};

  Tensor c64 = Tensor::zeros({m, n}, DType::kFloat64);
  gemm(Tensor::from_vector(a, a_shape), ta, Tensor::from_vector(b, b_shape), tb, c64);
  EXPECT_TRUE(test::all_close(c64.to_vector<double>(), expected, 1e-12, 1e-12));

  std::vector<float> af(a.begin(), a.end()), bf(b.begin(), b.end());
  Tensor c32 = Tensor::zeros({m, n});
  gemm(Tensor::from_vector(af, a_shape), ta, Tensor::from_vector(bf, b_shape), tb, c32);
  EXPECT_TRUE(test::all_close(c32.to_vector<float>(), expected, 1e-5, 1e-4));
}

TEST_P(GemmTest, GpuMatchesCpu) {
  MLPX_REQUIRE_CUDA();
  const auto [m, n, k, ta, tb] = GetParam();
  const Tensor a =
      Tensor::from_vector(test::random_values<float>(m * k, 3), ta ? Shape{k, m} : Shape{m, k});
  const Tensor b =
      Tensor::from_vector(test::random_values<float>(k * n, 4), tb ? Shape{n, k} : Shape{k, n});
  Tensor c_cpu = Tensor::zeros({m, n});
  gemm(a, ta, b, tb, c_cpu);
  Tensor c_gpu({m, n}, DType::kFloat32, Device::cuda(0));
  gemm(a.to(Device::cuda(0)), ta, b.to(Device::cuda(0)), tb, c_gpu);
  EXPECT_TRUE(test::all_close(c_gpu.to_vector<float>(), c_cpu.to_vector<float>(), 1e-5, 1e-4));
}

// The three products of a Linear layer (y = x W^T; dx = dy W; dW = dy^T x) plus odd sizes.
INSTANTIATE_TEST_SUITE_P(
    LinearShapes, GemmTest,
    ::testing::Values(GemmCase{7, 5, 3, false, true}, GemmCase{7, 3, 5, false, false},
                      GemmCase{5, 3, 7, true, false}, GemmCase{1, 1, 1, false, false},
                      GemmCase{33, 17, 65, true, true}, GemmCase{0, 4, 3, false, true},
                      GemmCase{4, 4, 0, false, false}, GemmCase{128, 10, 256, false, true}),
    [](const ::testing::TestParamInfo<GemmCase>& info) {
      const GemmCase& c = info.param;
      return "m" + std::to_string(c.m) + "n" + std::to_string(c.n) + "k" + std::to_string(c.k) +
             (c.ta ? "_ta" : "") + (c.tb ? "_tb" : "");
    });

TEST(Gemm, AlphaBetaAccumulate) {
  Tensor a = Tensor::from_vector<double>({1, 2, 3, 4}, {2, 2});
  Tensor c = Tensor::from_vector<double>({1, 1, 1, 1}, {2, 2});
  gemm(a, false, a, false, c, 2.0, 1.0);  // c = 2 a a + c
  EXPECT_EQ(c.to_vector<double>(), (std::vector<double>{15, 21, 31, 45}));
}

// k == 1 with beta 0 (a batch-1 weight gradient) skips BLAS for a plain outer product; with
// beta 1 over zeros the same product goes through BLAS. Both must give the same values (== :
// equal bits but for the sign of a zero), in every transpose, with exact zeros of both signs
// among the inputs.
TEST(Gemm, OuterProductGivesBlasBits) {
  const int64_t m = 37, n = 29;
  std::vector<float> a = test::random_values<float>(m, 5), b = test::random_values<float>(n, 6);
  a[3] = 0.0f;
  a[4] = -0.0f;
  b[7] = 0.0f;
  b[8] = -0.0f;
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      for (const double alpha : {1.0, -0.375, 1.0 / 3.0}) {
        const Tensor at = Tensor::from_vector(a, ta ? Shape{1, m} : Shape{m, 1});
        const Tensor bt = Tensor::from_vector(b, tb ? Shape{n, 1} : Shape{1, n});
        Tensor direct = Tensor::from_vector(std::vector<float>(m * n, std::nanf("")), {m, n});
        Tensor blas = Tensor::zeros({m, n});
        gemm(at, ta, bt, tb, direct, alpha, 0.0);
        gemm(at, ta, bt, tb, blas, alpha, 1.0);
        EXPECT_EQ(direct.to_vector<float>(), blas.to_vector<float>())
            << "ta " << ta << " tb " << tb << " alpha " << alpha;
      }
    }
  }
}

// A product below the threading threshold (2^25 multiply-adds; this one is a batch-32 first
// layer, above OpenBLAS's own 2^18) runs on one thread whatever the configured count, so its
// bits do not depend on it (OpenBLAS's threaded sgemm gives other bits), and the configured
// count stays as set.
TEST(Gemm, SmallProductsGiveTheSameBitsAtAnyThreadCount) {
  const int before = cpu_threads();
  const Tensor x = Tensor::from_vector(test::random_values<float>(32 * 784, 7), {32, 784});
  const Tensor w = Tensor::from_vector(test::random_values<float>(256 * 784, 8), {256, 784});
  Tensor one = Tensor::zeros({32, 256}), two = Tensor::zeros({32, 256});
  set_cpu_threads(1);
  gemm(x, false, w, true, one);
  set_cpu_threads(2);
  gemm(x, false, w, true, two);
  EXPECT_EQ(cpu_threads(), 2);
  set_cpu_threads(before);
  EXPECT_EQ(one.to_vector<float>(), two.to_vector<float>());
}

// A product of 512 rows or more and 2^25 multiply-adds or more runs in row blocks of c, each a
// one-thread BLAS call, on mlpx's threads: the bits of one thread's whole call, in every
// transpose, with beta 0 (c's old contents unread) and beta 1, at 1 and 2 threads.
TEST(Gemm, RowBlockedProductsGiveOneThreadsBits) {
  const int before = cpu_threads();
  const int64_t m = 1100, n = 160, k = 200;  // 35.2M multiply-adds: 5 row blocks at 2 threads
  const std::vector<float> av = test::random_values<float>(m * k, 11);
  const std::vector<float> bv = test::random_values<float>(k * n, 12);
  const std::vector<float> cv = test::random_values<float>(m * n, 13);
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      for (const double beta : {0.0, 1.0}) {
        const Tensor a = Tensor::from_vector(av, ta ? Shape{k, m} : Shape{m, k});
        const Tensor b = Tensor::from_vector(bv, tb ? Shape{n, k} : Shape{k, n});
        Tensor one = Tensor::from_vector(cv, {m, n}), two = Tensor::from_vector(cv, {m, n});
        set_cpu_threads(1);
        gemm(a, ta, b, tb, one, 0.5, beta);
        set_cpu_threads(2);
        gemm(a, ta, b, tb, two, 0.5, beta);
        EXPECT_EQ(cpu_threads(), 2);
        const auto one_v = one.to_vector<float>(), two_v = two.to_vector<float>();
        EXPECT_EQ(std::memcmp(one_v.data(), two_v.data(), one_v.size() * sizeof(float)), 0)
            << "ta " << ta << " tb " << tb << " beta " << beta;
        EXPECT_NE(one_v, cv);
      }
    }
  }
  set_cpu_threads(before);
}

TEST(Gemm, ShapeMismatchNamesBothShapes) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5}), c = Tensor::zeros({2, 5});
  try {
    gemm(a, false, b, false, c);
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3] x op(b) [3, 5]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("found op(b) [4, 5]"), std::string::npos) << e.what();
  }
  Tensor d = Tensor::zeros({2, 5}, DType::kFloat64);
  EXPECT_THROW(gemm(a, false, Tensor::zeros({3, 5}), false, d), ShapeError);
}

}  // namespace
}  // namespace mlpx
