// Dropout on the CPU: PyTorch's scaling rule bit for bit (numbers printed by
// tests/reference/dropout_torch.py from torch's own F.dropout), the keep rate, the preserved
// mean and the independence of the draws, masks as a pure function of (seed, step, layer,
// element), the gradient in float64 against central differences, and the preconditions.
#include "mlpx/dropout.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "math/activation.h"
#include "math/dropout.h"
#include "mlpx/error.h"
#include "test_util.h"

namespace mlpx {
namespace {

// What torch's F.dropout(x, p) keeps for each x of kXs (its random mask aside): x * scale,
// with scale the value its noise tensor holds where it keeps: 1.0f / float(1 - p) in float32
// (at p = 0.021 and 0.111 that differs from float(1 / (1 - p)) in the last bit).
struct TorchKept {
  double p;
  double scale;
  double kept[6];
};
const double kXs[] = {0.1, -1.7, 3.14159, 1e-3, 123.456, 7.0};
// clang-format off
const TorchKept kTorchFloat32[] = {
    {0.021, 0x1.057dc80000000p+0, {0x1.a262da0000000p-4, -0x1.bc89080000000p+0, 0x1.9abfd20000000p+1, 0x1.0bc4640000000p-10, 0x1.f86ab20000000p+6, 0x1.c99c1e0000000p+2}},
    {0.1, 0x1.1c71c80000000p+0, {0x1.c71c740000000p-4, -0x1.e38e3c0000000p+0, 0x1.becdd00000000p+1, 0x1.23456a0000000p-10, 0x1.1258c00000000p+7, 0x1.f1c71e0000000p+2}},
    {0.111, 0x1.1ff6ca0000000p+0, {0x1.ccbe100000000p-4, -0x1.e989f20000000p+0, 0x1.c4551c0000000p+1, 0x1.26e00c0000000p-10, 0x1.15bdc60000000p+7, 0x1.f7efe20000000p+2}},
    {0.2, 0x1.4000000000000p+0, {0x1.0000000000000p-3, -0x1.1000000000000p+1, 0x1.f6a7880000000p+1, 0x1.47ae160000000p-10, 0x1.34a3d80000000p+7, 0x1.1800000000000p+3}},
    {0.25, 0x1.5555560000000p+0, {0x1.1111120000000p-3, -0x1.2222240000000p+1, 0x1.0c15160000000p+2, 0x1.5d867e0000000p-10, 0x1.49374c0000000p+7, 0x1.2aaaac0000000p+3}},
    {0.3, 0x1.6db6dc0000000p+0, {0x1.24924a0000000p-3, -0x1.36db6e0000000p+1, 0x1.1f3b2a0000000p+2, 0x1.767dd00000000p-10, 0x1.60bb400000000p+7, 0x1.4000000000000p+3}},
    {0.5, 0x1.0000000000000p+1, {0x1.99999a0000000p-3, -0x1.b333340000000p+1, 0x1.921fa00000000p+2, 0x1.0624de0000000p-9, 0x1.edd2f20000000p+7, 0x1.c000000000000p+3}},
    {0.7, 0x1.aaaaaa0000000p+1, {0x1.5555560000000p-2, -0x1.6aaaaa0000000p+2, 0x1.4f1a5a0000000p+3, 0x1.b4e81c0000000p-9, 0x1.9b851e0000000p+8, 0x1.7555540000000p+4}},
    {0.9, 0x1.4000000000000p+3, {0x1.0000000000000p+0, -0x1.1000000000000p+4, 0x1.f6a7880000000p+4, 0x1.47ae160000000p-7, 0x1.34a3d80000000p+10, 0x1.1800000000000p+6}},
    {0.99, 0x1.9000000000000p+6, {0x1.4000000000000p+3, -0x1.5400000000000p+7, 0x1.3a28b40000000p+8, 0x1.99999a0000000p-4, 0x1.81ccce0000000p+13, 0x1.5e00000000000p+9}},
};
const TorchKept kTorchFloat64[] = {
    {0.021, 0x1.057dc6feb14a8p+0, {0x1.a262d7fde8774p-4, -0x1.bc89057dc6feap+0, 0x1.9abfcf21ebaffp+1, 0x1.0bc4614657569p-10, 0x1.f86ab03ec206cp+6, 0x1.c99c1c3db6426p+2}},
    {0.1, 0x1.1c71c71c71c72p+0, {0x1.c71c71c71c71dp-4, -0x1.e38e38e38e38ep+0, 0x1.becdcd1e5b1d0p+1, 0x1.23456789abcdfp-10, 0x1.1258bf258bf26p+7, 0x1.f1c71c71c71c8p+2}},
    {0.111, 0x1.1ff6c8ffb6480p+0, {0x1.ccbe0e65f0734p-4, -0x1.e989ef4c4f7a6p+0, 0x1.c4551960196edp+1, 0x1.26e009370049cp-10, 0x1.15bdc4adee257p+7, 0x1.f7efdfbf7efe0p+2}},
    {0.2, 0x1.4000000000000p+0, {0x1.0000000000000p-3, -0x1.1000000000000p+1, 0x1.f6a786c22680ap+1, 0x1.47ae147ae147bp-10, 0x1.34a3d70a3d70ap+7, 0x1.1800000000000p+3}},
    {0.25, 0x1.5555555555555p+0, {0x1.1111111111111p-3, -0x1.2222222222222p+1, 0x1.0c1514abd0449p+2, 0x1.5d867c3ece2a5p-10, 0x1.49374bc6a7efap+7, 0x1.2aaaaaaaaaaaap+3}},
    {0.3, 0x1.6db6db6db6db7p+0, {0x1.2492492492493p-3, -0x1.36db6db6db6dbp+1, 0x1.1f3b286ef16e1p+2, 0x1.767dce434a9b1p-10, 0x1.60bb3ee721a55p+7, 0x1.4000000000000p+3}},
    {0.5, 0x1.0000000000000p+1, {0x1.999999999999ap-3, -0x1.b333333333333p+1, 0x1.921f9f01b866ep+2, 0x1.0624dd2f1a9fcp-9, 0x1.edd2f1a9fbe77p+7, 0x1.c000000000000p+3}},
    {0.7, 0x1.aaaaaaaaaaaaap+1, {0x1.5555555555555p-2, -0x1.6aaaaaaaaaaaap+2, 0x1.4f1a59d6c455bp+3, 0x1.b4e81b4e81b4ep-9, 0x1.9b851eb851eb8p+8, 0x1.7555555555555p+4}},
    {0.9, 0x1.4000000000001p+3, {0x1.0000000000001p+0, -0x1.1000000000001p+4, 0x1.f6a786c22680bp+4, 0x1.47ae147ae147cp-7, 0x1.34a3d70a3d70bp+10, 0x1.1800000000001p+6}},
    {0.99, 0x1.8fffffffffffap+6, {0x1.3fffffffffffcp+3, -0x1.53ffffffffffbp+7, 0x1.3a28b43958101p+8, 0x1.9999999999994p-4, 0x1.81cccccccccc7p+13, 0x1.5dffffffffffbp+9}},
};
// clang-format on

DropoutMask mask_of(double p, uint64_t seed = 3, int64_t step = 0, uint64_t layer = 0) {
  DropoutMask mask;
  mask.p = p;
  mask.seed = seed;
  mask.step = step;
  mask.layer = layer;
  return mask;
}

template <typename T>
void expect_torch_kept_values(const TorchKept& ref) {
  SCOPED_TRACE(::testing::Message() << "p " << ref.p << (sizeof(T) == 4 ? " float32" : " float64"));
  EXPECT_EQ(math::dropout_scale<T>(ref.p), static_cast<T>(ref.scale));
  const int64_t copies = 400, width = std::size(kXs);
  std::vector<T> x;
  for (int64_t r = 0; r < copies; ++r) {
    for (const double v : kXs) x.push_back(static_cast<T>(v));
  }
  const Tensor xt = Tensor::from_vector(x, {copies, width});
  Tensor y(xt.shape(), xt.dtype());
  dropout_forward(Activation::kIdentity, xt, y, mask_of(ref.p));
  const std::vector<T> out = y.to_vector<T>();
  int64_t kept = 0, dropped = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == T(0)) {
      ++dropped;
    } else {
      ++kept;
      ASSERT_EQ(out[i], static_cast<T>(ref.kept[i % width])) << "element " << i;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(dropped, 0);
}

TEST(DropoutNumerics, KeptValuesMatchPyTorchBitForBit) {
  for (const TorchKept& ref : kTorchFloat32) expect_torch_kept_values<float>(ref);
  for (const TorchKept& ref : kTorchFloat64) expect_torch_kept_values<double>(ref);
}

// Over 2^18 ones: the kept fraction is 1 - p, the mean stays 1 (inverted dropout), each of a
// Philox block's four words keeps at the same rate, and neighbours are kept independently
// (both kept at (1 - p)^2). Bounds: 6 standard deviations.
TEST(DropoutNumerics, KeepRateMeanAndIndependence) {
  const int64_t n = int64_t{1} << 18;
  for (const double p : {0.2, 0.5, 0.9}) {
    SCOPED_TRACE(::testing::Message() << "p " << p);
    const Tensor ones = Tensor::from_vector(std::vector<double>(n, 1.0), {n});
    Tensor y({n}, DType::kFloat64);
    dropout_forward(Activation::kIdentity, ones, y, mask_of(p, 11, 5, 2));
    const std::vector<double> out = y.to_vector<double>();
    double sum = 0;
    int64_t kept = 0, pairs = 0, by_word[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < n; ++i) {
      sum += out[i];
      if (out[i] != 0) {
        ++kept;
        ++by_word[i % 4];
        if (i + 1 < n && out[i + 1] != 0) ++pairs;
      }
    }
    const double q = 1 - p, sd = std::sqrt(p * q / n);
    EXPECT_NEAR(static_cast<double>(kept) / n, q, 6 * sd);
    EXPECT_NEAR(sum / n, 1.0, 6 * sd / q);
    for (const int64_t w : by_word) EXPECT_NEAR(4.0 * w / n, q, 6 * 2 * sd);
    EXPECT_NEAR(static_cast<double>(pairs) / (n - 1), q * q,
                6 * std::sqrt(q * q * (1 - q * q) / n) * 2);
  }
}

std::vector<float> drop_ones(const DropoutMask& mask, int64_t rows = 6, int64_t cols = 10) {
  const Tensor ones = Tensor::from_vector(std::vector<float>(rows * cols, 1.0f), {rows, cols});
  Tensor y(ones.shape());
  dropout_forward(Activation::kIdentity, ones, y, mask);
  return y.to_vector<float>();
}

int64_t differences(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += a[i] != b[i];
  return d;
}

TEST(DropoutNumerics, TheMaskIsAFunctionOfSeedStepLayerAndElement) {
  const DropoutMask base = mask_of(0.5, 7, 12, 1);
  const std::vector<float> a = drop_ones(base);
  EXPECT_EQ(drop_ones(base), a);
  DropoutMask other = base;
  other.seed = 8;
  EXPECT_GT(differences(drop_ones(other), a), 10);
  other = base;
  other.step = 13;
  EXPECT_GT(differences(drop_ones(other), a), 10);
  other = base;
  other.layer = 2;
  EXPECT_GT(differences(drop_ones(other), a), 10);
  // The step offset is read from memory and added: step 10 + *offset 2 is step 12.
  other = base;
  other.step = 10;
  other.step_offset = Tensor::from_vector<int32_t>({2}, {1});
  EXPECT_EQ(drop_ones(other), a);
  other.step_offset.data<int32_t>()[0] = 3;
  EXPECT_EQ(drop_ones(other), drop_ones(mask_of(0.5, 7, 13, 1)));
}

// A data-parallel rank drops its rows as the whole batch would: any split of the elements,
// at any offset (not only multiples of a Philox block's four), gives the same bits.
TEST(DropoutNumerics, ASliceAtItsFirstElementDrawsTheWholeBatchsBits) {
  const DropoutMask whole = mask_of(0.3, 2, 4, 0);
  const std::vector<float> all = drop_ones(whole, 1, 61);
  for (const int64_t split : {1, 2, 3, 5, 30, 60}) {
    DropoutMask tail = whole;
    tail.first_element = split;
    std::vector<float> parts = drop_ones(whole, 1, split);
    const std::vector<float> rest = drop_ones(tail, 1, 61 - split);
    parts.insert(parts.end(), rest.begin(), rest.end());
    EXPECT_EQ(parts, all) << "split at " << split;
  }
}

// Every elementwise member of the table (mlpx/enums.h; softmax, rowwise, cannot be fused).
const std::vector<Activation> kElementwise = math::elementwise_activations();

// The fused pass is the activation, then the mask: the mask does not depend on the activation,
// and p = 0 is the activation alone.
TEST(DropoutNumerics, FusedForwardIsTheActivationTimesTheMask) {
  const Shape shape{7, 9};
  const Tensor z = Tensor::from_vector(test::random_values<double>(63, 4, -3, 3), shape);
  const std::vector<float> mask = drop_ones(mask_of(0.4, 1, 2, 3), 7, 9);
  for (const Activation a : kElementwise) {
    SCOPED_TRACE(activation_name(a));
    Tensor f(shape, DType::kFloat64), d(shape, DType::kFloat64), d0(shape, DType::kFloat64);
    activation_forward(a, z, f, 0.2);
    dropout_forward(a, z, d, mask_of(0.4, 1, 2, 3), 0.2);
    dropout_forward(a, z, d0, mask_of(0.0, 1, 2, 3), 0.2);
    EXPECT_EQ(d0.to_vector<double>(), f.to_vector<double>());
    const std::vector<double> fv = f.to_vector<double>(), dv = d.to_vector<double>();
    for (size_t i = 0; i < fv.size(); ++i) {
      EXPECT_EQ(dv[i], fv[i] * (mask[i] != 0 ? math::dropout_scale<double>(0.4) : 0.0)) << i;
    }
    // In place gives the same.
    Tensor inplace = Tensor::from_vector(z.to_vector<double>(), shape);
    dropout_forward(a, inplace, inplace, mask_of(0.4, 1, 2, 3), 0.2);
    EXPECT_EQ(inplace.to_vector<double>(), dv);
  }
}

// As torch's input * noise: a dropped NaN stays NaN, a dropped negative value is -0.
TEST(DropoutNumerics, DroppingMultipliesAsTorchDoes) {
  const int64_t n = 64;
  const std::vector<float> mask = drop_ones(mask_of(0.5), 1, n);
  const Tensor nan = Tensor::from_vector(std::vector<float>(n, NAN), {1, n});
  Tensor y({1, n});
  dropout_forward(Activation::kIdentity, nan, y, mask_of(0.5));
  for (const float v : y.to_vector<float>()) EXPECT_TRUE(std::isnan(v));
  const Tensor neg = Tensor::from_vector(std::vector<float>(n, -2.0f), {1, n});
  dropout_forward(Activation::kIdentity, neg, y, mask_of(0.5));
  const std::vector<float> out = y.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    if (mask[i] == 0) EXPECT_TRUE(out[i] == 0 && std::signbit(out[i])) << i;
  }
}

// Inputs away from relu's kink, where a central difference would straddle it.
std::vector<double> gradient_inputs(size_t n, uint64_t seed) {
  std::vector<double> z = test::random_values<double>(n, seed, -3.0, 3.0);
  for (double& v : z) {
    if (std::abs(v) < 1e-3) v = 0.5;
  }
  return z;
}

// sum_i w_i dropout(f(z))_i differentiated numerically, the mask fixed by its key, against
// dropout_backward(dout = w).
TEST(DropoutNumerics, GradientMatchesCentralDifferences) {
  const Shape shape{5, 7};
  const std::vector<double> z = gradient_inputs(35, 21);
  const std::vector<double> w = test::random_values<double>(35, 22);
  const DropoutMask mask = mask_of(0.3, 9, 4, 1);
  for (const Activation a : kElementwise) {
    SCOPED_TRACE(activation_name(a));
    auto objective = [&](const std::vector<double>& zv) {
      const Tensor zt = Tensor::from_vector(zv, shape);
      Tensor y(shape, DType::kFloat64);
      dropout_forward(a, zt, y, mask, 0.1);
      double s = 0;
      const std::vector<double> yv = y.to_vector<double>();
      for (size_t i = 0; i < yv.size(); ++i) s += w[i] * yv[i];
      return s;
    };
    Tensor dz(shape, DType::kFloat64);
    dropout_backward(a, Tensor::from_vector(z, shape), Tensor::from_vector(w, shape), dz, mask,
                     0.1);
    const std::vector<double> analytic = dz.to_vector<double>();
    EXPECT_TRUE(test::all_close(analytic, test::numeric_gradient(objective, z), test::kGradAtol,
                                test::kGradRtol));
    // Some elements were dropped (their gradient is 0) and some kept.
    int64_t zeros = 0;
    for (const double g : analytic) zeros += g == 0.0;
    EXPECT_GT(zeros, 0);
    EXPECT_LT(zeros, 35);
  }
}

TEST(DropoutNumerics, PreconditionsNameWhatWasExpected) {
  const Tensor z = Tensor::from_vector(std::vector<float>(6, 1.0f), {2, 3});
  Tensor y(z.shape());
  auto message = [&](const DropoutMask& mask, Activation a = Activation::kRelu) {
    try {
      dropout_forward(a, z, y, mask);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(mask_of(1.0)).find("expected a drop probability p in [0, 1), found 1"),
            std::string::npos);
  EXPECT_NE(message(mask_of(-0.1)).find("found -0.1"), std::string::npos);
  EXPECT_NE(message(mask_of(std::nan(""))).find("drop probability"), std::string::npos);
  EXPECT_NE(message(mask_of(0.5), Activation::kSoftmax).find("found softmax"), std::string::npos);
  EXPECT_NE(message(mask_of(0.5, 0, int64_t{1} << 31)).find("expected a step in [0, 2^31)"),
            std::string::npos);
  DropoutMask bad_offset = mask_of(0.5);
  bad_offset.step_offset = Tensor::from_vector<float>({1.0f}, {1});
  EXPECT_NE(message(bad_offset).find("step_offset"), std::string::npos);
  Tensor dz(z.shape());
  EXPECT_THROW(dropout_backward(Activation::kRelu, Tensor(), z, dz, mask_of(0.5)), ShapeError);
  Tensor wrong({3, 2});
  EXPECT_THROW(dropout_forward(Activation::kRelu, z, wrong, mask_of(0.5)), ShapeError);
  // identity's backward reads no z.
  dropout_backward(Activation::kIdentity, Tensor(), z, dz, mask_of(0.5));
}

}  // namespace
}  // namespace mlpx
