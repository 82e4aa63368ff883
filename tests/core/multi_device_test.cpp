// Copies between two CUDA devices: each device has its own stream, so a copy must wait for the
// work queued on the source's stream, and the source's later work (a free) for the copy. They
// need two devices: on the GPU simulator ctest runs them with MLPX_SIM_DEVICES=2
// (tests/CMakeLists.txt); elsewhere they skip on a machine with fewer.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "mlpx/activation.h"
#include "mlpx/device.h"
#include "mlpx/tensor.h"
#include "test_util.h"

#if defined(MLPX_SIM)
#include <cuda_runtime_api.h>
#endif

namespace mlpx {
namespace {

#define MLPX_REQUIRE_TWO_CUDA_DEVICES()                                        \
  do {                                                                         \
    MLPX_REQUIRE_CUDA();                                                       \
    if (cuda_device_count() < 2)                                               \
      GTEST_SKIP() << "needs two CUDA devices, found " << cuda_device_count(); \
  } while (0)

// Large enough that, on a GPU, the kernel is still running when the copy is enqueued.
constexpr int64_t kCount = int64_t{1} << 16;

std::vector<float> signed_values() {
  std::vector<float> v(kCount);
  for (int64_t i = 0; i < kCount; ++i) v[i] = static_cast<float>(i % 2 == 0 ? i : -i);
  return v;
}

std::vector<float> relu(std::vector<float> v) {
  for (float& x : v) x = x > 0 ? x : 0.0f;
  return v;
}

TEST(TwoDevices, CopyWaitsForTheKernelWritingItsSource) {
  MLPX_REQUIRE_TWO_CUDA_DEVICES();
  const std::vector<float> values = signed_values();
  Tensor a = Tensor::from_vector(values, {kCount}, Device::cuda(0));
  activation_forward(Activation::kRelu, a, a);  // queued on cuda:0's stream, not waited for
  const Tensor b = a.to(Device::cuda(1));       // enqueued on cuda:1's stream
  EXPECT_EQ(b.to_vector<float>(), relu(values));
  // And back: the copy to cuda:0 waits for cuda:1's work.
  Tensor c = b.clone();
  activation_forward(Activation::kIdentity, b, c);
  EXPECT_EQ(c.to(Device::cuda(0)).to_vector<float>(), relu(values));
}

TEST(TwoDevices, SourceIsFreedOnlyAfterTheCopyHasReadIt) {
  MLPX_REQUIRE_TWO_CUDA_DEVICES();
  const std::vector<float> values = signed_values();
  Tensor b;
  {
    const Tensor a = Tensor::from_vector(values, {kCount}, Device::cuda(0));
    b = a.to(Device::cuda(1));
  }                              // a's memory is freed in the order of cuda:0's stream
  synchronize(Device::cuda(0));  // runs cuda:0's work, the free included, before cuda:1's
  EXPECT_EQ(b.to_vector<float>(), values);
}

TEST(TwoDevices, MemoryHelpersLeaveTheCurrentDeviceAsTheyFoundIt) {
  MLPX_REQUIRE_TWO_CUDA_DEVICES();
#if !defined(MLPX_SIM)
  GTEST_SKIP() << "reads the current device through the GPU simulator's runtime (MLPX_CUDA=SIM)";
#else
  // The caller's current device, cuda:1, survives allocation, fill, copies and frees on cuda:0.
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  {
    const Tensor a = Tensor::zeros({kCount}, DType::kFloat32, Device::cuda(0));
    const Tensor b = a.to(Device::cuda(1));
    EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
    EXPECT_EQ(b.to(Device::cuda(0)).to_vector<float>(), std::vector<float>(kCount, 0.0f));
  }
  synchronize(Device::cuda(0));
  int current = -1;
  ASSERT_EQ(cudaGetDevice(&current), cudaSuccess);
  EXPECT_EQ(current, 1);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
#endif
}

}  // namespace
}  // namespace mlpx
