// precision "bf16": the rounding formula against an independent reference (the nearest
// bfloat16 found by exact comparison, not by bit arithmetic), the CPU's bf16 GEMM engines
// against a float64 reference on rounded inputs, and a model's forward and backward against a
// float64 reference that rounds each GEMM's inputs.
#include "math/bf16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "bf16_copy_steps.h"
#include "cpu/activation.h"
#include "cpu/bf16.h"
#include "cpu/gemm.h"
#include "cpu/linear.h"
#include "cpu/onednn.h"
#include "math/activation.h"
#include "mlpx/activation.h"
#include "mlpx/error.h"
#include "mlpx/gemm.h"
#include "mlpx/linear.h"
#include "mlpx/model.h"
#include "mlpx/optimizer.h"
#include "test_util.h"

namespace mlpx {
namespace {

// Each float's bits, with every NaN as the one quiet NaN 0x7fc00000.
std::vector<uint32_t> bits_nan_as_one(const std::vector<float>& values) {
  std::vector<uint32_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isnan(values[i])) {
      bits[i] = 0x7fc00000u;
    } else {
      std::memcpy(&bits[i], &values[i], sizeof(float));
    }
  }
  return bits;
}

// bfloat16 bits, with every NaN (exponent all ones, mantissa not zero) as the one quiet NaN 0x7fc0.
std::vector<uint16_t> bf16_nan_as_one(std::vector<uint16_t> bits) {
  for (uint16_t& b : bits) {
    if ((b & 0x7f80u) == 0x7f80u && (b & 0x007fu) != 0) b = 0x7fc0u;
  }
  return bits;
}

float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

uint32_t to_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// The bfloat16 nearest to x, ties to the even mantissa, found by comparing distances in
// float64 (exact here: both neighbours and x are float32 values within a factor of two).
// NaN: a quiet NaN of x's sign; overflow: IEEE's rule (rounding as if the exponent were
// unbounded, so the neighbour above the largest bfloat16 is 2^128 and it rounds to infinity).
uint16_t nearest_bf16(float x) {
  const uint32_t u = to_bits(x);
  if (std::isnan(x)) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  if (std::isinf(x)) return static_cast<uint16_t>(u >> 16);
  const uint16_t below = static_cast<uint16_t>(u >> 16);    // toward zero
  const uint16_t above = static_cast<uint16_t>(below + 1);  // away from zero (may be infinity)
  const double ax = std::fabs(static_cast<double>(x));
  const double lo = std::fabs(static_cast<double>(from_bits(static_cast<uint32_t>(below) << 16)));
  const double hi =
      (above & 0x7fffu) == 0x7f80u
          ? std::ldexp(1.0, 128)
          : std::fabs(static_cast<double>(from_bits(static_cast<uint32_t>(above) << 16)));
  const double to_lo = ax - lo, to_hi = hi - ax;
  if (to_lo < to_hi) return below;
  if (to_hi < to_lo) return above;
  return (below & 1u) == 0 ? below : above;  // a tie: the even one
}

void expect_rounds_as_reference(uint32_t u) {
  const float x = from_bits(u);
  const uint16_t got = math::bf16_bits(x);
  const uint16_t want = nearest_bf16(x);
  ASSERT_EQ(got, want) << std::hex << "input bits 0x" << u << ": got 0x" << got << ", want 0x"
                       << want;
  // The float form is the same value.
  ASSERT_EQ(to_bits(math::round_to_bf16(x)), static_cast<uint32_t>(want) << 16);
}

// Every sign, exponent and kept mantissa (the top 16 bits: 65536 values, NaN and infinity
// patterns included), each with the dropped halves that decide a rounding: zero, the smallest,
// just below a tie, the tie, just above it, the largest, and random ones: 786,432 patterns.
TEST(Bf16Rounding, MatchesTheNearestEvenBf16OverAStratifiedSample) {
  std::mt19937 rng(7);
  for (uint32_t top = 0; top < 0x10000u; ++top) {
    for (uint32_t low :
         {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu,
          static_cast<uint32_t>(rng() & 0xffffu), static_cast<uint32_t>(rng() & 0xffffu),
          static_cast<uint32_t>(rng() & 0xffffu), static_cast<uint32_t>(rng() & 0xffffu),
          static_cast<uint32_t>(rng() & 0xffffu), static_cast<uint32_t>(rng() & 0xffffu)}) {
      expect_rounds_as_reference((top << 16) | low);
      if (HasFatalFailure()) return;
    }
  }
}

