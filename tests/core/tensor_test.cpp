#include "mlpx/tensor.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "mlpx/error.h"
#include "test_util.h"

namespace mlpx {
namespace {

TEST(Tensor, FromVectorRoundTripsAndReportsShape) {
  Tensor t = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(t.dim(), 2);
  EXPECT_EQ(t.rows(), 2);
  EXPECT_EQ(t.cols(), 3);
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(t.dtype(), DType::kFloat32);
  EXPECT_TRUE(t.device().is_cpu());
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(t.describe(), "[2, 3] float32 cpu");
}

TEST(Tensor, PrintsShapeAndSmallValues) {
  std::ostringstream out;
  out << Tensor::from_vector<int32_t>({7, 8}, {2});
  EXPECT_EQ(out.str(), "[2] int32 cpu {7, 8}");
}

TEST(Tensor, ZerosAndFloat64) {
  Tensor t = Tensor::zeros({4}, DType::kFloat64);
  EXPECT_EQ(t.to_vector<double>(), std::vector<double>(4, 0.0));
  EXPECT_EQ(t.cols(), 1);
}

TEST(Tensor, RowViewsShareStorage) {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5, 6, 7}, {4, 2});
  Tensor middle = t.rows(1, 3);
  EXPECT_EQ(middle.shape(), (Shape{2, 2}));
  EXPECT_EQ(middle.to_vector<float>(), (std::vector<float>{2, 3, 4, 5}));
  middle.data<float>()[0] = 42;
  EXPECT_EQ(t.data<float>()[2], 42);
  EXPECT_EQ(t.rows(4, 4).numel(), 0);
}

TEST(Tensor, FlatViewsAndReshape) {
  Tensor flat = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5, 6, 7, 8}, {9});
  Tensor w = flat.flat_view(2, {2, 3});
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(w.view({6}).shape(), (Shape{6}));
  EXPECT_THROW(flat.flat_view(5, {2, 3}), ShapeError);
  EXPECT_THROW(w.view({4}), ShapeError);
}

TEST(Tensor, CloneIsDeepCopyIsShallow) {
  Tensor a = Tensor::from_vector<float>({1, 2}, {2});
  Tensor handle = a;
  Tensor deep = a.clone();
  a.data<float>()[0] = 9;
  EXPECT_EQ(handle.data<float>()[0], 9);
  EXPECT_EQ(deep.data<float>()[0], 1);
  EXPECT_EQ(a.to(Device::cpu()).raw_data(), a.raw_data());
}

TEST(Tensor, ErrorsNameExpectedAndFound) {
  try {
    Tensor::from_vector<float>({1, 2, 3}, {2, 2});
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "expected 4 values for shape [2, 2], found 3");
  }
  EXPECT_THROW(Tensor({2, 2, 2}), ShapeError);
  EXPECT_THROW(Tensor({-1}), ShapeError);
  Tensor t = Tensor::zeros({3, 2});
  EXPECT_THROW(t.rows(2, 4), ShapeError);
  EXPECT_THROW(t.data<double>(), ShapeError);
  EXPECT_THROW(t.to_vector<int32_t>(), ShapeError);
  Tensor other = Tensor::zeros({5});
  EXPECT_THROW(t.copy_from(other), ShapeError);
  EXPECT_FALSE(Tensor().defined());
}

TEST(Tensor, ZeroSizedTensorsAreValid) {
  Tensor t({0, 5});
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(t.numel(), 0);
  EXPECT_TRUE(t.to_vector<float>().empty());
  t.fill_zero();
}

#if defined(__linux__)
// The VmFlags line of /proc/self/smaps for the mapping that holds `address` ("" if none).
std::string vm_flags_of(const void* address) {
  const auto a = reinterpret_cast<uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> begin >> dash >> end && dash == '-') inside = a >= begin && a < end;
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}
#endif

// Host tensors of 2 MiB and more start on a huge-page boundary and are advised for transparent
// huge pages (a mini-batch gathers rows from anywhere in the training set: fewer TLB misses);
// smaller ones keep 64-byte alignment.
TEST(Tensor, LargeHostTensorsAskForHugePages) {
  const Tensor large({int64_t{1} << 19, 2}, DType::kFloat32);  // 4 MiB
  const Tensor small({1000}, DType::kFloat32);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(large.data<float>()) % (uintptr_t{2} << 20), 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small.data<float>()) % 64, 0u);
#if defined(__linux__)
  if (!std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled")) return;  // no THP: no advice
  // (A small block's mapping may carry the advice too: malloc can place it in heap memory
  // that an earlier large block, since freed, had advised.)
  EXPECT_NE(vm_flags_of(large.data<float>()).find(" hg"), std::string::npos)
      << vm_flags_of(large.data<float>());
#endif
}

TEST(Device, ParsesNames) {
  EXPECT_TRUE(Device::parse("cpu").is_cpu());
  EXPECT_EQ(Device::parse("cuda:3").index, 3);
  EXPECT_EQ(Device::parse("cuda").str(), "cuda:0");
  EXPECT_EQ(Device::parse("auto"), cuda_available() ? Device::cuda(0) : Device::cpu());
  EXPECT_THROW(Device::parse("gpu"), ValueError);
  EXPECT_THROW(Device::parse("cuda:x"), ValueError);
}

TEST(Device, WithoutCudaGpuTensorsFailClearly) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present";
  EXPECT_THROW(Tensor({4}, DType::kFloat32, Device::cuda(0)), CudaError);
}

TEST(TensorCuda, RoundTripsThroughTheDevice) {
  MLPX_REQUIRE_CUDA();
  Tensor host = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor dev = host.to(Device::cuda(0));
  EXPECT_TRUE(dev.device().is_cuda());
  EXPECT_EQ(dev.to(Device::cpu()).to_vector<float>(), host.to_vector<float>());
  EXPECT_EQ(dev.rows(1, 2).to_vector<float>(), (std::vector<float>{3, 4}));
  Tensor copy = dev.clone();
  dev.fill_zero();
  EXPECT_EQ(copy.to_vector<float>(), host.to_vector<float>());
  EXPECT_EQ(dev.to_vector<float>(), std::vector<float>(6, 0.0f));
}

}  // namespace
}  // namespace mlpx
