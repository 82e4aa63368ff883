// GELU, exact (erf, torch.nn.GELU()) and tanh form (torch.nn.GELU(approximate="tanh")), on the
// CPU in float64: forward and backward against PyTorch 1.13's numbers, printed by
// tests/reference/gelu_torch.py, and the backward against central differences. The GPU runs
// both through the table-driven parity tests (tests/parity/activation_parity_test.cpp,
// dropout_parity_test.cpp), which cover every member.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "mlpx/activation.h"
#include "test_util.h"

namespace mlpx {
namespace {

const std::vector<double> kX = {-100.0, -30.0, -5.0, -1.5, -1.0, -0.5, -1e-3, 0.0,
                                1e-3,   0.25,  1.0,  2.5,  6.0,  30.0, 100.0};

struct TorchNumbers {
  Activation activation;
  std::vector<double> y, dx;  // forward, and the backward with dy_i = 0.3 + 0.1 i
};

const TorchNumbers kErf = {
    Activation::kGelu,
    {-0.0, -0.0, -1.4332578593401202e-06, -0.10021080190328704, -0.15865525393145702,
     -0.15426876936299344, -0.000499601057786089, 0.0, 0.000500398942213911, 0.14967658142073093,
     0.841344746068543, 2.4844758366855597, 5.999999994080474, 30.0, 100.0},
    {0.0, -1.768375361854257e-195, -3.5734730009017323e-06, -0.07648151533798778,
     -0.05832082941138044, 0.1060039002750697, 0.4492819041346428, 0.5, 0.5508776727243256,
     0.8344480258603633, 1.4083101117639925, 1.4526555202714033, 1.5000000532030642, 1.6,
     1.7000000000000002}};

const TorchNumbers kTanh = {
    Activation::kGeluTanh,
    {-0.0, -0.0, -2.2917961972623857e-07, -0.10042842301976707, -0.1588080093917233,
     -0.15428599017485606, -0.000499601057786418, 0.0, 0.000500398942213582, 0.149675350701685,
     0.8411919906082768, 2.484915733910001, 5.9999999999156035, 30.0, 100.0},
    {0.0, 0.0, -7.731809939798113e-07, -0.07662647589085986, -0.0580748586920478,
     0.10610407717228612, 0.4492819041358276, 0.5, 0.5508776727228776, 0.8344249141812724,
     1.4078533089995173, 1.4531322066977326, 1.500000001156497, 1.6, 1.7000000000000002}};

std::vector<double> upstream() {
  std::vector<double> dy;
  for (size_t i = 0; i < kX.size(); ++i) dy.push_back(0.3 + 0.1 * static_cast<double>(i));
  return dy;
}

// The same formulas as torch's, up to rounding: relative 1e-13, and an absolute 1e-15 for the
// left tail, where 1 + erf(x / sqrt 2) (or 1 + tanh) cancels to a few ulps of 1.
void expect_close_to_torch(const std::vector<double>& actual, const std::vector<double>& torch) {
  ASSERT_EQ(actual.size(), torch.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], torch[i], 1e-13 * std::abs(torch[i]) + 1e-15) << "x = " << kX[i];
  }
}

TEST(GeluTest, NamesAndFlags) {
  EXPECT_EQ(parse_activation("gelu"), Activation::kGelu);
  EXPECT_EQ(parse_activation("gelu_tanh"), Activation::kGeluTanh);
  EXPECT_EQ(activation_name(Activation::kGelu), "gelu");
  EXPECT_EQ(activation_name(Activation::kGeluTanh), "gelu_tanh");
  for (Activation a : {Activation::kGelu, Activation::kGeluTanh}) {
    EXPECT_FALSE(activation_takes_alpha(a));
    EXPECT_TRUE(activation_backward_uses_input(a));
    EXPECT_FALSE(activation_backward_uses_output(a));
  }
}

TEST(GeluTest, ForwardAndBackwardMatchPyTorchInFloat64) {
  for (const TorchNumbers& torch : {kErf, kTanh}) {
    SCOPED_TRACE(activation_name(torch.activation));
    const Shape shape{static_cast<int64_t>(kX.size())};
    const Tensor x = Tensor::from_vector(kX, shape);
    Tensor y(shape, DType::kFloat64), dx(shape, DType::kFloat64);
    activation_forward(torch.activation, x, y);
    expect_close_to_torch(y.to_vector<double>(), torch.y);
    // The backward reads x alone: y may be left undefined.
    activation_backward(torch.activation, x, Tensor(), Tensor::from_vector(upstream(), shape), dx);
    expect_close_to_torch(dx.to_vector<double>(), torch.dx);
  }
}

// sum_i w_i gelu(x_i) differentiated numerically, float64, over random inputs and points near 0.
TEST(GeluTest, BackwardMatchesCentralDifferences) {
  for (Activation activation : {Activation::kGelu, Activation::kGeluTanh}) {
    SCOPED_TRACE(activation_name(activation));
    std::vector<double> x = test::random_values<double>(40, 7, -6.0, 6.0);
    x[0] = 1e-4;
    x[1] = -1e-4;
    const std::vector<double> w = test::random_values<double>(40, 8);
    const Shape shape{4, 10};
    auto objective = [&](const std::vector<double>& xv) {
      Tensor y(shape, DType::kFloat64);
      activation_forward(activation, Tensor::from_vector(xv, shape), y);
      double s = 0;
      const std::vector<double> yv = y.to_vector<double>();
      for (size_t i = 0; i < yv.size(); ++i) s += w[i] * yv[i];
      return s;
    };
    Tensor dx(shape, DType::kFloat64);
    activation_backward(activation, Tensor::from_vector(x, shape), Tensor(),
                        Tensor::from_vector(w, shape), dx);
    EXPECT_TRUE(test::all_close(dx.to_vector<double>(), test::numeric_gradient(objective, x),
                                test::kGradAtol, test::kGradRtol));
  }
}

}  // namespace
}  // namespace mlpx