// All 2^32 float32 bit patterns (90 s of CPU time in a Release build): run by hand with
// --gtest_also_run_disabled_tests --gtest_filter='*AllFloat32*'.
TEST(Bf16Rounding, DISABLED_MatchesTheNearestEvenBf16OverAllFloat32BitPatterns) {
  uint32_t u = 0;
  do {
    expect_rounds_as_reference(u);
    if (HasFatalFailure()) return;
  } while (++u != 0);
}

TEST(Bf16Rounding, KeepsInfinitiesAndNansAndRoundsPastTheLargestToInfinity) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(math::round_to_bf16(inf), inf);
  EXPECT_EQ(math::round_to_bf16(-inf), -inf);
  // A signalling NaN whose payload lives in the dropped half stays a NaN (not infinity).
  const float snan = from_bits(0x7f800001u);
  EXPECT_TRUE(std::isnan(math::round_to_bf16(snan)));
  EXPECT_TRUE(std::signbit(math::round_to_bf16(from_bits(0xff800001u))));
  // The largest bfloat16 is 0x7f7f (3.3895e38); float32's largest rounds up to infinity.
  EXPECT_EQ(math::bf16_bits(std::numeric_limits<float>::max()), 0x7f80u);
  EXPECT_EQ(math::bf16_bits(from_bits(0x7f7f7fffu)), 0x7f7fu);
  // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: to even (1); 1 + 3 * 2^-8 goes up to 1 + 2^-6.
  EXPECT_EQ(math::round_to_bf16(1.0f + 0x1p-8f), 1.0f);
  EXPECT_EQ(math::round_to_bf16(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);
  // Subnormals round too (no flush to zero).
  EXPECT_EQ(math::bf16_bits(from_bits(0x00008000u)), 0x0000u);  // a tie: to even, zero
  EXPECT_EQ(math::bf16_bits(from_bits(0x00018000u)), 0x0002u);  // a tie: to even, up
  EXPECT_EQ(math::bf16_bits(from_bits(0x00008001u)), 0x0001u);
}

TEST(Bf16Rounding, TensorEntryRoundsInPlaceAndChecksItsArguments) {
  Tensor x = Tensor::from_vector<float>({1.0f + 0x1p-8f, 3.14159265f, -0.0f, 1e-40f}, {4});
  round_to_bf16(x, x);
  const std::vector<float> got = x.to_vector<float>();
  EXPECT_EQ(got[0], 1.0f);
  EXPECT_EQ(got[1], 3.140625f);
  EXPECT_TRUE(got[2] == 0.0f && std::signbit(got[2]));
  EXPECT_EQ(to_bits(got[3]), static_cast<uint32_t>(math::bf16_bits(1e-40f)) << 16);
  Tensor wrong({4}, DType::kFloat64);
  EXPECT_THROW(round_to_bf16(x, wrong), ShapeError);
}

// c = alpha * op(a) op(b) + beta * c0 in float64 from bf16-rounded a and b (or unrounded).
std::vector<double> reference_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                                   const std::vector<float>& a, const std::vector<float>& b,
                                   double beta, const std::vector<float>& c0, bool round) {
  const auto in = [round](float v) {
    return static_cast<double>(round ? math::round_to_bf16(v) : v);
  };
  std::vector<double> c(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        acc += in(a[ta ? p * m + i : i * k + p]) * in(b[tb ? j * k + p : p * n + j]);
      }
      c[i * n + j] = alpha * acc + beta * c0[i * n + j];
    }
  }
  return c;
}

