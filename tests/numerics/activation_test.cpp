// Activations on the CPU: forward values against direct formulas, backward against central
// differences in float64 (every activation; the full vector-Jacobian product of softmax),
// extreme inputs, in-place use and precondition messages.
#include "mlpx/activation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "math/activation.h"
#include "mlpx/error.h"
#include "test_util.h"

namespace mlpx {
namespace {

// Every member of the table (mlpx/enums.h): a new activation is covered without a new line.
const auto& kAll = math::kActivations;

std::vector<double> forward(Activation a, const std::vector<double>& x, Shape shape, double alpha) {
  const Tensor xt = Tensor::from_vector(x, shape);
  Tensor y(shape, DType::kFloat64);
  activation_forward(a, xt, y, alpha);
  return y.to_vector<double>();
}

std::vector<double> backward(Activation a, const std::vector<double>& x,
                             const std::vector<double>& dy, Shape shape, double alpha) {
  const Tensor xt = Tensor::from_vector(x, shape);
  Tensor y(shape, DType::kFloat64);
  activation_forward(a, xt, y, alpha);
  Tensor dx(shape, DType::kFloat64);
  activation_backward(a, xt, y, Tensor::from_vector(dy, shape), dx, alpha);
  return dx.to_vector<double>();
}

double alpha_for(Activation a) { return a == Activation::kElu ? 0.7 : 0.1; }

// Inputs: random values plus points near the kink at 0 (never exactly on it).
std::vector<double> gradient_inputs(size_t n, uint64_t seed) {
  std::vector<double> x = test::random_values<double>(n, seed, -3.0, 3.0);
  const double near_zero[] = {1e-4, -1e-4, 1e-3, -1e-3, 2e-5, -2e-5, 0.5, -0.5};
  for (size_t i = 0; i < std::size(near_zero) && i < n; ++i) x[i] = near_zero[i];
  return x;
}

class ActivationGradient : public ::testing::TestWithParam<Activation> {};

// sum_i w_i f(x)_i differentiated numerically against activation_backward(dy = w).
TEST_P(ActivationGradient, MatchesCentralDifferences) {
  const Activation a = GetParam();
  const double alpha = alpha_for(a);
  const Shape shape{4, 6};
  const std::vector<double> x = gradient_inputs(24, 11);
  const std::vector<double> w = test::random_values<double>(24, 12);
  auto objective = [&](const std::vector<double>& xv) {
    const std::vector<double> y = forward(a, xv, shape, alpha);
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += w[i] * y[i];
    return s;
  };
  EXPECT_TRUE(test::all_close(backward(a, x, w, shape, alpha), test::numeric_gradient(objective, x),
                              test::kGradAtol, test::kGradRtol))
      << activation_name(a);
}

INSTANTIATE_TEST_SUITE_P(AllActivations, ActivationGradient, ::testing::ValuesIn(kAll),
                         [](const ::testing::TestParamInfo<Activation>& info) {
                           return activation_name(info.param);
                         });

// Softmax: the full Jacobian by central differences, column by column, then dx = J^T dy for
// several dy (a vector-Jacobian product per row).
TEST(ActivationNumerics, SoftmaxBackwardIsTheJacobianProduct) {
  const int64_t rows = 3, cols = 5;
  const Shape shape{rows, cols};
  std::vector<double> x = test::random_values<double>(rows * cols, 21, -4.0, 4.0);
  x[0] = 9.0;  // a near-one probability in row 0, near-zero ones beside it
  std::vector<double> jacobian(rows * cols * cols);  // [row][i][j] = dy_i / dx_j
  for (int64_t j = 0; j < cols; ++j) {
    std::vector<double> plus = x, minus = x;
    for (int64_t r = 0; r < rows; ++r) {
      plus[r * cols + j] += test::kGradEps;
      minus[r * cols + j] -= test::kGradEps;
    }
    const auto yp = forward(Activation::kSoftmax, plus, shape, 0);
    const auto ym = forward(Activation::kSoftmax, minus, shape, 0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < cols; ++i)
        jacobian[(r * cols + i) * cols + j] =
            (yp[r * cols + i] - ym[r * cols + i]) / (2 * test::kGradEps);
  }
  for (uint64_t seed = 0; seed < 4; ++seed) {
    const std::vector<double> dy = test::random_values<double>(rows * cols, 100 + seed);
    std::vector<double> expected(rows * cols, 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j)
        for (int64_t i = 0; i < cols; ++i)
          expected[r * cols + j] += jacobian[(r * cols + i) * cols + j] * dy[r * cols + i];
    EXPECT_TRUE(test::all_close(backward(Activation::kSoftmax, x, dy, shape, 0), expected,
                                test::kGradAtol, test::kGradRtol));
  }
}

TEST(ActivationNumerics, ForwardMatchesDirectFormulas) {
  const std::vector<double> x = test::random_values<double>(40, 31, -5.0, 5.0);
  const Shape shape{5, 8};
  auto expect = [&](Activation a, double alpha, const std::function<double(double)>& f) {
    std::vector<double> expected(x.size());
    for (size_t i = 0; i < x.size(); ++i) expected[i] = f(x[i]);
    EXPECT_TRUE(test::all_close(forward(a, x, shape, alpha), expected, 1e-15, 1e-14))
        << activation_name(a);
  };
  expect(Activation::kIdentity, 0, [](double v) { return v; });
  expect(Activation::kSigmoid, 0, [](double v) { return 1 / (1 + std::exp(-v)); });
  expect(Activation::kTanh, 0, [](double v) { return std::tanh(v); });
  expect(Activation::kRelu, 0, [](double v) { return v > 0 ? v : 0; });
  expect(Activation::kLeakyRelu, 0.2, [](double v) { return v > 0 ? v : 0.2 * v; });
  expect(Activation::kElu, 1.3, [](double v) { return v > 0 ? v : 1.3 * (std::exp(v) - 1); });

  std::vector<double> expected(x.size());
  for (int r = 0; r < 5; ++r) {
    double sum = 0;
    for (int c = 0; c < 8; ++c) sum += std::exp(x[r * 8 + c]);
    for (int c = 0; c < 8; ++c) expected[r * 8 + c] = std::exp(x[r * 8 + c]) / sum;
  }
  EXPECT_TRUE(test::all_close(forward(Activation::kSoftmax, x, shape, 0), expected, 1e-15, 1e-13));
}

TEST(ActivationNumerics, FloatMatchesDouble) {
  const std::vector<double> x = test::random_values<double>(63, 41, -6.0, 6.0);
  const std::vector<double> dy = test::random_values<double>(63, 42);
  const std::vector<float> xf(x.begin(), x.end()), dyf(dy.begin(), dy.end());
  const Shape shape{7, 9};
  for (Activation a : kAll) {
    const Tensor xt = Tensor::from_vector(xf, shape);
    Tensor y(shape), dx(shape);
    activation_forward(a, xt, y, 0.3);
    activation_backward(a, xt, y, Tensor::from_vector(dyf, shape), dx, 0.3);
    EXPECT_TRUE(test::all_close(y.to_vector<float>(), forward(a, x, shape, 0.3), 1e-6, 1e-5))
        << activation_name(a);
    EXPECT_TRUE(test::all_close(dx.to_vector<float>(), backward(a, x, dy, shape, 0.3), 1e-6, 1e-5))
        << activation_name(a);
  }
}

// sigmoid at +-100 (and beyond): no overflow, outputs in [0, 1], finite gradients, in both
// precisions; softmax of logits +-1e4 stays finite.
TEST(ActivationNumerics, ExtremeInputsStayFinite) {
  const std::vector<float> x = {-100.f, 100.f, -1e4f, 1e4f, -88.f, 89.f, 0.f, -1e-30f};
  const Shape shape{2, 4};
  for (Activation a : kAll) {
    if (a == Activation::kIdentity || a == Activation::kRelu || a == Activation::kLeakyRelu)
      continue;
    const Tensor xt = Tensor::from_vector(x, shape);
    Tensor y(shape), dx(shape);
    activation_forward(a, xt, y, 1.0);
    activation_backward(a, xt, y, Tensor::from_vector(std::vector<float>(8, 1.0f), shape), dx, 1.0);
    for (float v : y.to_vector<float>()) EXPECT_TRUE(std::isfinite(v)) << activation_name(a);
    for (float v : dx.to_vector<float>()) EXPECT_TRUE(std::isfinite(v)) << activation_name(a);
  }
  const std::vector<double> xd = {-100.0, 100.0, -1000.0, 1000.0};
  const std::vector<double> y = forward(Activation::kSigmoid, xd, {4}, 0);
  EXPECT_GT(y[0], 0.0);
  EXPECT_LT(y[0], 1e-40);
  EXPECT_EQ(y[1], 1.0);
  EXPECT_EQ(y[2], 0.0);
  EXPECT_EQ(y[3], 1.0);
  for (double v : backward(Activation::kSigmoid, xd, {1, 1, 1, 1}, {4}, 0))
    EXPECT_TRUE(std::isfinite(v));
  // Sigmoid's gradient at -100 is the tiny positive number it should be, not 0 or NaN.
  EXPECT_NEAR(backward(Activation::kSigmoid, {-100.0}, {1.0}, {1}, 0)[0], std::exp(-100.0), 1e-50);
  // Softmax of a row with a huge spread: exact one-hot, no NaN.
  const std::vector<double> s = forward(Activation::kSoftmax, {1e4, -1e4, 0.0}, {1, 3}, 0);
  EXPECT_EQ(s[0], 1.0);
  EXPECT_EQ(s[1], 0.0);
  EXPECT_EQ(s[2], 0.0);
}

TEST(ActivationNumerics, NanPropagates) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (Activation a : kAll) {
    const std::vector<double> y = forward(a, {nan, 1.0}, {1, 2}, 0.1);
    EXPECT_TRUE(std::isnan(y[0])) << activation_name(a);
  }
}

TEST(ActivationNumerics, InPlaceMatchesOutOfPlace) {
  const std::vector<float> x = test::random_values<float>(30, 51, -3.0, 3.0);
  const std::vector<float> dy = test::random_values<float>(30, 52);
  const Shape shape{3, 10};
  for (Activation a : kAll) {
    const Tensor xt = Tensor::from_vector(x, shape);
    Tensor y(shape), dx(shape);
    activation_forward(a, xt, y, 0.1);
    activation_backward(a, xt, y, Tensor::from_vector(dy, shape), dx, 0.1);

    Tensor inplace = Tensor::from_vector(x, shape);
    activation_forward(a, inplace, inplace, 0.1);
    EXPECT_EQ(inplace.to_vector<float>(), y.to_vector<float>()) << activation_name(a);
    Tensor grad = Tensor::from_vector(dy, shape);
    activation_backward(a, xt, y, grad, grad, 0.1);
    EXPECT_EQ(grad.to_vector<float>(), dx.to_vector<float>()) << activation_name(a);
  }
}

// The backward pass needs only what the derivative reads: x for the relu family, y for
// sigmoid, tanh and softmax.
TEST(ActivationNumerics, BackwardReadsOnlyWhatItNeeds) {
  const Shape shape{2, 3};
  const Tensor x = Tensor::from_vector<double>({-1, 2, 3, -4, 5, 0.5}, shape);
  const Tensor dy = Tensor::from_vector<double>({1, 1, 1, 1, 1, 1}, shape);
  Tensor y(shape, DType::kFloat64), dx(shape, DType::kFloat64);
  activation_forward(Activation::kRelu, x, y, 0);
  activation_backward(Activation::kRelu, x, Tensor(), dy, dx);
  EXPECT_EQ(dx.to_vector<double>(), (std::vector<double>{0, 1, 1, 0, 1, 1}));
  activation_forward(Activation::kTanh, x, y, 0);
  activation_backward(Activation::kTanh, Tensor(), y, dy, dx);
  EXPECT_NEAR(dx.to_vector<double>()[1], 1 - std::tanh(2.0) * std::tanh(2.0), 1e-15);
  EXPECT_THROW(activation_backward(Activation::kTanh, x, Tensor(), dy, dx), ShapeError);
  EXPECT_THROW(activation_backward(Activation::kElu, Tensor(), y, dy, dx), ShapeError);
  EXPECT_TRUE(activation_backward_uses_output(Activation::kSoftmax));
  EXPECT_TRUE(activation_backward_uses_output(Activation::kSigmoid));
  EXPECT_FALSE(activation_backward_uses_output(Activation::kRelu));
}

TEST(ActivationNumerics, EmptyTensorsAreFine) {
  for (Activation a : kAll) {
    Tensor x({0, 5}, DType::kFloat64), y({0, 5}, DType::kFloat64);
    activation_forward(a, x, y);
    activation_backward(a, x, y, x, y);
  }
}

TEST(ActivationNumerics, ShapeMismatchNamesBothShapes) {
  const Tensor x = Tensor::zeros({4, 3});
  Tensor y = Tensor::zeros({4, 5});
  try {
    activation_forward(Activation::kRelu, x, y);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("[4, 3]"), std::string::npos) << what;
    EXPECT_NE(what.find("[4, 5]"), std::string::npos) << what;
  }
  Tensor y64 = Tensor::zeros({4, 3}, DType::kFloat64);
  EXPECT_THROW(activation_forward(Activation::kRelu, x, y64), ShapeError);
  Tensor xi = Tensor::zeros({4, 3}, DType::kInt32), yi = Tensor::zeros({4, 3}, DType::kInt32);
  EXPECT_THROW(activation_forward(Activation::kRelu, xi, yi), ShapeError);
  Tensor dx = Tensor::zeros({3, 4});
  EXPECT_THROW(activation_backward(Activation::kRelu, x, x, x, dx), ShapeError);
}

TEST(ActivationNumerics, NamesRoundTrip) {
  for (Activation a : kAll) EXPECT_EQ(parse_activation(activation_name(a)), a);
  try {
    parse_activation("swish");
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("swish"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mlpx
