#include "ops/batching.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "mlpx/error.h"
#include "mlpx/loss.h"
#include "test_util.h"

namespace mlpx {
namespace {

TEST(Batching, PermutationIsAPermutationAndDependsOnSeedAndStream) {
  for (int64_t n : {0, 1, 2, 7, 1000}) {
    auto p = random_permutation(n, 5, 9, Device::cpu()).to_vector<int32_t>();
    std::vector<int32_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int32_t> expected(n);
    std::iota(expected.begin(), expected.end(), 0);
    EXPECT_EQ(sorted, expected) << n;
  }
  const auto a = random_permutation(100, 1, 0, Device::cpu()).to_vector<int32_t>();
  EXPECT_EQ(a, random_permutation(100, 1, 0, Device::cpu()).to_vector<int32_t>());
  EXPECT_NE(a, random_permutation(100, 2, 0, Device::cpu()).to_vector<int32_t>());
  EXPECT_NE(a, random_permutation(100, 1, 1, Device::cpu()).to_vector<int32_t>());
}

TEST(Batching, GatherRowsCopiesTheNamedRows) {
  Tensor src = Tensor::from_vector<float>({0, 1, 10, 11, 20, 21}, {3, 2});
  Tensor idx = Tensor::from_vector<int32_t>({2, 0, 2}, {3});
  Tensor dst({3, 2});
  gather_rows(src, idx, dst);
  EXPECT_EQ(dst.to_vector<float>(), (std::vector<float>{20, 21, 0, 1, 20, 21}));
  Tensor labels = Tensor::from_vector<int32_t>({5, 6, 7}, {3});
  Tensor out({3}, DType::kInt32);
  gather_rows(labels, idx, out);
  EXPECT_EQ(out.to_vector<int32_t>(), (std::vector<int32_t>{7, 5, 7}));
}

TEST(Batching, GatherRejectsBadIndicesAndShapes) {
  Tensor src = Tensor::zeros({3, 2});
  Tensor dst({1, 2});
  EXPECT_THROW(gather_rows(src, Tensor::from_vector<int32_t>({3}, {1}), dst), ValueError);
  EXPECT_THROW(gather_rows(src, Tensor::from_vector<int32_t>({-1}, {1}), dst), ValueError);
  Tensor wrong({1, 3});
  EXPECT_THROW(gather_rows(src, Tensor::from_vector<int32_t>({0}, {1}), wrong), ShapeError);
}

TEST(BatchingCuda, PermutationAndGatherMatchCpu) {
  MLPX_REQUIRE_CUDA();
  for (int64_t n : {1, 255, 256, 257, 60000}) {
    EXPECT_EQ(random_permutation(n, 11, 3, Device::cuda(0)).to_vector<int32_t>(),
              random_permutation(n, 11, 3, Device::cpu()).to_vector<int32_t>());
  }
  const Tensor src = Tensor::from_vector(test::random_values<float>(1000 * 13, 1), {1000, 13});
  const Tensor idx = random_permutation(1000, 4, 0, Device::cpu()).rows(0, 321);
  Tensor cpu({321, 13});
  gather_rows(src, idx, cpu);
  Tensor gpu({321, 13}, DType::kFloat32, Device::cuda(0));
  gather_rows(src.to(Device::cuda(0)), idx.to(Device::cuda(0)), gpu);
  EXPECT_EQ(gpu.to_vector<float>(), cpu.to_vector<float>());
}

// The device-position gather and commit that let one captured step serve every batch.
TEST(Batching, GatherBatchAndCommitFollowTheDevicePosition) {
  const Tensor src = Tensor::from_vector<float>({0, 1, 10, 11, 20, 21, 30, 31, 40, 41}, {5, 2});
  const Tensor order = Tensor::from_vector<int32_t>({4, 2, 0, 3, 1}, {5});
  Tensor position = Tensor::zeros({1}, DType::kInt32);
  Tensor loss = Tensor::from_vector<float>({2.5f}, {1});
  Tensor losses = Tensor::zeros({3});
  Tensor dst({2, 2});
  gather_batch(src, order, position, 2, dst);
  EXPECT_EQ(dst.to_vector<float>(), (std::vector<float>{40, 41, 20, 21}));
  commit_batch_loss(loss, losses, position);
  EXPECT_EQ(position.to_vector<int32_t>()[0], 1);
  EXPECT_EQ(loss.to_vector<float>()[0], 0.0f);
  EXPECT_EQ(losses.to_vector<float>(), (std::vector<float>{2.5f, 0, 0}));
  gather_batch(src, order, position, 2, dst);
  EXPECT_EQ(dst.to_vector<float>(), (std::vector<float>{0, 1, 30, 31}));
  // The run's step word (dropout's) advances with the position.
  Tensor run_step = Tensor::from_vector<int32_t>({40}, {1});
  commit_batch_loss(loss, losses, position, &run_step);
  EXPECT_EQ(run_step.to_vector<int32_t>()[0], 41);
  EXPECT_EQ(position.to_vector<int32_t>()[0], 2);
  Tensor last = dst.rows(0, 1);  // the partial last batch
  gather_batch(src, order, position, 2, last);
  EXPECT_EQ(last.to_vector<float>(), (std::vector<float>{10, 11}));
  Tensor too_many({2, 2});
  EXPECT_THROW(gather_batch(src, order, position, 2, too_many), ValueError);
}

TEST(BatchingParity, GatherBatchAndCommitMatchCpu) {
  MLPX_REQUIRE_CUDA();
  const int64_t n = 37, width = 5, batch = 8;
  const auto values = test::random_values<float>(n * width, 3);
  const Tensor src = Tensor::from_vector(values, {n, width}, Device::cuda());
  const Tensor order = random_permutation(n, 7, 1, Device::cuda());
  const auto order_cpu = order.to_vector<int32_t>();
  Tensor position = Tensor::zeros({1}, DType::kInt32, Device::cuda());
  Tensor run_step = Tensor::from_vector<int32_t>({7}, {1}).to(Device::cuda());
  Tensor loss = Tensor::zeros({1}, DType::kFloat32, Device::cuda());
  Tensor losses = Tensor::zeros({5}, DType::kFloat32, Device::cuda());
  Tensor dst({batch, width}, DType::kFloat32, Device::cuda());
  for (int64_t b = 0; b < 5; ++b) {
    const int64_t rows = std::min(batch, n - b * batch);
    Tensor d = dst.rows(0, rows);
    gather_batch(src, order, position, batch, d);
    const auto got = d.to_vector<float>();
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < width; ++j) {
        ASSERT_EQ(got[i * width + j], values[order_cpu[b * batch + i] * width + j]) << b;
      }
    }
    loss.copy_from(Tensor::from_vector<float>({static_cast<float>(b) + 0.5f}, {1}));
    commit_batch_loss(loss, losses, position, b % 2 == 0 ? &run_step : nullptr);
  }
  EXPECT_EQ(losses.to_vector<float>(), (std::vector<float>{0.5f, 1.5f, 2.5f, 3.5f, 4.5f}));
  EXPECT_EQ(position.to_vector<int32_t>()[0], 5);
  EXPECT_EQ(run_step.to_vector<int32_t>()[0], 7 + 3);  // given at batches 0, 2 and 4
}

