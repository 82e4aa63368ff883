// Dynamic shared memory (with its opt-in and the racecheck), the device attributes, and the
// warp-level bf16 mma with PTX's fragment layouts (mlpx_sim/shared_memory.h, device_limits.h,
// tensor_core.h). Compiled with the racecheck's instrumentation, as kernels/*.cu are. Includes
// small broken kernels of the fused-MLP kind (a missing barrier between two layers, an operand
// in the wrong fragment register) that the simulator must catch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "cuda_runtime_api.h"
#include "mlpx_sim/device.h"
#include "mlpx_sim/executor.h"
#include "mlpx_sim/launch.h"

namespace {

using mlpx_sim::KernelLaunch;

template <typename... Params, typename... Args>
KernelLaunch make_launch(void (*kernel)(Params...), const char* name, dim3 grid, dim3 block,
                         size_t shared_bytes, Args... args) {
  KernelLaunch launch;
  launch.name = name;
  launch.file = __FILE__;
  launch.line = 1;
  launch.grid = grid;
  launch.block = block;
  launch.shared_bytes = shared_bytes;
  launch.function = reinterpret_cast<const void*>(kernel);
  launch.body = [kernel, params = std::make_tuple(static_cast<Params>(args)...)]() {
    std::apply(kernel, params);
  };
  return launch;
}
#define MAKE_LAUNCH(kernel, ...) make_launch(kernel, #kernel, __VA_ARGS__)

std::string fault_of(const KernelLaunch& launch) {
  std::string why;
  const cudaError_t status = mlpx_sim::execute(launch, why);
  return status == cudaSuccess ? std::string() : why;
}

class DeviceExtensions : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = mlpx_sim::racecheck_on();
    mlpx_sim::set_racecheck(true);
  }
  void TearDown() override { mlpx_sim::set_racecheck(saved_); }

 private:
  bool saved_ = true;
};

// ---- Dynamic shared memory --------------------------------------------------------------

// Fills `count` floats of dynamic shared memory, then each thread sums a stride of them (the
// stride another thread wrote).
__global__ void fill_and_sum_kernel(int count, float* out) {
  float* shared = mlpx_sim::dynamic_shared_memory<float>();
  const int t = static_cast<int>(threadIdx.x), n = static_cast<int>(blockDim.x);
  for (int i = t; i < count; i += n) shared[i] = static_cast<float>(i % 8);  // sums stay exact
  __syncthreads();
  float sum = 0.0f;
  for (int i = (t + 1) % n; i < count; i += n) sum += shared[i];
  out[blockIdx.x * n + t] = sum;
}

TEST_F(DeviceExtensions, MoreThan48KiBNeedsTheOptIn) {
  constexpr int kCount = 64 * 1024 / 4;  // 64 KiB
  std::vector<float> out(2 * 32);
  // A kernel of its own: the attribute belongs to the function, for the rest of the process.
  auto kernel = fill_and_sum_kernel;
  std::string why;
  const KernelLaunch launch =
      MAKE_LAUNCH(kernel, dim3(2), dim3(32), kCount * 4, kCount, out.data());
  EXPECT_EQ(mlpx_sim::validate_launch(launch, why), cudaErrorInvalidConfiguration);
  EXPECT_NE(why.find("65536 bytes of dynamic shared memory; at most 49152 without an opt-in"),
            std::string::npos)
      << why;
  ASSERT_EQ(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kCount * 4),
            cudaSuccess);
  EXPECT_EQ(fault_of(launch), "");
  for (int t = 0; t < 32; ++t) {
    double expected = 0;
    for (int i = (t + 1) % 32; i < kCount; i += 32) expected += i % 8;
    EXPECT_EQ(out[t], expected) << t;
    EXPECT_EQ(out[32 + t], out[t]);
  }
  EXPECT_EQ(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024 + 1),
      cudaErrorInvalidValue);
  cudaGetLastError();
}

TEST_F(DeviceExtensions, TheH200sFullPerBlockLimitIsUsable) {
  constexpr int kCount = 227 * 1024 / 4;
  std::vector<float> out(64);
  ASSERT_EQ(cudaFuncSetAttribute(fill_and_sum_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 kCount * 4),
            cudaSuccess);
  EXPECT_EQ(
      fault_of(MAKE_LAUNCH(fill_and_sum_kernel, dim3(1), dim3(64), kCount * 4, kCount, out.data())),
      "");
  double expected = 0;
  for (int i = 1; i < kCount; i += 64) expected += i % 8;
  EXPECT_EQ(out[0], expected);
}

// Reads dynamic shared memory nothing in this block wrote.
__global__ void read_unwritten_kernel(float* out) {
  const float* shared = mlpx_sim::dynamic_shared_memory<float>();
  out[threadIdx.x] = shared[threadIdx.x];
}

TEST_F(DeviceExtensions, UnwrittenDynamicSharedMemoryIsPoison) {
  std::vector<float> out(32, 0.0f);
  EXPECT_EQ(fault_of(MAKE_LAUNCH(read_unwritten_kernel, dim3(1), dim3(32), 128, out.data())), "");
  for (float v : out) EXPECT_TRUE(std::isnan(v));
}

