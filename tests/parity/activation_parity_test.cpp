// Activations on the GPU against the CPU in float32, forward and backward, over 60 shapes:
// 0 rows, 1 row, 1 column, odd sizes, widths around the block size and the warp/block
// switch (1024, 1025), and wide softmax rows.
#include <gtest/gtest.h>

#include <random>
#include <utility>
#include <vector>

#include "math/activation.h"
#include "mlpx/activation.h"
#include "test_util.h"

namespace mlpx {
namespace {

constexpr double kAtol = 1e-5;
constexpr double kRtol = 1e-4;

// Every member of the table (mlpx/enums.h): a new activation is covered without a new line.
const auto& kAll = math::kActivations;

std::vector<std::pair<int64_t, int64_t>> parity_shapes() {
  std::vector<std::pair<int64_t, int64_t>> shapes = {
      {0, 5},    {0, 1},    {1, 1},    {1, 7},     {7, 1},    {1, 1025},  {1025, 1},
      {3, 257},  {257, 3},  {2, 1024}, {2, 1025},  {5, 4097}, {1, 20000}, {33, 10},
      {128, 10}, {513, 31}, {65, 255}, {17, 2049}, {1, 256},  {256, 1},   {300, 33}};
  std::mt19937_64 gen(2024);
  std::uniform_int_distribution<int64_t> rows(1, 300), cols(1, 2500);
  while (shapes.size() < 60) shapes.emplace_back(rows(gen), cols(gen));
  return shapes;
}

TEST(ActivationParity, ForwardAndBackwardMatchCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 1;
  for (const auto& [rows, cols] : parity_shapes()) {
    const Shape shape{rows, cols};
    const Tensor x = Tensor::from_vector(
        test::random_values<float>(static_cast<size_t>(rows * cols), seed++, -4.0, 4.0), shape);
    const Tensor dy = Tensor::from_vector(
        test::random_values<float>(static_cast<size_t>(rows * cols), seed++), shape);
    const Tensor x_gpu = x.to(gpu), dy_gpu = dy.to(gpu);
    for (Activation a : kAll) {
      SCOPED_TRACE(::testing::Message()
                   << activation_name(a) << " [" << rows << ", " << cols << "]");
      Tensor y(shape), dx(shape);
      activation_forward(a, x, y, 0.05);
      activation_backward(a, x, y, dy, dx, 0.05);
      Tensor y_gpu(shape, DType::kFloat32, gpu), dx_gpu(shape, DType::kFloat32, gpu);
      activation_forward(a, x_gpu, y_gpu, 0.05);
      activation_backward(a, x_gpu, y_gpu, dy_gpu, dx_gpu, 0.05);
      EXPECT_TRUE(test::all_close(y_gpu.to_vector<float>(), y.to_vector<float>(), kAtol, kRtol));
      EXPECT_TRUE(test::all_close(dx_gpu.to_vector<float>(), dx.to_vector<float>(), kAtol, kRtol));
    }
  }
  synchronize(gpu);
}

// In place on the GPU: y = x and dx = dy give what the out-of-place calls give.
TEST(ActivationParity, InPlaceMatchesOutOfPlace) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{9, 1500}, {40, 7}}) {
    const Shape shape{rows, cols};
    const Tensor x = Tensor::from_vector(
        test::random_values<float>(static_cast<size_t>(rows * cols), 3, -4.0, 4.0), shape, gpu);
    const Tensor dy = Tensor::from_vector(
        test::random_values<float>(static_cast<size_t>(rows * cols), 4), shape, gpu);
    for (Activation a : kAll) {
      SCOPED_TRACE(activation_name(a));
      Tensor y(shape, DType::kFloat32, gpu), dx(shape, DType::kFloat32, gpu);
      activation_forward(a, x, y);
      activation_backward(a, x, y, dy, dx);
      Tensor inplace = x.clone();
      activation_forward(a, inplace, inplace);
      EXPECT_EQ(inplace.to_vector<float>(), y.to_vector<float>());
      Tensor grad = dy.clone();
      activation_backward(a, x, y, grad, grad);
      EXPECT_EQ(grad.to_vector<float>(), dx.to_vector<float>());
    }
  }
}

TEST(ActivationParity, ExtremeInputsStayFinite) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const std::vector<float> values = {-100.f, 100.f, -1e4f, 1e4f, -88.f, 89.f, 0.f, 3.f};
  const Tensor x = Tensor::from_vector(values, {2, 4}, gpu);
  const Tensor ones = Tensor::from_vector(std::vector<float>(8, 1.f), {2, 4}, gpu);
  for (Activation a :
       {Activation::kSigmoid, Activation::kTanh, Activation::kElu, Activation::kSoftmax}) {
    Tensor y({2, 4}, DType::kFloat32, gpu), dx({2, 4}, DType::kFloat32, gpu);
    activation_forward(a, x, y, 1.0);
    activation_backward(a, x, y, ones, dx, 1.0);
    for (float v : y.to_vector<float>()) EXPECT_TRUE(std::isfinite(v)) << activation_name(a);
    for (float v : dx.to_vector<float>()) EXPECT_TRUE(std::isfinite(v)) << activation_name(a);
  }
}

}  // namespace
}  // namespace mlpx