// One engine against float64 on the rounded inputs (float32 accumulation: near 1e-7), and far
// from the unrounded product (bfloat16's inputs: near 1e-3): the rounding took effect, on every
// transpose and with alpha and beta.
void expect_engine_matches_reference(cpu::Bf16Engine engine) {
  const int64_t m = 37, n = 29, k = 300;
  const auto a = test::random_values<float>(m * k, 11), b = test::random_values<float>(k * n, 12);
  const auto c0 = test::random_values<float>(m * n, 13);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{-0.5f, 2.0f}}) {
        SCOPED_TRACE(testing::Message() << "ta " << ta << " tb " << tb << " alpha " << alpha);
        std::vector<float> c = c0;
        cpu::gemm_bf16(ta, tb, m, n, k, alpha, a.data(), b.data(), beta, c.data(), engine);
        EXPECT_LT(
            test::relative_error(c, reference_gemm(ta, tb, m, n, k, alpha, a, b, beta, c0, true)),
            1e-6);
        EXPECT_GT(
            test::relative_error(c, reference_gemm(ta, tb, m, n, k, alpha, a, b, beta, c0, false)),
            1e-4);
      }
    }
  }
}

TEST(Bf16Gemm, EmulatedEngineMatchesAFloat64ReferenceOnRoundedInputs) {
  expect_engine_matches_reference(cpu::Bf16Engine::kEmulated);
}

TEST(Bf16Gemm, OneDnnEngineMatchesAFloat64ReferenceOnRoundedInputs) {
  if (!cpu::onednn_bf16_available()) {
    GTEST_SKIP() << "no bf16 matmul in oneDNN here: " << cpu_bf16_engine();
  }
  expect_engine_matches_reference(cpu::Bf16Engine::kOneDnn);
}

// The oneDNN engine's call with float32 operands, which any CPU runs: its transposes (memory
// orders), descriptors and handles, everything of the bf16 call but the operands' type.
TEST(Bf16Gemm, OneDnnCallMatchesAFloat64ReferenceWithFloat32Operands) {
  if (cpu::onednn_cpu_isa().rfind("oneDNN ", 0) != 0) {
    GTEST_SKIP() << "built without oneDNN: " << cpu::onednn_cpu_isa();
  }
  const int64_t m = 37, n = 29, k = 300;
  const auto a = test::random_values<float>(m * k, 21), b = test::random_values<float>(k * n, 22);
  const std::vector<float> zeros(static_cast<size_t>(m * n), 0.0f);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(testing::Message() << "ta " << ta << " tb " << tb);
      std::vector<float> c(static_cast<size_t>(m * n), std::nanf(""));
      cpu::onednn_f32_matmul(ta, tb, m, n, k, a.data(), b.data(), c.data());
      EXPECT_LT(
          test::relative_error(c, reference_gemm(ta, tb, m, n, k, 1.0, a, b, 0.0, zeros, false)),
          1e-6);
      // The shape's primitive is kept: a second call of it creates none.
      const int64_t primitives = cpu::onednn_matmul_primitives();
      cpu::onednn_f32_matmul(ta, tb, m, n, k, a.data(), b.data(), c.data());
      EXPECT_EQ(cpu::onednn_matmul_primitives(), primitives);
    }
  }
  const int64_t primitives = cpu::onednn_matmul_primitives();
  std::vector<float> c(static_cast<size_t>(m * (n + 1)));
  const auto b2 = test::random_values<float>(k * (n + 1), 23);
  cpu::onednn_f32_matmul(false, false, m, n + 1, k, a.data(), b2.data(), c.data());
  EXPECT_EQ(cpu::onednn_matmul_primitives(), primitives + 1);  // a new shape: one more
}

TEST(Bf16Gemm, OneDnnEngineOnACpuWithoutOneIsAnError) {
  if (cpu::onednn_bf16_available()) GTEST_SKIP() << "this CPU has oneDNN's bf16 engine";
  const float one = 1.0f;
  float c = 0.0f;
  try {
    cpu::gemm_bf16(false, false, 1, 1, 1, 1.0f, &one, &one, 0.0f, &c, cpu::Bf16Engine::kOneDnn);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("gemm: bf16 through oneDNN"), std::string::npos)
        << e.what();
  }
}

TEST(Bf16Gemm, Float64IsRefused) {
  const Tensor a = Tensor::zeros({2, 2}, DType::kFloat64);
  Tensor c = Tensor::zeros({2, 2}, DType::kFloat64);
  EXPECT_THROW(gemm(a, false, a, false, c, 1.0, 0.0, Precision::kBf16), ValueError);
  Sequential model(2, {{2, Activation::kIdentity}}, DType::kFloat64);
  EXPECT_THROW(model.set_precision(Precision::kBf16), ValueError);
}

