// Losses and metric accumulators on the GPU against the CPU in float32 over 60 shapes (0
// rows, 1 row, 1 column, odd sizes, widths around the block size and the warp/block switch,
// rows of tens of thousands of classes); bad labels raised at synchronize(); extreme logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "math/loss.h"
#include "mlpx/error.h"
#include "mlpx/loss.h"
#include "test_util.h"

namespace mlpx {
namespace {

constexpr double kAtol = 1e-5;
constexpr double kRtol = 1e-4;

// Every member of the table (mlpx/enums.h).
const auto& kAll = math::kLosses;

std::vector<std::pair<int64_t, int64_t>> parity_shapes() {
  std::vector<std::pair<int64_t, int64_t>> shapes = {
      {0, 5},   {0, 1},    {1, 1},    {1, 7},    {7, 1},     {1, 1025},  {1025, 1},
      {3, 257}, {257, 3},  {2, 1024}, {2, 1025}, {5, 4097},  {1, 20000}, {3, 50000},
      {33, 10}, {128, 10}, {513, 31}, {65, 255}, {17, 2049}, {1, 256},   {256, 1}};
  // Plus random shapes. 16 of them: the fixed ones above hold the edge cases, and on the GPU
  // simulator under ASan every 10 random shapes cost this test about 20 s.
  std::mt19937_64 gen(4242);
  std::uniform_int_distribution<int64_t> rows(1, 300), cols(1, 2500);
  while (shapes.size() < 37) shapes.emplace_back(rows(gen), cols(gen));
  return shapes;
}

// Float targets: probability rows (with zeros) for kl_div, [0, 1] for bce, reals otherwise.
std::vector<float> make_target(Loss loss, int64_t rows, int64_t cols, uint64_t seed) {
  const size_t n = static_cast<size_t>(rows * cols);
  if (loss == Loss::kMse || loss == Loss::kSse) return test::random_values<float>(n, seed);
  std::vector<float> t = test::random_values<float>(n, seed, 0.0, 1.0);
  if (loss == Loss::kKlDiv) {
    for (int64_t r = 0; r < rows; ++r) {
      double sum = 0;
      for (int64_t c = 0; c < cols; ++c) {
        float& v = t[r * cols + c];
        if (v < 0.2f) v = 0.0f;  // some exact zeros: 0 log 0 = 0
        sum += v;
      }
      for (int64_t c = 0; c < cols; ++c) t[r * cols + c] /= sum > 0 ? sum : 1.0;
    }
  }
  return t;
}

std::vector<int32_t> make_labels(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int64_t> label(0, cols > 0 ? cols - 1 : 0);
  std::vector<int32_t> out(static_cast<size_t>(rows));
  for (auto& v : out) v = static_cast<int32_t>(label(gen));
  return out;
}

TEST(LossParity, LossesMatchCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 1;
  for (const auto& [rows, cols] : parity_shapes()) {
    const Shape shape{rows, cols};
    const Tensor z = Tensor::from_vector(
        test::random_values<float>(static_cast<size_t>(rows * cols), seed++, -8.0, 8.0), shape);
    const Tensor z_gpu = z.to(gpu);
    for (Loss loss : kAll) {
      if (loss == Loss::kCrossEntropy && cols == 0) continue;
      SCOPED_TRACE(::testing::Message() << loss_name(loss) << " [" << rows << ", " << cols << "]");
      const Tensor target = loss_uses_class_labels(loss)
                                ? Tensor::from_vector(make_labels(rows, cols, seed++), {rows})
                                : Tensor::from_vector(make_target(loss, rows, cols, seed++), shape);
      Tensor row_loss({rows}), grad(shape);
      loss_forward_backward(loss, z, target, row_loss, &grad);
      Tensor row_loss_g({rows}, DType::kFloat32, gpu), grad_g(shape, DType::kFloat32, gpu);
      loss_forward_backward(loss, z_gpu, target.to(gpu), row_loss_g, &grad_g);
      // And without the gradient: the same row losses.
      Tensor row_loss_g2({rows}, DType::kFloat32, gpu);
      loss_forward_backward(loss, z_gpu, target.to(gpu), row_loss_g2, nullptr);
      synchronize(gpu);
      EXPECT_TRUE(
          test::all_close(row_loss_g.to_vector<float>(), row_loss.to_vector<float>(), kAtol, kRtol))
          << "row_loss";
      EXPECT_TRUE(test::all_close(grad_g.to_vector<float>(), grad.to_vector<float>(), kAtol, kRtol))
          << "grad";
      EXPECT_EQ(row_loss_g2.to_vector<float>(), row_loss_g.to_vector<float>());
    }
  }
}

// cross_entropy with label smoothing on the GPU against the CPU, over the shapes' widths.
TEST(LossParity, LabelSmoothingMatchesCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 900;
  for (const auto& [rows, cols] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 10}, {3, 257}, {2, 1025}, {5, 4097}}) {
    SCOPED_TRACE(::testing::Message() << "[" << rows << ", " << cols << "]");
    const Shape shape{rows, cols};
    const Tensor z = Tensor::from_vector(
        test::random_values<float>(static_cast<size_t>(rows * cols), seed++, -8.0, 8.0), shape);
    const Tensor labels = Tensor::from_vector(make_labels(rows, cols, seed++), {rows});
    Tensor row_loss({rows}), grad(shape);
    loss_forward_backward(Loss::kCrossEntropy, z, labels, row_loss, &grad, 0, nullptr, 0.1);
    Tensor row_loss_g({rows}, DType::kFloat32, gpu), grad_g(shape, DType::kFloat32, gpu);
    loss_forward_backward(Loss::kCrossEntropy, z.to(gpu), labels.to(gpu), row_loss_g, &grad_g, 0,
                          nullptr, 0.1);
    synchronize(gpu);
    EXPECT_TRUE(
        test::all_close(row_loss_g.to_vector<float>(), row_loss.to_vector<float>(), kAtol, kRtol));
    EXPECT_TRUE(test::all_close(grad_g.to_vector<float>(), grad.to_vector<float>(), kAtol, kRtol));
  }
}