// The batch loss's sum and commit in one kernel against accumulate_sum then commit_batch_loss:
// the same bits on the GPU (the same sum in the same order) and on the CPU.
TEST(BatchingParity, SumAndCommitMatchesAccumulateSumThenCommit) {
  for (const Device device : {Device::cpu(), Device::cuda(0)}) {
    if (device.is_cuda() && !cuda_available()) continue;
    const Tensor row_loss =
        Tensor::from_vector(test::random_values<float>(1500, 9, 0.0, 3.0), {1500}).to(device);
    const auto run = [&](bool one_kernel) {
      Tensor loss = Tensor::from_vector<float>({0.75f}, {1}).to(device);
      Tensor losses = Tensor::zeros({2}, DType::kFloat32, device);
      Tensor position = Tensor::from_vector<int32_t>({1}, {1}).to(device);
      Tensor run_step = Tensor::from_vector<int32_t>({4}, {1}).to(device);
      if (one_kernel) {
        sum_and_commit_batch_loss(row_loss, 1.0 / 1500.0, loss, losses, position, &run_step);
      } else {
        accumulate_sum(row_loss, loss, 1.0 / 1500.0);
        commit_batch_loss(loss, losses, position, &run_step);
      }
      EXPECT_EQ(loss.to(Device::cpu()).to_vector<float>()[0], 0.0f);
      EXPECT_EQ(position.to(Device::cpu()).to_vector<int32_t>()[0], 2);
      EXPECT_EQ(run_step.to(Device::cpu()).to_vector<int32_t>()[0], 5);
      return losses.to(Device::cpu()).to_vector<float>();
    };
    const std::vector<float> one = run(true), two = run(false);
    EXPECT_EQ(one, two) << device.str();
    EXPECT_GT(one[1], 0.75f);
  }
}

}  // namespace
}  // namespace mlpx