// A float32 model in bf16 through forward and backward, against float64 arithmetic that
// rounds the inputs of each of the model's GEMMs to bfloat16 (x W^T, dy^T x, dy W), and keeps
// the rest (biases, tanh, its derivative) unrounded, as the model does; each bias gradient sums
// the bf16 values of its dz, the values its GEMMs read (docs/precision.md).
TEST(Bf16Model, ForwardAndBackwardMatchAFloat64ReferenceWithRoundedGemmInputs) {
  const int64_t batch = 4, inputs = 6, hidden = 5, outputs = 3;
  Sequential model(inputs, {{hidden, Activation::kTanh}, {outputs, Activation::kIdentity}});
  model.init(Init::kLecunNormal, 0, 5);
  model.bias(0).copy_from(
      Tensor::from_vector(test::random_values<float>(hidden, 21, -0.3, 0.3), {hidden}));
  model.bias(1).copy_from(
      Tensor::from_vector(test::random_values<float>(outputs, 22, -0.3, 0.3), {outputs}));
  model.set_precision(Precision::kBf16);
  const auto xv = test::random_values<float>(batch * inputs, 23, -2, 2);
  const auto dyv = test::random_values<float>(batch * outputs, 24);
  const Tensor x = Tensor::from_vector(xv, {batch, inputs});
  const std::vector<float> out = model.forward(x).to_vector<float>();
  model.backward(Tensor::from_vector(dyv, {batch, outputs}));

  const auto w1 = model.weight(0).to_vector<float>(), b1 = model.bias(0).to_vector<float>();
  const auto w2 = model.weight(1).to_vector<float>(), b2 = model.bias(1).to_vector<float>();
  for (bool round : {true, false}) {
    const auto r = [round](double v) {
      return round ? static_cast<double>(math::round_to_bf16(static_cast<float>(v))) : v;
    };
    std::vector<double> h(batch * hidden), y(batch * outputs), dw1(hidden * inputs, 0.0),
        dw2(outputs * hidden, 0.0), dz1(batch * hidden), db1(hidden, 0.0), db2(outputs, 0.0);
    for (int64_t s = 0; s < batch; ++s) {
      for (int64_t j = 0; j < hidden; ++j) {
        double z = b1[j];
        for (int64_t i = 0; i < inputs; ++i) z += r(xv[s * inputs + i]) * r(w1[j * inputs + i]);
        h[s * hidden + j] = std::tanh(z);
      }
      for (int64_t o = 0; o < outputs; ++o) {
        double z = b2[o];
        for (int64_t j = 0; j < hidden; ++j) z += r(h[s * hidden + j]) * r(w2[o * hidden + j]);
        y[s * outputs + o] = z;
      }
      for (int64_t j = 0; j < hidden; ++j) {
        double dh = 0;
        for (int64_t o = 0; o < outputs; ++o) dh += r(dyv[s * outputs + o]) * r(w2[o * hidden + j]);
        dz1[s * hidden + j] = dh * (1 - h[s * hidden + j] * h[s * hidden + j]);
      }
    }
    for (int64_t s = 0; s < batch; ++s) {
      for (int64_t o = 0; o < outputs; ++o)
        for (int64_t j = 0; j < hidden; ++j)
          dw2[o * hidden + j] += r(dyv[s * outputs + o]) * r(h[s * hidden + j]);
      for (int64_t j = 0; j < hidden; ++j)
        for (int64_t i = 0; i < inputs; ++i)
          dw1[j * inputs + i] += r(dz1[s * hidden + j]) * r(xv[s * inputs + i]);
      for (int64_t o = 0; o < outputs; ++o) db2[o] += r(dyv[s * outputs + o]);
      for (int64_t j = 0; j < hidden; ++j) db1[j] += r(dz1[s * hidden + j]);
    }
    const auto got_dw1 = model.weight_grad(0).to_vector<float>();
    const auto got_dw2 = model.weight_grad(1).to_vector<float>();
    if (round) {  // float32 arithmetic around exact bf16 products
      EXPECT_LT(test::relative_error(out, y), 1e-6);
      EXPECT_LT(test::relative_error(got_dw2, dw2), 1e-6);
      EXPECT_LT(test::relative_error(got_dw1, dw1), 1e-6);
      EXPECT_LT(test::relative_error(model.bias_grad(1).to_vector<float>(), db2), 1e-6);
      EXPECT_LT(test::relative_error(model.bias_grad(0).to_vector<float>(), db1), 1e-6);
    } else {  // the unrounded model is bfloat16's rounding away
      EXPECT_GT(test::relative_error(out, y), 1e-4);
      EXPECT_GT(test::relative_error(got_dw1, dw1), 1e-4);
      EXPECT_GT(test::relative_error(model.bias_grad(0).to_vector<float>(), db1), 1e-4);
    }
  }
}