// A rank's share of a data-parallel batch (grad_rows = the whole batch's rows) on the GPU
// gives the CPU's gradient for that share.
TEST(LossParity, ShareOfABatchMatchesCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const int64_t rows = 7, batch_rows = 20, cols = 9;
  const Shape shape{rows, cols};
  const Tensor z =
      Tensor::from_vector(test::random_values<float>(rows * cols, 11, -4.0, 4.0), shape);
  for (Loss loss : kAll) {
    SCOPED_TRACE(loss_name(loss));
    const Tensor target = loss_uses_class_labels(loss)
                              ? Tensor::from_vector(make_labels(rows, cols, 12), {rows})
                              : Tensor::from_vector(make_target(loss, rows, cols, 13), shape);
    Tensor row_loss({rows}), grad(shape);
    loss_forward_backward(loss, z, target, row_loss, &grad, batch_rows);
    Tensor row_loss_gpu({rows}, DType::kFloat32, gpu), grad_gpu(shape, DType::kFloat32, gpu);
    loss_forward_backward(loss, z.to(gpu), target.to(gpu), row_loss_gpu, &grad_gpu, batch_rows);
    EXPECT_TRUE(test::all_close(grad_gpu.to_vector<float>(), grad.to_vector<float>(), 1e-7, kRtol));
    EXPECT_TRUE(test::all_close(row_loss_gpu.to_vector<float>(), row_loss.to_vector<float>(), kAtol,
                                kRtol));
  }
}

