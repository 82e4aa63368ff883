// cpu::parallel_for (src/cpu/parallel.h) and the optimizer step that uses it at batch 1
// (src/cpu/optimizer_outer_step.h).
#include "cpu/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/linear.h"
#include "cpu/optimizer_outer_step.h"
#include "cpu/optimizer_step.h"
#include "math/linear.h"
#include "test_util.h"

namespace mlpx {
namespace {

TEST(ParallelFor, RunsEveryElementOnceAndANestedLoopInline) {
  constexpr int64_t kN = 100003;
  std::vector<int> hits(kN, 0);
  std::atomic<int64_t> chunks{0};
  cpu::parallel_for(kN, 1000, [&](int64_t first, int64_t last) {
    EXPECT_LE(last - first, 1000);
    ++chunks;
    for (int64_t i = first; i < last; ++i) ++hits[static_cast<size_t>(i)];
    // Inside a chunk the pool is busy: a nested loop must run on this thread, not wait.
    int64_t inner = 0;
    cpu::parallel_for(5000, 10, [&](int64_t a, int64_t b) { inner += b - a; });
    EXPECT_EQ(inner, 5000);
  });
  EXPECT_EQ(chunks.load(), (kN + 999) / 1000);
  for (int64_t i = 0; i < kN; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << i;
  int calls = 0;
  cpu::parallel_for(0, 10, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
  EXPECT_GE(cpu::parallel_threads(), 1);
}

// A block large enough to be split over the threads (several chunks), with subnormal and zero
// factors: bit for bit the plain step on gemm's stored product, for Adam and SGD with momentum.
TEST(OptimizerOuterStep, SplitBlockMatchesThePlainStepOnTheStoredProductBitForBit) {
  constexpr int64_t kRows = 300, kCols = 200, kBias = 7, kN = kRows * kCols + kBias;
  for (const OptimizerType type : {OptimizerType::kAdam, OptimizerType::kSgd}) {
    OptimizerConfig config;
    config.type = type;
    config.lr = 0.01;
    if (type == OptimizerType::kSgd) config.momentum = 0.9;
    const int buffers = type == OptimizerType::kAdam ? 2 : 1;
    std::vector<float> p = test::random_values<float>(kN, 1);
    std::vector<std::vector<float>> state(2, std::vector<float>(kN, 0.0f));
    // Row 5's state -0: a subnormal product must become the same zero on both paths.
    std::fill(state[0].begin() + 5 * kCols, state[0].begin() + 6 * kCols, -0.0f);
    std::vector<float> p2 = p;
    std::vector<std::vector<float>> state2 = state;
    for (int step = 1; step <= 3; ++step) {
      std::vector<float> a = test::random_values<float>(kRows, 10 + step, -1e-20, 1e-20);
      std::vector<float> b = test::random_values<float>(kCols, 20 + step);
      a[3] = 0.0f;
      a[5] = -1e-39f;  // subnormal: flushed alike on both paths
      b[7] = 0.0f;
      std::vector<float> g = test::random_values<float>(kN, 30 + step);
      cpu::gemm<float>(true, false, kRows, kCols, 1, 1.0f, a.data(), b.data(), 0.0f, g.data());
      float* s[2] = {state[0].data(), state[1].data()};
      cpu::optimizer_step<float>(type, config, config.lr, kN, p.data(), g.data(), s, step,
                                 OneCyclePlan{}, 1.0f, nullptr);
      float* s2[2] = {state2[0].data(), state2[1].data()};
      std::vector<float> g2 = g;
      std::fill(g2.begin(), g2.begin() + kRows * kCols, std::nanf(""));  // must not be read
      cpu::optimizer_outer_step<float>(type, config, config.lr, kN, p2.data(), g2.data(), s2, step,
                                       {{0, kRows, kCols, a.data(), b.data()}});
    }
    EXPECT_EQ(std::memcmp(p.data(), p2.data(), kN * sizeof(float)), 0) << static_cast<int>(type);
    for (int k = 0; k < buffers; ++k) {
      EXPECT_EQ(std::memcmp(state[k].data(), state2[k].data(), kN * sizeof(float)), 0) << k;
    }
  }
}

// sum_rows split by columns over the threads: the lanes and the order of rows of one thread.
TEST(ParallelFor, SumRowsSplitByColumnsGivesTheOneThreadBits) {
  constexpr int64_t kRows = 3001, kCols = 300;
  const std::vector<float> x = test::random_values<float>(kRows * kCols, 7);
  std::vector<float> sums(kCols);
  cpu::sum_rows(x.data(), sums.data(), kRows, kCols);
  constexpr int kLanes = math::kColumnSumLanes;
  for (int64_t c = 0; c < kCols; ++c) {
    float lanes[kLanes] = {};
    for (int64_t r = 0; r < kRows; ++r) lanes[r % kLanes] += x[static_cast<size_t>(r * kCols + c)];
    const float expected = math::combine_column_lanes(lanes);
    ASSERT_EQ(std::memcmp(&expected, &sums[static_cast<size_t>(c)], sizeof(float)), 0) << c;
  }
}

}  // namespace
}  // namespace mlpx