// The bf16 weights the optimizer writes beside its float32 update, against the way before it:
// every GEMM rounding its weight operand itself (linear_forward / linear_backward without a
// copy). Adam steps of a two-layer model: the same float32 parameters bit for bit, and the copy
// is the nearest-even rounding of them.
TEST(Bf16Model, OptimizersBf16CopyTrainsBitForBitAsRoundingEachGemm) {
  const int64_t batch = 4, inputs = 6, hidden = 5, outputs = 3, steps = 5;
  const std::vector<LayerSpec> layers = {{hidden, Activation::kTanh},
                                         {outputs, Activation::kIdentity}};
  Sequential model(inputs, layers), rounding_each_gemm(inputs, layers);
  model.init(Init::kXavierNormal, 0, 5);
  model.set_precision(Precision::kBf16);
  rounding_each_gemm.params().copy_from(model.params());
  const std::vector<float> initial = model.params().to_vector<float>();
  test::step_with_copy_and_rounding_each_gemm(model, rounding_each_gemm, batch, steps);
  const auto got = model.params().to_vector<float>();
  const auto want = rounding_each_gemm.params().to_vector<float>();
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0);
  EXPECT_NE(got, initial);  // the steps moved the parameters
  std::vector<uint16_t> rounded(got.size());
  cpu::round_to_bf16_bits(got.data(), rounded.data(), static_cast<int64_t>(got.size()));
  const uint16_t* copy = model.bf16_params_for_step();  // current: returned as written
  EXPECT_EQ(std::vector<uint16_t>(copy, copy + got.size()), rounded);
}

// The GEMMs read the copy and round no weight themselves: zeroed in the copy, layer 0's
// weight contributes nothing. Any write through params() or weight() makes the model round
// its parameters again before the next forward (init, checkpoint loads, Python's set).
TEST(Bf16Model, GemmsReadTheCopyAndAWriteToTheParametersRefreshesIt) {
  const int64_t batch = 3, inputs = 4, outputs = 2;
  Sequential model(inputs, {{outputs, Activation::kIdentity}});
  model.init(Init::kXavierNormal, 0, 7);
  model.bias(0).copy_from(Tensor::from_vector(std::vector<float>{0.25f, -0.5f}, {outputs}));
  model.set_precision(Precision::kBf16);
  const Tensor x =
      Tensor::from_vector(test::random_values<float>(batch * inputs, 8, -2, 2), {batch, inputs});
  const std::vector<float> before = model.forward(x).to_vector<float>();
  uint16_t* copy = model.bf16_params_for_step();
  std::fill(copy, copy + outputs * inputs, uint16_t{0});  // layer 0's weight, as bits of +0
  const std::vector<float> from_zeroed_copy = model.predict(x).to_vector<float>();
  for (int64_t s = 0; s < batch; ++s) {
    EXPECT_EQ(from_zeroed_copy[s * outputs], 0.25f);
    EXPECT_EQ(from_zeroed_copy[s * outputs + 1], -0.5f);
  }
  // A write through params() (here the same values back): the copy is made again.
  model.params().copy_from(model.params().clone());
  EXPECT_EQ(model.forward(x).to_vector<float>(), before);
  // A write through a weight view: the forward sees the new weight.
  std::fill(copy, copy + outputs * inputs, uint16_t{0});
  model.weight(0).copy_from(
      Tensor::from_vector(std::vector<float>(outputs * inputs, 1.0f), {outputs, inputs}));
  const std::vector<float> ones = model.forward(x).to_vector<float>();
  const auto xv = x.to_vector<float>();
  for (int64_t s = 0; s < batch; ++s) {
    float sum = 0.0f;
    for (int64_t i = 0; i < inputs; ++i) sum += math::round_to_bf16(xv[s * inputs + i]);
    EXPECT_NEAR(ones[s * outputs], sum + 0.25f, 1e-5);
  }
}