// Sample weights on the GPU: normalize_row_weights (in place too) and every loss with a
// row_weight give the CPU's values.
TEST(LossParity, SampleWeightsMatchCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 70;
  for (const auto& [rows, cols] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 3}, {33, 10}, {257, 3}, {3, 1030}, {1500, 2}}) {
    const Shape shape{rows, cols};
    std::vector<float> w = test::random_values<float>(static_cast<size_t>(rows), seed++, 0.0, 3.0);
    if (rows > 2) w[1] = 0.0f;
    const Tensor weights = Tensor::from_vector(w, {rows});
    Tensor normalized({rows});
    normalize_row_weights(weights, normalized);
    Tensor normalized_gpu = weights.to(gpu);
    normalize_row_weights(normalized_gpu, normalized_gpu);
    EXPECT_TRUE(test::all_close(normalized_gpu.to_vector<float>(), normalized.to_vector<float>(),
                                1e-7, 1e-6));
    const Tensor z = Tensor::from_vector(
        test::random_values<float>(static_cast<size_t>(rows * cols), seed++, -8.0, 8.0), shape);
    for (Loss loss : kAll) {
      SCOPED_TRACE(::testing::Message() << loss_name(loss) << " [" << rows << ", " << cols << "]");
      const Tensor target = loss_uses_class_labels(loss)
                                ? Tensor::from_vector(make_labels(rows, cols, seed++), {rows})
                                : Tensor::from_vector(make_target(loss, rows, cols, seed++), shape);
      Tensor row_loss({rows}), grad(shape);
      loss_forward_backward(loss, z, target, row_loss, &grad, 0, &normalized);
      Tensor row_loss_g({rows}, DType::kFloat32, gpu), grad_g(shape, DType::kFloat32, gpu);
      loss_forward_backward(loss, z.to(gpu), target.to(gpu), row_loss_g, &grad_g, 0,
                            &normalized_gpu);
      EXPECT_TRUE(test::all_close(row_loss_g.to_vector<float>(), row_loss.to_vector<float>(), kAtol,
                                  kRtol));
      EXPECT_TRUE(
          test::all_close(grad_g.to_vector<float>(), grad.to_vector<float>(), kAtol, kRtol));
    }
  }
}

TEST(LossParity, AccumulatorsMatchCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 500;
  for (const auto& [rows, cols] : parity_shapes()) {
    SCOPED_TRACE(::testing::Message() << "[" << rows << ", " << cols << "]");
    // accumulate_sum over rows * cols values, twice on the GPU: same bits.
    const int64_t n = rows * cols;
    const Tensor v = Tensor::from_vector(
        test::random_values<float>(static_cast<size_t>(n), seed++, -1.0, 1.0), {n});
    Tensor acc = Tensor::from_vector<float>({0.25f}, {1});
    accumulate_sum(v, acc, 0.5);
    Tensor acc_g1 = acc.to(gpu), acc_g2 = acc.to(gpu);
    acc_g1.copy_from(Tensor::from_vector<float>({0.25f}, {1}));
    acc_g2.copy_from(Tensor::from_vector<float>({0.25f}, {1}));
    accumulate_sum(v.to(gpu), acc_g1, 0.5);
    accumulate_sum(v.to(gpu), acc_g2, 0.5);
    EXPECT_TRUE(test::all_close(acc_g1.to_vector<float>(), acc.to_vector<float>(), kAtol, kRtol));
    EXPECT_EQ(acc_g1.to_vector<float>(), acc_g2.to_vector<float>());

    // accumulate_correct: random scores with some rows forced to ties, labels mostly right.
    std::vector<float> scores =
        test::random_values<float>(static_cast<size_t>(rows * cols), seed++, -2.0, 2.0);
    std::vector<int32_t> labels = make_labels(rows, cols, seed++);
    for (int64_t r = 0; r < rows; r += 3) {
      if (cols >= 2) scores[r * cols + cols - 1] = scores[r * cols] = 5.0f;  // tie: first wins
      if (cols >= 1) labels[r] = r % 2 == 0 ? 0 : static_cast<int32_t>(cols - 1);
    }
    const Tensor out = Tensor::from_vector(scores, {rows, cols});
    const Tensor lab = Tensor::from_vector(labels, {rows});
    Tensor correct = Tensor::from_vector<int32_t>({3}, {1});
    accumulate_correct(out, lab, correct);
    Tensor correct_g = Tensor::from_vector<int32_t>({3}, {1}, gpu);
    accumulate_correct(out.to(gpu), lab.to(gpu), correct_g);
    EXPECT_EQ(correct_g.to_vector<int32_t>(), correct.to_vector<int32_t>());

    // accumulate_correct_per_output: the same scores (some 0, one NaN) against 0/1 targets.
    std::vector<float> binary(scores.size());
    for (size_t i = 0; i < binary.size(); ++i) binary[i] = labels[i % labels.size()] % 2;
    if (!scores.empty()) scores[scores.size() / 2] = std::nanf("");
    if (scores.size() > 1) scores[1] = 0.0f;
    const Tensor outputs = Tensor::from_vector(scores, {rows, cols});
    const Tensor targets = Tensor::from_vector(binary, {rows, cols});
    Tensor per_output = Tensor::from_vector<int32_t>({7}, {1});
    accumulate_correct_per_output(outputs, targets, per_output);
    Tensor per_output_g = Tensor::from_vector<int32_t>({7}, {1}, gpu);
    accumulate_correct_per_output(outputs.to(gpu), targets.to(gpu), per_output_g);
    EXPECT_EQ(per_output_g.to_vector<int32_t>(), per_output.to_vector<int32_t>());
  }
}