TEST_F(DeviceExtensions, DeviceAttributesAreAnH200s) {
  int value = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0),
            cudaSuccess);
  EXPECT_EQ(value, 232448);
  ASSERT_EQ(cudaDeviceGetAttribute(&value, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  EXPECT_EQ(value, 9);
  ASSERT_EQ(cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerMultiprocessor, 0),
            cudaSuccess);
  EXPECT_EQ(value, 233472);
}

// Two layers of a fused MLP over one sample per block, the activations in dynamic shared
// memory: h1 = relu(W1 x), y = W2 h1, one unit per thread. Between the layers every thread
// reads every h1 another thread wrote: without the barrier that is a race.
template <bool kBarrierBetweenLayers>
__global__ void two_layer_kernel(const float* x, const float* w1, const float* w2, float* y) {
  float* activations = mlpx_sim::dynamic_shared_memory<float>();
  const int unit = static_cast<int>(threadIdx.x), width = static_cast<int>(blockDim.x);
  float* input = activations;
  float* hidden = activations + width;
  input[unit] = x[blockIdx.x * width + unit];
  __syncthreads();
  float sum = 0.0f;
  for (int k = 0; k < width; ++k) sum += w1[unit * width + k] * input[k];
  hidden[unit] = sum > 0.0f ? sum : 0.0f;
  if (kBarrierBetweenLayers) __syncthreads();
  sum = 0.0f;
  for (int k = 0; k < width; ++k) sum += w2[unit * width + k] * hidden[k];
  y[blockIdx.x * width + unit] = sum;
}

TEST_F(DeviceExtensions, MissingBarrierBetweenFusedLayersIsARace) {
  constexpr int kWidth = 32, kBatch = 3;
  std::vector<float> x(kBatch * kWidth), w1(kWidth * kWidth), w2(kWidth * kWidth);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
  for (size_t i = 0; i < w1.size(); ++i) {
    w1[i] = static_cast<float>(i % 5) - 2.0f;
    w2[i] = static_cast<float>(i % 3) - 1.0f;
  }
  std::vector<float> y(kBatch * kWidth);
  const size_t bytes = 2 * kWidth * sizeof(float);
  const std::string why = fault_of(MAKE_LAUNCH(two_layer_kernel<false>, dim3(kBatch), dim3(kWidth),
                                               bytes, x.data(), w1.data(), w2.data(), y.data()));
  EXPECT_NE(why.find("race on shared memory in two_layer_kernel<false>"), std::string::npos) << why;
  EXPECT_EQ(fault_of(MAKE_LAUNCH(two_layer_kernel<true>, dim3(kBatch), dim3(kWidth), bytes,
                                 x.data(), w1.data(), w2.data(), y.data())),
            "");
  for (int b = 0; b < kBatch; ++b) {
    std::vector<float> hidden(kWidth);
    for (int j = 0; j < kWidth; ++j) {
      float sum = 0.0f;
      for (int k = 0; k < kWidth; ++k) sum += w1[j * kWidth + k] * x[b * kWidth + k];
      hidden[j] = sum > 0.0f ? sum : 0.0f;
    }
    for (int j = 0; j < kWidth; ++j) {
      float sum = 0.0f;
      for (int k = 0; k < kWidth; ++k) sum += w2[j * kWidth + k] * hidden[k];
      EXPECT_EQ(y[b * kWidth + j], sum);
    }
  }
}

// ---- mma.sync m16n8k16 bf16 -------------------------------------------------------------

uint16_t bf16_of(float v) {  // exact for the small integers used here
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return static_cast<uint16_t>(bits >> 16);
}
uint32_t pack(uint16_t low, uint16_t high) { return static_cast<uint32_t>(high) << 16 | low; }

// Loads A (16x16 row-major bf16), B (16x8 given as [n][k], i.e. column-major) and C (16x8 fp32)
// into one warp's fragments with the PTX layout, multiplies, stores D. kSwap puts a2/a3 where
// a4/a5 belong: the wrong-fragment-index bug.
template <bool kSwap>
__global__ void mma_tile_kernel(const uint16_t* a, const uint16_t* b, const float* c, float* d) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int group = lane / 4, t = lane % 4;
  const auto a_at = [&](int row, int col) { return a[row * 16 + col]; };
  uint32_t a_regs[4] = {
      pack(a_at(group, 2 * t), a_at(group, 2 * t + 1)),
      pack(a_at(group + 8, 2 * t), a_at(group + 8, 2 * t + 1)),
      pack(a_at(group, 2 * t + 8), a_at(group, 2 * t + 9)),
      pack(a_at(group + 8, 2 * t + 8), a_at(group + 8, 2 * t + 9)),
  };
  if (kSwap) std::swap(a_regs[1], a_regs[2]);
  const uint32_t b_regs[2] = {pack(b[group * 16 + 2 * t], b[group * 16 + 2 * t + 1]),
                              pack(b[group * 16 + 2 * t + 8], b[group * 16 + 2 * t + 9])};
  const float c_regs[4] = {c[group * 8 + 2 * t], c[group * 8 + 2 * t + 1],
                           c[(group + 8) * 8 + 2 * t], c[(group + 8) * 8 + 2 * t + 1]};
  float d_regs[4];
  mlpx_sim::mma_m16n8k16_bf16_at(__FILE__, __LINE__, d_regs, a_regs, b_regs, c_regs);
  const int warp = static_cast<int>(threadIdx.x / 32);
  float* tile = d + warp * 16 * 8;
  tile[group * 8 + 2 * t] = d_regs[0];
  tile[group * 8 + 2 * t + 1] = d_regs[1];
  tile[(group + 8) * 8 + 2 * t] = d_regs[2];
  tile[(group + 8) * 8 + 2 * t + 1] = d_regs[3];
}