// The bf16 step's one pass after a GEMM (bias, activation, the next GEMM's rounding) and its
// backward (activation gradient and rounding) against the separate passes they replace, bit
// for bit, for every member of the activation table: values spanning both signs, zeros, a NaN,
// infinities and rows wider than one parallel chunk (so both threads' parts are compared).
// A NaN's sign and payload are not compared: they follow the order of the operands of the
// operation that met the NaN, which the compiler chooses (silu(NaN) = NaN * sigmoid(NaN) gave
// -NaN in the fused pass and +NaN in the separate one under clang).
TEST(Bf16FusedPass, BiasActivationRoundingMatchesTheSeparatePassesBitForBit) {
  const int64_t rows = 3, cols = 40000;  // 120,000 elements: two chunks of the parallel split
  std::vector<float> z = test::random_values<float>(rows * cols, 51, -6, 6);
  z[0] = 0.0f;
  z[1] = -0.0f;
  z[2] = std::numeric_limits<float>::quiet_NaN();
  z[3] = std::numeric_limits<float>::infinity();
  z[4] = -std::numeric_limits<float>::infinity();
  const std::vector<float> bias = test::random_values<float>(cols, 52, -1, 1);
  const std::vector<float> dy = test::random_values<float>(rows * cols, 53, -3, 3);
  for (Activation activation : math::kActivations) {
    SCOPED_TRACE(activation_name(activation));
    const auto alpha = static_cast<float>(default_activation_alpha(activation));
    // The separate passes: add_bias, activation_forward, the GEMM's rounding of its input.
    std::vector<float> z_want = z, y_want(z.size());
    std::vector<uint16_t> bits_want(z.size());
    cpu::add_bias(z_want.data(), bias.data(), rows, cols);
    cpu::activation_forward(activation, z_want.data(), y_want.data(), rows, cols, alpha);
    cpu::round_to_bf16_bits(y_want.data(), bits_want.data(), rows * cols);
    for (bool with_bias : {true, false}) {
      std::vector<float> z_got = z, y_got(z.size());
      std::vector<uint16_t> bits_got(z.size());
      cpu::bias_activation_round_forward(activation, z_got.data(),
                                         with_bias ? bias.data() : nullptr, y_got.data(),
                                         bits_got.data(), rows, cols, alpha);
      if (with_bias) {
        EXPECT_EQ(bits_nan_as_one(z_got), bits_nan_as_one(z_want));
        EXPECT_EQ(bits_nan_as_one(y_got), bits_nan_as_one(y_want));
        EXPECT_EQ(bf16_nan_as_one(bits_got), bf16_nan_as_one(bits_want));
      } else {
        std::vector<float> y_plain(z.size());
        cpu::activation_forward(activation, z.data(), y_plain.data(), rows, cols, alpha);
        EXPECT_EQ(bits_nan_as_one(z_got), bits_nan_as_one(z));
        EXPECT_EQ(bits_nan_as_one(y_got), bits_nan_as_one(y_plain));
      }
    }
    // In place (y == z), as identity's layers run.
    std::vector<float> in_place = z;
    std::vector<uint16_t> bits_in_place(z.size());
    cpu::bias_activation_round_forward(activation, in_place.data(), bias.data(), in_place.data(),
                                       bits_in_place.data(), rows, cols, alpha);
    EXPECT_EQ(bits_nan_as_one(in_place), bits_nan_as_one(y_want));
    EXPECT_EQ(bf16_nan_as_one(bits_in_place), bf16_nan_as_one(bits_want));

    // Backward: activation_backward, then the rounding each backward GEMM made of dz.
    std::vector<float> dx_want(z.size()), dx_got(z.size());
    std::vector<uint16_t> dbits_want(z.size()), dbits_got(z.size());
    cpu::activation_backward(activation, z_want.data(), y_want.data(), dy.data(), dx_want.data(),
                             rows, cols, alpha);
    cpu::round_to_bf16_bits(dx_want.data(), dbits_want.data(), rows * cols);
    cpu::activation_backward_round(activation, z_want.data(), y_want.data(), dy.data(),
                                   dx_got.data(), dbits_got.data(), rows, cols, alpha);
    EXPECT_EQ(bits_nan_as_one(dx_got), bits_nan_as_one(dx_want));
    EXPECT_EQ(bf16_nan_as_one(dbits_got), bf16_nan_as_one(dbits_want));
    std::vector<float> dx_in_place = dy;  // dx == dy
    cpu::activation_backward_round(activation, z_want.data(), y_want.data(), dx_in_place.data(),
                                   dx_in_place.data(), dbits_got.data(), rows, cols, alpha);
    EXPECT_EQ(bits_nan_as_one(dx_in_place), bits_nan_as_one(dx_want));
    EXPECT_EQ(bf16_nan_as_one(dbits_got), bf16_nan_as_one(dbits_want));
  }
}