TEST(LossParity, BadLabelIsRaisedAtSynchronize) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  synchronize(gpu);  // nothing pending
  const Tensor z = Tensor::zeros({4, 6}).to(gpu);
  Tensor row_loss({4}, DType::kFloat32, gpu), grad({4, 6}, DType::kFloat32, gpu);
  for (int32_t bad : {6, -1}) {
    loss_forward_backward(Loss::kCrossEntropy, z,
                          Tensor::from_vector<int32_t>({0, 5, bad, 1}, {4}, gpu), row_loss, &grad);
    try {
      synchronize(gpu);
      FAIL() << "expected ValueError for label " << bad;
    } catch (const ValueError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("label " + std::to_string(bad)), std::string::npos) << what;
      EXPECT_NE(what.find("row 2"), std::string::npos) << what;
    }
    EXPECT_TRUE(std::isnan(row_loss.to_vector<float>()[2]));
  }
  synchronize(gpu);  // the flag was cleared
  // Wide rows take the block-per-row kernel: same check.
  const Tensor wide = Tensor::zeros({2, 3000}).to(gpu);
  Tensor wide_loss({2}, DType::kFloat32, gpu);
  loss_forward_backward(Loss::kCrossEntropy, wide,
                        Tensor::from_vector<int32_t>({3000, 0}, {2}, gpu), wide_loss, nullptr);
  EXPECT_THROW(synchronize(gpu), ValueError);
}

TEST(LossParity, ExtremeLogitsAndEqualRows) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  for (int64_t cols : {4, 10, 1000, 1025, 32768}) {
    SCOPED_TRACE(cols);
    std::vector<float> z(static_cast<size_t>(2 * cols), 0.0f);
    for (int64_t c = 0; c < cols; ++c) z[c] = c % 2 == 0 ? 1e4f : -1e4f;  // row 0: +-1e4
    for (int64_t c = 0; c < cols; ++c) z[cols + c] = 2.5f;                // row 1: all equal
    const std::vector<int32_t> labels = {1, static_cast<int32_t>(cols - 1)};
    Tensor row_loss({2}, DType::kFloat32, gpu), grad({2, cols}, DType::kFloat32, gpu);
    loss_forward_backward(Loss::kCrossEntropy, Tensor::from_vector(z, {2, cols}, gpu),
                          Tensor::from_vector(labels, {2}, gpu), row_loss, &grad);
    const std::vector<float> l = row_loss.to_vector<float>();
    EXPECT_TRUE(std::isfinite(l[0]));
    EXPECT_FLOAT_EQ(l[1], std::log(static_cast<float>(cols)));
    for (float g : grad.to_vector<float>()) ASSERT_TRUE(std::isfinite(g));
    for (Loss loss : {Loss::kKlDiv, Loss::kBce}) {
      const std::vector<float> t = make_target(loss, 2, cols, 9);
      Tensor rl({2}, DType::kFloat32, gpu), gr({2, cols}, DType::kFloat32, gpu);
      loss_forward_backward(loss, Tensor::from_vector(z, {2, cols}, gpu),
                            Tensor::from_vector(t, {2, cols}, gpu), rl, &gr);
      for (float v : rl.to_vector<float>()) EXPECT_TRUE(std::isfinite(v)) << loss_name(loss);
      for (float v : gr.to_vector<float>()) ASSERT_TRUE(std::isfinite(v)) << loss_name(loss);
    }
  }
  // NaN in a row of logits: that row's loss is NaN, the other row's is not.
  std::vector<float> z(2 * 40, 0.5f);
  z[7] = std::nanf("");
  Tensor row_loss({2}, DType::kFloat32, gpu);
  loss_forward_backward(Loss::kCrossEntropy, Tensor::from_vector(z, {2, 40}, gpu),
                        Tensor::from_vector<int32_t>({3, 3}, {2}, gpu), row_loss, nullptr);
  const std::vector<float> l = row_loss.to_vector<float>();
  EXPECT_TRUE(std::isnan(l[0]));
  EXPECT_TRUE(std::isfinite(l[1]));
}

}  // namespace
}  // namespace mlpx
