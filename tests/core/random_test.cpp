#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "math/init.h"
#include "math/philox.h"
#include "mlpx/error.h"
#include "mlpx/init.h"
#include "test_util.h"

namespace mlpx {
namespace {

// Known-answer vectors published with Random123 (kat_vectors, "philox4x32 10" lines):
// counter[4], key[2] -> output[4].
TEST(Philox, MatchesPublishedKnownAnswers) {
  struct Kat {
    math::Philox4x32 counter;
    uint32_t key0, key1;
    math::Philox4x32 expected;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       0xffffffff,
       0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       0xa4093822,
       0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& kat : kats) {
    const math::Philox4x32 out = math::philox4x32_10(kat.counter, kat.key0, kat.key1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out.v[i], kat.expected.v[i]) << "word " << i;
  }
}

struct Moments {
  double mean, std;
};
Moments moments(const std::vector<double>& v) {
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  return {mean, std::sqrt(var / v.size())};
}

struct InitCase {
  Init init;
  int64_t fan_in;
  double param;
  double expected_std;
};

class InitStatistics : public ::testing::TestWithParam<InitCase> {};

// Mean and std of 200k draws within 5 standard errors of theory, fan-in from the weight's
// column count ([out, in] layout).
TEST_P(InitStatistics, MeanAndStdMatchTheory) {
  const InitCase c = GetParam();
  const int64_t out = 200000 / c.fan_in;
  Tensor w({out, c.fan_in}, DType::kFloat64);
  init_tensor(w, c.init, c.fan_in, out, c.param, /*seed=*/42, /*stream=*/3);
  const auto values = w.to_vector<double>();
  const Moments m = moments(values);
  const double n = static_cast<double>(values.size());
  const double std_error_mean = c.expected_std / std::sqrt(n);
  // Std of the sample std: sigma * sqrt((kurtosis - 1) / (4 n)); kurtosis 3 normal, 1.8 uniform.
  const double std_error_std = c.expected_std * std::sqrt(2.0 / (4 * n));
  EXPECT_NEAR(m.mean, 0.0, 5 * std_error_mean + 1e-300);
  EXPECT_NEAR(m.std, c.expected_std, 5 * std_error_std + 1e-300);
  if (math::init_is_uniform(c.init)) {
    const double a = c.expected_std * std::sqrt(3.0);
    for (double v : values) ASSERT_LE(std::abs(v), a);
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryScheme, InitStatistics,
    ::testing::Values(InitCase{Init::kNormal, 100, 1.0, 1.0},
                      InitCase{Init::kNormal, 100, 0.01, 0.01},
                      InitCase{Init::kUniform, 50, 0.5, 0.5 / std::sqrt(3.0)},
                      // Glorot: fan_out = 200000 / 400 = 500.
                      InitCase{Init::kXavierNormal, 400, 0, std::sqrt(2.0 / 900)},
                      InitCase{Init::kXavierUniform, 400, 0, std::sqrt(2.0 / 900)},
                      InitCase{Init::kLecunNormal, 400, 0, std::sqrt(1.0 / 400)},
                      InitCase{Init::kLecunUniform, 400, 0, std::sqrt(1.0 / 400)},
                      InitCase{Init::kTorchDefault, 400, 0, std::sqrt(1.0 / (3 * 400))},
                      InitCase{Init::kHeNormal, 784, 0, std::sqrt(2.0 / 784)},
                      InitCase{Init::kHeUniform, 784, 0, std::sqrt(2.0 / 784)},
                      InitCase{Init::kZeros, 10, 0, 0.0}));

TEST(Init, FanInChangesTheScale) {
  EXPECT_DOUBLE_EQ(init_scale(Init::kHeNormal, 8, 3, 0), 0.5);
  EXPECT_DOUBLE_EQ(init_scale(Init::kLecunNormal, 16, 3, 0), 0.25);
  EXPECT_DOUBLE_EQ(init_scale(Init::kXavierNormal, 10, 40, 0), 0.2);  // sqrt(2 / 50)
  EXPECT_DOUBLE_EQ(init_scale(Init::kXavierUniform, 10, 2, 0), std::sqrt(0.5));
  EXPECT_DOUBLE_EQ(init_scale(Init::kHeUniform, 6, 3, 0), 1.0);
  EXPECT_DOUBLE_EQ(init_scale(Init::kTorchDefault, 16, 3, 0), 0.25);
  EXPECT_DOUBLE_EQ(init_scale(Init::kNormal, 8, 3, 0.01), 0.01);
  EXPECT_THROW(init_scale(Init::kHeNormal, 0, 3, 0), ValueError);
  EXPECT_THROW(init_scale(Init::kXavierNormal, 4, 0, 0), ValueError);
  EXPECT_THROW(init_scale(Init::kNormal, 8, 3, -1.0), ValueError);
  EXPECT_TRUE(init_draws_bias(Init::kTorchDefault));
  EXPECT_FALSE(init_draws_bias(Init::kHeNormal));
}

// tests/reference/init_torch.py: torch's initialisers on a [300, 200] weight (seed 0): their
// formula's bound or std, the largest |w| and the std of the draws. mlpx's scale is torch's
// formula; mlpx's draws (another generator) have the statistics torch's have.
TEST(Init, ScalesMatchPyTorch) {
  struct TorchRow {
    const char* name;
    double scale, max_abs, std;
  };
  const TorchRow torch_rows[] = {
      {"xavier_uniform", 0.10954451150103323, 0.10954380037341958, 0.06340370810694017},
      {"xavier_normal", 0.06324555320336758, 0.3134736603637444, 0.06341116217799268},
      {"he_uniform", 0.17320508075688773, 0.1732023359304401, 0.09981214421325521},
      {"he_normal", 0.1, 0.4492984000523967, 0.10010286712554259},
      {"torch_default", 0.07071067811865475, 0.07071015418112492, 0.04073986118394521},
  };
  const int64_t fan_in = 200, fan_out = 300;
  for (const TorchRow& row : torch_rows) {
    SCOPED_TRACE(row.name);
    const Init init = parse_init(row.name);
    EXPECT_NEAR(init_scale(init, fan_in, fan_out, 0), row.scale, 1e-15);
    Tensor w({fan_out, fan_in}, DType::kFloat64);
    init_tensor(w, init, fan_in, fan_out, 0, /*seed=*/0, /*stream=*/0);
    const std::vector<double> values = w.to_vector<double>();
    const bool uniform = math::init_is_uniform(init);
    const double theory = uniform ? row.scale / std::sqrt(3.0) : row.scale;
    const double n = static_cast<double>(values.size());
    const double std_error = theory * std::sqrt((uniform ? 0.8 : 2.0) / (4 * n));
    EXPECT_NEAR(moments(values).std, theory, 5 * std_error);
    EXPECT_NEAR(row.std, theory, 5 * std_error);  // torch's draws, the same test
    double max_abs = 0;
    for (double v : values) max_abs = std::max(max_abs, std::abs(v));
    if (uniform) {
      EXPECT_LE(max_abs, row.scale);
      EXPECT_GT(max_abs, 0.999 * row.scale);
      EXPECT_GT(row.max_abs, 0.999 * row.scale);
    }
  }
  // nn.Linear's bias: U(+-1/sqrt(fan_in)) too ("torch_default bias": torch's largest |b| of 300
  // draws is 0.070484607591353 against the bound 0.07071067811865475).
  Tensor b({fan_out}, DType::kFloat64);
  init_tensor(b, Init::kTorchDefault, fan_in, fan_out, 0, 0, 1);
  for (double v : b.to_vector<double>()) EXPECT_LE(std::abs(v), 0.07071067811865475);
  EXPECT_GT(moments(b.to_vector<double>()).std, 0.03);
}

TEST(Init, NamesRoundTrip) {
  for (const char* name :
       {"zeros", "normal", "uniform", "xavier_normal", "xavier_uniform", "he_normal", "he_uniform",
        "lecun_normal", "lecun_uniform", "torch_default"}) {
    EXPECT_EQ(init_name(parse_init(name)), name);
  }
  EXPECT_THROW(parse_init("glorot"), ValueError);
}

TEST(Init, SameSeedSameValuesOtherSeedOrStreamOther) {
  auto draw = [](uint64_t seed, uint64_t stream) {
    Tensor w({16, 8});
    init_tensor(w, Init::kHeNormal, 8, 16, 0, seed, stream);
    return w.to_vector<float>();
  };
  EXPECT_EQ(draw(1, 0), draw(1, 0));
  EXPECT_NE(draw(1, 0), draw(2, 0));
  EXPECT_NE(draw(1, 0), draw(1, 1));
}

TEST(InitCuda, GpuDrawsEqualCpuDraws) {
  MLPX_REQUIRE_CUDA();
  for (Init init : {Init::kNormal, Init::kUniform, Init::kXavierNormal, Init::kHeUniform,
                    Init::kTorchDefault}) {
    Tensor cpu({300, 77});
    Tensor gpu({300, 77}, DType::kFloat32, Device::cuda(0));
    init_tensor(cpu, init, 77, 300, 0.1, 7, 2);
    init_tensor(gpu, init, 77, 300, 0.1, 7, 2);
    // Uniform draws are exact; normal draws go through double log/cos whose last-bit
    // rounding may differ between libm and CUDA's: allow one float ulp.
    EXPECT_TRUE(test::all_close(gpu.to_vector<float>(), cpu.to_vector<float>(), 1e-7, 2e-7))
        << init_name(init);
  }
}

}  // namespace
}  // namespace mlpx