// A bf16 model's step through the fused passes (each activation's bits written once and read
// by the GEMMs of both passes) against the unfused op sequence (linear_forward,
// activation_forward, linear_backward, activation_backward, every GEMM rounding its inputs, and
// each bias gradient the row sums of dz rounded to bf16): three layers, so the bits cross from
// layer to layer; the output and every gradient bit for bit.
TEST(Bf16Model, FusedBiasActivationRoundingStepMatchesTheUnfusedOpsBitForBit) {
  const int64_t batch = 5, inputs = 7, outputs = 3;
  for (Activation hidden : {Activation::kRelu, Activation::kGelu, Activation::kSigmoid,
                            Activation::kLeakyRelu, Activation::kIdentity}) {
    SCOPED_TRACE(activation_name(hidden));
    const std::vector<LayerSpec> layers = {
        {6, hidden}, {4, Activation::kTanh}, {outputs, Activation::kIdentity}};
    Sequential model(inputs, layers);
    model.init(Init::kXavierNormal, 0, 9);
    model.params().copy_from(Tensor::from_vector(
        test::random_values<float>(model.num_params(), 61, -0.7, 0.7), {model.num_params()}));
    model.set_precision(Precision::kBf16);
    Sequential reference(inputs, layers);
    reference.params().copy_from(model.params());
    const Tensor x =
        Tensor::from_vector(test::random_values<float>(batch * inputs, 62, -2, 2), {batch, inputs});
    const Tensor dy =
        Tensor::from_vector(test::random_values<float>(batch * outputs, 63), {batch, outputs});
    const std::vector<float> out = model.forward(x).to_vector<float>();
    model.backward(dy);

    std::vector<Tensor> z, a;
    Tensor h = x;
    for (size_t i = 0; i < layers.size(); ++i) {
      z.emplace_back(Shape{batch, layers[i].units});
      a.emplace_back(Shape{batch, layers[i].units});
      linear_forward(h, reference.weight(i), reference.bias(i), z[i], Precision::kBf16);
      activation_forward(layers[i].activation, z[i], a[i], reference.layer(i).alpha);
      h = a[i];
    }
    Tensor upstream = dy;
    for (size_t i = layers.size(); i-- > 0;) {
      Tensor dz(Shape{batch, layers[i].units});
      activation_backward(layers[i].activation, z[i], a[i], upstream, dz, reference.layer(i).alpha);
      Tensor dw = reference.weight_grad(i), db = reference.bias_grad(i);
      Tensor dx(Shape{batch, i == 0 ? inputs : layers[i - 1].units});
      linear_backward(i == 0 ? x : a[i - 1], reference.weight(i), dz, dw, db,
                      i == 0 ? nullptr : &dx, Precision::kBf16);
      Tensor dz_rounded(Shape{batch, layers[i].units});
      round_to_bf16(dz, dz_rounded);
      sum_rows(dz_rounded, db);
      upstream = dx;
    }
    const std::vector<float> want_out = h.to_vector<float>();
    const auto got = model.grads().to_vector<float>();
    const auto want = reference.grads().to_vector<float>();
    ASSERT_EQ(out.size(), want_out.size());
    EXPECT_EQ(std::memcmp(out.data(), want_out.data(), out.size() * sizeof(float)), 0);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0);
    EXPECT_NE(got, std::vector<float>(got.size(), 0.0f));
  }
}

}  // namespace
}  // namespace mlpx