struct MmaCase {
  std::vector<uint16_t> a, b;
  std::vector<float> c, expected;
  MmaCase() : a(16 * 16), b(8 * 16), c(16 * 8), expected(16 * 8) {
    // Distinct small integers: every product and sum is exact, so the check is equality, and
    // any element read from a wrong place changes the result.
    std::vector<float> fa(a.size()), fb(b.size());
    for (int i = 0; i < 256; ++i) fa[i] = static_cast<float>((i * 7) % 13) - 6.0f;
    for (int i = 0; i < 128; ++i) fb[i] = static_cast<float>((i * 5) % 11) - 5.0f;
    for (int i = 0; i < 128; ++i) c[i] = static_cast<float>(i % 9) * 0.5f;
    for (size_t i = 0; i < fa.size(); ++i) a[i] = bf16_of(fa[i]);
    for (size_t i = 0; i < fb.size(); ++i) b[i] = bf16_of(fb[i]);
    for (int row = 0; row < 16; ++row) {
      for (int col = 0; col < 8; ++col) {
        float sum = c[row * 8 + col];
        for (int k = 0; k < 16; ++k) sum += fa[row * 16 + k] * fb[col * 16 + k];
        expected[row * 8 + col] = sum;
      }
    }
  }
};

TEST_F(DeviceExtensions, MmaWithTheDocumentedFragmentLayoutMultiplies) {
  const MmaCase m;
  constexpr int kWarps = 2;  // each warp multiplies the same tile
  std::vector<float> d(kWarps * 128, -1.0f);
  EXPECT_EQ(fault_of(MAKE_LAUNCH(mma_tile_kernel<false>, dim3(1), dim3(32 * kWarps), 0, m.a.data(),
                                 m.b.data(), m.c.data(), d.data())),
            "");
  for (int w = 0; w < kWarps; ++w) {
    for (int i = 0; i < 128; ++i) EXPECT_EQ(d[w * 128 + i], m.expected[i]) << w << " " << i;
  }
}

TEST_F(DeviceExtensions, MmaWithAWrongFragmentIndexGivesAWrongProduct) {
  const MmaCase m;
  std::vector<float> d(128, -1.0f);
  EXPECT_EQ(fault_of(MAKE_LAUNCH(mma_tile_kernel<true>, dim3(1), dim3(32), 0, m.a.data(),
                                 m.b.data(), m.c.data(), d.data())),
            "");
  int wrong = 0;
  for (int i = 0; i < 128; ++i) wrong += d[i] != m.expected[i];
  EXPECT_GT(wrong, 64);
}

// Scatters one distinct value per element through the fragments: with A the identity, D = B^T
// + C shows where each B element landed; with B the identity's first 8 columns, D = A[:, :8] + C.
TEST_F(DeviceExtensions, MmaScatteredValuesComeBackWhereTheLayoutPutsThem) {
  MmaCase m;
  std::vector<float> fb(128);
  for (int i = 0; i < 256; ++i) m.a[i] = bf16_of(i / 16 == i % 16 ? 1.0f : 0.0f);
  for (int i = 0; i < 128; ++i) {
    fb[i] = static_cast<float>(i);  // B[k][n] = n * 16 + k
    m.b[i] = bf16_of(fb[i]);
  }
  std::fill(m.c.begin(), m.c.end(), 0.0f);
  std::vector<float> d(128);
  EXPECT_EQ(fault_of(MAKE_LAUNCH(mma_tile_kernel<false>, dim3(1), dim3(32), 0, m.a.data(),
                                 m.b.data(), m.c.data(), d.data())),
            "");
  for (int row = 0; row < 16; ++row) {
    for (int col = 0; col < 8; ++col) EXPECT_EQ(d[row * 8 + col], col * 16 + row);
  }
}

TEST_F(DeviceExtensions, MmaNeedsTheWholeWarp) {
  const MmaCase m;
  std::vector<float> d(128);
  const std::string why = fault_of(MAKE_LAUNCH(mma_tile_kernel<false>, dim3(1), dim3(16), 0,
                                               m.a.data(), m.b.data(), m.c.data(), d.data()));
  EXPECT_NE(why.find("mma.sync mask 0xffffffff"), std::string::npos) << why;
  EXPECT_NE(why.find("the block has only 16 threads"), std::string::npos) << why;
}

}  // namespace
