// Dropout on the GPU against the CPU, float32: the masks bit for bit (identity and relu
// multiply only, so their outputs must be equal exactly; the transcendental activations are
// compared with the usual tolerance, their zeros exactly), over shapes that start and end
// inside a Philox block, with the step read from device memory, in place and out of place.
#include <gtest/gtest.h>

#include <random>
#include <utility>
#include <vector>

#include "math/activation.h"
#include "mlpx/dropout.h"
#include "test_util.h"

namespace mlpx {
namespace {

constexpr double kAtol = 1e-5;
constexpr double kRtol = 1e-4;

// Every elementwise member of the table (mlpx/enums.h; softmax, rowwise, cannot be fused).
const std::vector<Activation> kElementwise = math::elementwise_activations();

bool exact(Activation a) { return a == Activation::kIdentity || a == Activation::kRelu; }

TEST(DropoutParity, ForwardAndBackwardMatchCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {0, 5}, {1, 1}, {1, 3}, {3, 1}, {7, 9}, {33, 10}, {64, 33}, {2, 1025}, {257, 3}};
  const Tensor offset = Tensor::from_vector<int32_t>({3}, {1});
  const Tensor offset_gpu = offset.to(gpu);
  uint64_t seed = 1;
  for (const auto& [rows, cols] : shapes) {
    for (const int64_t first_element : {int64_t{0}, int64_t{1}, int64_t{6}, int64_t{4099}}) {
      const Shape shape{rows, cols};
      const size_t n = static_cast<size_t>(rows * cols);
      const Tensor z = Tensor::from_vector(test::random_values<float>(n, seed++, -4, 4), shape);
      const Tensor dout = Tensor::from_vector(test::random_values<float>(n, seed++), shape);
      const Tensor z_gpu = z.to(gpu), dout_gpu = dout.to(gpu);
      DropoutMask mask;
      mask.p = 0.35;
      mask.seed = seed;
      mask.layer = 2;
      mask.step = 17;
      mask.first_element = first_element;
      DropoutMask mask_gpu = mask;
      mask.step_offset = offset;
      mask_gpu.step_offset = offset_gpu;
      for (const Activation a : kElementwise) {
        SCOPED_TRACE(::testing::Message() << activation_name(a) << " [" << rows << ", " << cols
                                          << "] from element " << first_element);
        Tensor y(shape), dz(shape);
        dropout_forward(a, z, y, mask, 0.05);
        dropout_backward(a, z, dout, dz, mask, 0.05);
        Tensor y_gpu(shape, DType::kFloat32, gpu), dz_gpu(shape, DType::kFloat32, gpu);
        dropout_forward(a, z_gpu, y_gpu, mask_gpu, 0.05);
        dropout_backward(a, z_gpu, dout_gpu, dz_gpu, mask_gpu, 0.05);
        const std::vector<float> y_cpu = y.to_vector<float>(), g_cpu = dz.to_vector<float>();
        const std::vector<float> y_dev = y_gpu.to_vector<float>(),
                                 g_dev = dz_gpu.to_vector<float>();
        if (exact(a)) {
          EXPECT_EQ(y_dev, y_cpu);
          EXPECT_EQ(g_dev, g_cpu);
        } else {
          EXPECT_TRUE(test::all_close(y_dev, y_cpu, kAtol, kRtol));
          EXPECT_TRUE(test::all_close(g_dev, g_cpu, kAtol, kRtol));
          for (size_t i = 0; i < n; ++i) ASSERT_EQ(y_dev[i] == 0.0f, y_cpu[i] == 0.0f) << i;
        }
        // In place: out = z, dz = dout.
        Tensor inplace = z_gpu.clone();
        dropout_forward(a, inplace, inplace, mask_gpu, 0.05);
        EXPECT_TRUE(test::all_close(inplace.to_vector<float>(), y_cpu, kAtol, kRtol));
        Tensor grad_inplace = dout_gpu.clone();
        dropout_backward(a, z_gpu, grad_inplace, grad_inplace, mask_gpu, 0.05);
        EXPECT_TRUE(test::all_close(grad_inplace.to_vector<float>(), g_cpu, kAtol, kRtol));
      }
    }
  }
  synchronize(gpu);
}

// The step offset is read when the kernel runs, not when it is enqueued: changing the device
// word between two launches changes the mask, as a replayed CUDA graph relies on.
TEST(DropoutParity, TheStepOffsetIsReadWhenTheKernelRuns) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const int64_t n = 4096;
  const Tensor ones = Tensor::from_vector(std::vector<float>(n, 1.0f), {n}).to(gpu);
  Tensor offset = Tensor::from_vector<int32_t>({0}, {1}).to(gpu);
  DropoutMask mask;
  mask.p = 0.5;
  mask.step = 4;
  mask.step_offset = offset;
  Tensor a({n}, DType::kFloat32, gpu), b({n}, DType::kFloat32, gpu);
  dropout_forward(Activation::kIdentity, ones, a, mask);
  offset.copy_from(Tensor::from_vector<int32_t>({1}, {1}));
  dropout_forward(Activation::kIdentity, ones, b, mask);
  DropoutMask step5 = mask;
  step5.step = 5;
  step5.step_offset = Tensor();
  Tensor c({n});
  dropout_forward(Activation::kIdentity, ones.to(Device::cpu()), c, step5);
  EXPECT_NE(a.to_vector<float>(), b.to_vector<float>());
  EXPECT_EQ(b.to_vector<float>(), c.to_vector<float>());
}

}  // namespace
}  // namespace mlpx
