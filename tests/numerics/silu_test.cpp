// SiLU (x sigmoid(x), torch.nn.SiLU) on the CPU in float64: forward and backward against
// PyTorch 1.13's numbers, printed by tests/reference/silu_torch.py, and the backward against
// central differences. The GPU runs it through the table-driven parity tests
// (tests/parity/activation_parity_test.cpp, dropout_parity_test.cpp), which cover every member.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "mlpx/activation.h"
#include "mlpx/dropout.h"
#include "test_util.h"

namespace mlpx {
namespace {

const std::vector<double> kX = {-100.0, -30.0, -5.0, -1.5, -1.0, -0.5, -1e-3, 0.0,
                                1e-3,   0.25,  1.0,  2.5,  6.0,  30.0, 100.0};

// torch.nn.SiLU()(x) and its autograd backward with dy_i = 0.3 + 0.1 i, float64.
const std::vector<double> kTorchY = {-3.720075976020836e-42,
                                     -2.8072868906517896e-12,
                                     -0.03346425462142428,
                                     -0.2736382857095345,
                                     -0.2689414213699951,
                                     -0.1887703343990727,
                                     -0.0004997500000208334,
                                     0.0,
                                     0.0005002499999791667,
                                     0.14054412522144952,
                                     0.7310585786300049,
                                     2.3103545499468914,
                                     5.985164261060192,
                                     29.999999999997197,
                                     100.0};
const std::vector<double> kTorchDx = {
    -1.1048625648781881e-42, -1.0854842643852536e-12, -0.013273716214832958, -0.024776492579485773,
    0.05063064168995928,     0.20803105015787857,     0.449550000075,        0.5,
    0.5505499999083334,      0.7484520258842373,      1.2059716654329329,    1.5391615558781377,
    1.5184896488872877,      1.6000000000043375,      1.7000000000000002};

std::vector<double> upstream() {
  std::vector<double> dy;
  for (size_t i = 0; i < kX.size(); ++i) dy.push_back(0.3 + 0.1 * static_cast<double>(i));
  return dy;
}

// Both within a few ulps of torch's (the two compute sigmoid differently: torch 1 / (1 + e^-x),
// mlpx from e^-|x|, exact for both signs).
void expect_close_to_torch(const std::vector<double>& actual, const std::vector<double>& torch) {
  ASSERT_EQ(actual.size(), torch.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], torch[i], 2e-15 * std::abs(torch[i]) + 1e-300) << "x = " << kX[i];
  }
}

TEST(SiluTest, NameAndFlags) {
  EXPECT_EQ(parse_activation("silu"), Activation::kSilu);
  EXPECT_EQ(activation_name(Activation::kSilu), "silu");
  EXPECT_FALSE(activation_takes_alpha(Activation::kSilu));
  EXPECT_TRUE(activation_backward_uses_input(Activation::kSilu));
  EXPECT_FALSE(activation_backward_uses_output(Activation::kSilu));
}

TEST(SiluTest, ForwardAndBackwardMatchPyTorchInFloat64) {
  const Shape shape{static_cast<int64_t>(kX.size())};
  const Tensor x = Tensor::from_vector(kX, shape);
  Tensor y(shape, DType::kFloat64), dx(shape, DType::kFloat64);
  activation_forward(Activation::kSilu, x, y);
  expect_close_to_torch(y.to_vector<double>(), kTorchY);
  // The backward reads x alone: y may be left undefined.
  activation_backward(Activation::kSilu, x, Tensor(), Tensor::from_vector(upstream(), shape), dx);
  expect_close_to_torch(dx.to_vector<double>(), kTorchDx);
}

// sum_i w_i silu(x_i) differentiated numerically, float64, over random inputs and points near 0.
TEST(SiluTest, BackwardMatchesCentralDifferences) {
  std::vector<double> x = test::random_values<double>(40, 7, -6.0, 6.0);
  x[0] = 1e-4;
  x[1] = -1e-4;
  const std::vector<double> w = test::random_values<double>(40, 8);
  const Shape shape{4, 10};
  auto forward = [&](const std::vector<double>& xv) {
    Tensor y(shape, DType::kFloat64);
    activation_forward(Activation::kSilu, Tensor::from_vector(xv, shape), y);
    return y.to_vector<double>();
  };
  auto objective = [&](const std::vector<double>& xv) {
    const std::vector<double> y = forward(xv);
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += w[i] * y[i];
    return s;
  };
  Tensor dx(shape, DType::kFloat64);
  activation_backward(Activation::kSilu, Tensor::from_vector(x, shape), Tensor(),
                      Tensor::from_vector(w, shape), dx);
  EXPECT_TRUE(test::all_close(dx.to_vector<double>(), test::numeric_gradient(objective, x),
                              test::kGradAtol, test::kGradRtol));
}

}  // namespace
}  // namespace mlpx
