#include "mlpx/model.h"

#include <gtest/gtest.h>

#include <cmath>

#include "mlpx/error.h"
#include "mlpx/loss.h"
#include "test_util.h"

namespace mlpx {
namespace {

// Batch loss of `model` on (x, target): mean of the row losses.
double batch_loss(Sequential& model, Loss loss, const Tensor& x, const Tensor& target) {
  const Tensor out = model.forward(x);
  Tensor rows({x.rows()}, DType::kFloat64);
  loss_forward_backward(loss, out, target, rows, nullptr);
  double sum = 0;
  for (double v : rows.to_vector<double>()) sum += v;
  return sum / static_cast<double>(x.rows());
}

struct ModelCase {
  Loss loss;
  Activation hidden;
};

class ModelGradient : public ::testing::TestWithParam<ModelCase> {};

// The whole backward pass (every layer's dW and db) against central differences, float64.
TEST_P(ModelGradient, MatchesCentralDifferences) {
  const auto [loss, hidden] = GetParam();
  const int64_t batch = 5, inputs = 4, outputs = 3;
  Sequential model(inputs, {{6, hidden}, {5, hidden}, {outputs, Activation::kIdentity}}, 0.1,
                   DType::kFloat64);
  model.init(Init::kXavierNormal, 0, 3);
  // Non-zero biases so that every parameter matters.
  for (size_t i = 0; i < model.num_layers(); ++i) {
    Tensor b = model.bias(i);
    b.copy_from(
        Tensor::from_vector(test::random_values<double>(b.numel(), 40 + i, -0.5, 0.5), b.shape()));
  }
  const Tensor x =
      Tensor::from_vector(test::random_values<double>(batch * inputs, 1, -2, 2), {batch, inputs});
  Tensor target;
  if (loss_uses_class_labels(loss)) {
    target = Tensor::from_vector<int32_t>({0, 2, 1, 1, 0}, {batch});
  } else {
    auto t = test::random_values<double>(batch * outputs, 2, 0.05, 0.95);
    if (loss == Loss::kKlDiv) {  // probability rows
      for (int64_t r = 0; r < batch; ++r) {
        double s = t[r * 3] + t[r * 3 + 1] + t[r * 3 + 2];
        for (int k = 0; k < 3; ++k) t[r * 3 + k] /= s;
      }
    }
    target = Tensor::from_vector(t, {batch, outputs});
  }
  const Tensor out = model.forward(x);
  Tensor rows({batch}, DType::kFloat64), grad({batch, outputs}, DType::kFloat64);
  loss_forward_backward(loss, out, target, rows, &grad);
  model.backward(grad);
  const std::vector<double> analytic = model.grads().to_vector<double>();

  double* p = model.params().data<double>();
  for (int64_t i = 0; i < model.num_params(); ++i) {
    const double saved = p[i];
    p[i] = saved + test::kGradEps;
    const double up = batch_loss(model, loss, x, target);
    p[i] = saved - test::kGradEps;
    const double down = batch_loss(model, loss, x, target);
    p[i] = saved;
    const double numeric = (up - down) / (2 * test::kGradEps);
    ASSERT_LE(std::abs(analytic[i] - numeric),
              test::kGradAtol + test::kGradRtol * std::abs(numeric))
        << "parameter " << i << ": analytic " << analytic[i] << " numeric " << numeric;
  }
}

INSTANTIATE_TEST_SUITE_P(LossesAndActivations, ModelGradient,
                         ::testing::Values(ModelCase{Loss::kCrossEntropy, Activation::kRelu},
                                           ModelCase{Loss::kCrossEntropy, Activation::kTanh},
                                           ModelCase{Loss::kMse, Activation::kSigmoid},
                                           ModelCase{Loss::kSse, Activation::kLeakyRelu},
                                           ModelCase{Loss::kBce, Activation::kElu},
                                           ModelCase{Loss::kKlDiv, Activation::kRelu}));

TEST(Sequential, ParametersAreViewsOfOneFlatBuffer) {
  Sequential model(
      784, {{256, Activation::kRelu}, {128, Activation::kRelu}, {10, Activation::kIdentity}});
  EXPECT_EQ(model.num_params(), 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  EXPECT_EQ(model.weight(1).shape(), (Shape{128, 256}));
  EXPECT_EQ(model.bias(2).shape(), (Shape{10}));
  EXPECT_EQ(model.weight(1).raw_data(),
            static_cast<float*>(model.params().raw_data()) + 784 * 256 + 256);
  EXPECT_EQ(model.bias_grad(0).raw_data(),
            static_cast<float*>(model.grads().raw_data()) + 784 * 256);
  EXPECT_NE(model.summary().find("total parameters: 235146"), std::string::npos);
}

TEST(Sequential, PredictEqualsForwardAndTouchesNoGradient) {
  Sequential model(6, {{8, Activation::kSigmoid}, {3, Activation::kIdentity}});
  model.init(Init::kHeNormal, 0, 1);
  const Tensor x = Tensor::from_vector(test::random_values<float>(4 * 6, 2), {4, 6});
  const auto predicted = model.predict(x).to_vector<float>();
  EXPECT_EQ(model.forward(x).to_vector<float>(), predicted);
  EXPECT_EQ(model.grads().to_vector<float>(), std::vector<float>(model.num_params(), 0.0f));
}

TEST(Sequential, BatchesOfChangingSizeReuseBuffers) {
  Sequential model(3, {{4, Activation::kRelu}, {2, Activation::kIdentity}});
  model.init(Init::kHeNormal, 0, 1);
  const Tensor big = Tensor::from_vector(test::random_values<float>(10 * 3, 5), {10, 3});
  const auto full = model.predict(big).to_vector<float>();
  model.forward(big);
  const auto part = model.forward(big.rows(0, 3)).to_vector<float>();
  EXPECT_EQ(part, std::vector<float>(full.begin(), full.begin() + 6));
}

TEST(Sequential, RejectsBadShapes) {
  EXPECT_THROW(Sequential(0, {{2, Activation::kRelu}}), ShapeError);
  EXPECT_THROW(Sequential(3, {}), ShapeError);
  EXPECT_THROW(Sequential(3, {{0, Activation::kRelu}}), ShapeError);
  Sequential model(3, {{2, Activation::kRelu}});
  EXPECT_THROW(model.forward(Tensor::zeros({4, 5})), ShapeError);
  EXPECT_THROW(model.backward(Tensor::zeros({4, 2})), ShapeError);  // no forward yet
}

TEST(SequentialCuda, ForwardBackwardMatchCpu) {
  MLPX_REQUIRE_CUDA();
  Sequential cpu(20,
                 {{33, Activation::kRelu}, {17, Activation::kTanh}, {5, Activation::kIdentity}});
  cpu.init(Init::kHeNormal, 0, 9);
  Sequential gpu = cpu.to(Device::cuda(0));
  const Tensor x = Tensor::from_vector(test::random_values<float>(64 * 20, 3), {64, 20});
  const Tensor dy = Tensor::from_vector(test::random_values<float>(64 * 5, 4), {64, 5});
  EXPECT_TRUE(test::all_close(gpu.forward(x.to(Device::cuda(0))).to_vector<float>(),
                              cpu.forward(x).to_vector<float>(), 1e-5, 1e-4));
  cpu.backward(dy);
  gpu.backward(dy.to(Device::cuda(0)));
  EXPECT_TRUE(
      test::all_close(gpu.grads().to_vector<float>(), cpu.grads().to_vector<float>(), 1e-5, 1e-4));
}

}  // namespace
}  // namespace mlpx
