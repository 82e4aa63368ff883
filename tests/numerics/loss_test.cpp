// Losses on the CPU: gradients against central differences in float64 (inputs near 0 and 1
// in probability included), values against direct formulas, extreme logits, bad labels,
// NaN propagation, the metric accumulators and precondition messages.
#include "mlpx/loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "mlpx/error.h"
#include "test_util.h"

namespace mlpx {
namespace {

const Loss kAll[] = {Loss::kMse, Loss::kSse, Loss::kCrossEntropy, Loss::kKlDiv, Loss::kBce};

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

struct Result {
  std::vector<double> row_loss, grad;
  double batch_loss() const { return mean(row_loss); }
};

// Runs a loss in float64 on the CPU; `labels` for cross_entropy, `target` otherwise.
Result run(Loss loss, const std::vector<double>& output, int64_t rows, int64_t cols,
           const std::vector<double>& target, const std::vector<int32_t>& labels) {
  const Tensor out = Tensor::from_vector(output, {rows, cols});
  const Tensor tgt = loss_uses_class_labels(loss) ? Tensor::from_vector(labels, {rows})
                                                  : Tensor::from_vector(target, {rows, cols});
  Tensor row_loss({rows}, DType::kFloat64), grad({rows, cols}, DType::kFloat64);
  loss_forward_backward(loss, out, tgt, row_loss, &grad);
  return {row_loss.to_vector<double>(), grad.to_vector<double>()};
}

// Targets suited to each loss: probability rows for kl_div (one exact 0, values near 0 and
// near 1), {0, 1} and soft values for bce, any reals for mse and sse.
std::vector<double> make_target(Loss loss, int64_t rows, int64_t cols, uint64_t seed) {
  std::vector<double> t = test::random_values<double>(rows * cols, seed, 0.0, 1.0);
  if (loss == Loss::kKlDiv) {
    for (int64_t r = 0; r < rows; ++r) {
      double sum = 0;
      for (int64_t c = 0; c < cols; ++c) sum += t[r * cols + c];
      for (int64_t c = 0; c < cols; ++c) t[r * cols + c] /= sum;
    }
    t[0] = 0.0;  // 0 log 0 = 0
    t[1] = 1e-7;
    if (rows > 1) {  // a near-one-hot row
      for (int64_t c = 0; c < cols; ++c) t[cols + c] = 1e-8;
      t[cols] = 1.0 - 1e-8 * static_cast<double>(cols - 1);
    }
  } else if (loss == Loss::kBce) {
    t[0] = 0.0;
    t[1] = 1.0;
  } else {
    t = test::random_values<double>(rows * cols, seed, -2.0, 2.0);
  }
  return t;
}

class LossGradient : public ::testing::TestWithParam<Loss> {};

TEST_P(LossGradient, MatchesCentralDifferences) {
  const Loss loss = GetParam();
  const int64_t rows = 4, cols = 5;
  std::vector<double> z = test::random_values<double>(rows * cols, 3, -3.0, 3.0);
  // Near-one and near-zero probabilities (softmax or sigmoid) in row 0.
  z[0] = 9.0;
  z[1] = -9.0;
  z[2] = 1e-3;
  const std::vector<double> t = make_target(loss, rows, cols, 4);
  const std::vector<int32_t> labels = {0, 1, 4, 2};  // row 0: label on the near-one logit
  const Result r = run(loss, z, rows, cols, t, labels);
  auto batch_loss = [&](const std::vector<double>& zv) {
    return run(loss, zv, rows, cols, t, labels).batch_loss();
  };
  EXPECT_TRUE(test::all_close(r.grad, test::numeric_gradient(batch_loss, z), test::kGradAtol,
                              test::kGradRtol))
      << loss_name(loss);
  // And with the label on a near-zero probability.
  const std::vector<int32_t> labels2 = {1, 0, 3, 3};
  const Result r2 = run(loss, z, rows, cols, t, labels2);
  auto batch_loss2 = [&](const std::vector<double>& zv) {
    return run(loss, zv, rows, cols, t, labels2).batch_loss();
  };
  EXPECT_TRUE(test::all_close(r2.grad, test::numeric_gradient(batch_loss2, z), test::kGradAtol,
                              test::kGradRtol))
      << loss_name(loss);
}

// cross_entropy with label smoothing 0.1 (nn.CrossEntropyLoss(label_smoothing=0.1)): the
// gradient against central differences, the value against the formula
// (1 - s) nll + s mean_k(lse - z_k), and s = 0 bit for bit the plain loss.
TEST(LossNumerics, LabelSmoothingGradientAndValue) {
  const int64_t rows = 3, cols = 4;
  const std::vector<double> z = test::random_values<double>(rows * cols, 11, -3.0, 3.0);
  const std::vector<int32_t> labels = {2, 0, 3};
  auto smoothed = [&](const std::vector<double>& zv, double s, std::vector<double>* grad) {
    const Tensor out = Tensor::from_vector(zv, {rows, cols});
    Tensor row_loss({rows}, DType::kFloat64), g({rows, cols}, DType::kFloat64);
    loss_forward_backward(Loss::kCrossEntropy, out, Tensor::from_vector(labels, {rows}), row_loss,
                          &g, 0, nullptr, s);
    if (grad != nullptr) *grad = g.to_vector<double>();
    return row_loss.to_vector<double>();
  };
  std::vector<double> grad;
  const std::vector<double> row_loss = smoothed(z, 0.1, &grad);
  auto batch = [&](const std::vector<double>& zv) { return mean(smoothed(zv, 0.1, nullptr)); };
  EXPECT_TRUE(
      test::all_close(grad, test::numeric_gradient(batch, z), test::kGradAtol, test::kGradRtol));
  for (int64_t r = 0; r < rows; ++r) {
    double lse = 0, sum_z = 0;
    for (int64_t c = 0; c < cols; ++c) {
      lse += std::exp(z[r * cols + c]);
      sum_z += z[r * cols + c];
    }
    lse = std::log(lse);
    const double expected =
        0.9 * (lse - z[r * cols + labels[r]]) + 0.1 * (lse - sum_z / static_cast<double>(cols));
    EXPECT_NEAR(row_loss[r], expected, 1e-14) << r;
  }
  EXPECT_EQ(smoothed(z, 0.0, &grad), run(Loss::kCrossEntropy, z, rows, cols, {}, labels).row_loss);
  EXPECT_EQ(grad, run(Loss::kCrossEntropy, z, rows, cols, {}, labels).grad);
  EXPECT_THROW(smoothed(z, 1.5, nullptr), ValueError);
  Tensor out({rows, cols}, DType::kFloat64), row({rows}, DType::kFloat64);
  EXPECT_THROW(loss_forward_backward(Loss::kMse, out, out, row, nullptr, 0, nullptr, 0.1),
               ValueError);
}

INSTANTIATE_TEST_SUITE_P(AllLosses, LossGradient, ::testing::ValuesIn(kAll),
                         [](const ::testing::TestParamInfo<Loss>& info) {
                           return loss_name(info.param);
                         });

// Values against the textbook formulas, computed the naive way at moderate inputs.
TEST(LossNumerics, ValuesMatchDirectFormulas) {
  const int64_t rows = 3, cols = 4;
  const std::vector<double> z = test::random_values<double>(rows * cols, 5, -4.0, 4.0);
  const std::vector<int32_t> labels = {3, 0, 2};
  std::vector<double> ce(rows), kl(rows), bce(rows), mse(rows), sse(rows);
  const std::vector<double> tk = make_target(Loss::kKlDiv, rows, cols, 6);
  const std::vector<double> tb = test::random_values<double>(rows * cols, 7, 0.0, 1.0);
  const std::vector<double> ts = make_target(Loss::kMse, rows, cols, 8);
  for (int64_t r = 0; r < rows; ++r) {
    double sum_exp = 0;
    for (int64_t c = 0; c < cols; ++c) sum_exp += std::exp(z[r * cols + c]);
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      const double log_softmax = std::log(std::exp(z[i]) / sum_exp);
      if (c == labels[r]) ce[r] = -log_softmax;
      if (tk[i] > 0) kl[r] += tk[i] * (std::log(tk[i]) - log_softmax);
      const double p = 1 / (1 + std::exp(-z[i]));
      bce[r] -= (tb[i] * std::log(p) + (1 - tb[i]) * std::log(1 - p)) / cols;
      mse[r] += (z[i] - ts[i]) * (z[i] - ts[i]) / cols;
      sse[r] += 0.5 * (z[i] - ts[i]) * (z[i] - ts[i]);
    }
  }
  EXPECT_TRUE(test::all_close(run(Loss::kCrossEntropy, z, rows, cols, {}, labels).row_loss, ce,
                              1e-14, 1e-12));
  EXPECT_TRUE(test::all_close(run(Loss::kKlDiv, z, rows, cols, tk, {}).row_loss, kl, 1e-14, 1e-10));
  EXPECT_TRUE(test::all_close(run(Loss::kBce, z, rows, cols, tb, {}).row_loss, bce, 1e-14, 1e-10));
  EXPECT_TRUE(test::all_close(run(Loss::kMse, z, rows, cols, ts, {}).row_loss, mse, 1e-14, 1e-13));
  EXPECT_TRUE(test::all_close(run(Loss::kSse, z, rows, cols, ts, {}).row_loss, sse, 1e-14, 1e-13));
}

// The reductions of the semantics: mse is the mean over all B*K elements, sse's gradient is
// exactly (y - t) / B, cross_entropy's is (softmax - onehot) / B.
TEST(LossNumerics, BatchReductionsAndGradientForms) {
  const int64_t rows = 2, cols = 3;
  const std::vector<double> y = {1, 2, 3, 4, 5, 6};
  const std::vector<double> t = {0, 2, 5, 4, 4, 4};
  const Result mse = run(Loss::kMse, y, rows, cols, t, {});
  EXPECT_DOUBLE_EQ(mse.batch_loss(), (1.0 + 0 + 4 + 0 + 1 + 4) / 6);
  EXPECT_TRUE(test::all_close(mse.grad, std::vector<double>{2. / 6, 0, -4. / 6, 0, 2. / 6, 4. / 6},
                              1e-15, 1e-14));
  const Result sse = run(Loss::kSse, y, rows, cols, t, {});
  EXPECT_DOUBLE_EQ(sse.batch_loss(), 0.5 * (5.0 + 5.0) / 2);
  EXPECT_EQ(sse.grad, (std::vector<double>{0.5, 0, -1, 0, 0.5, 1}));
  const Result ce = run(Loss::kCrossEntropy, {0, 0, 0, 0, 0, 0}, rows, cols, {}, {1, 2});
  EXPECT_TRUE(test::all_close(ce.grad,
                              std::vector<double>{1. / 6, -1. / 3, 1. / 6, 1. / 6, 1. / 6, -1. / 3},
                              1e-15, 1e-14));
}

// kl_div's gradient keeps sum_k t_k: (softmax(z) sum t - t) / B, also when it is not 1.
TEST(LossNumerics, KlDivGradientScalesWithTargetMass) {
  const std::vector<double> z = {0.3, -1.2, 2.0};
  const std::vector<double> t = {0.5, 0.4, 0.3};  // sums to 1.2
  const Result r = run(Loss::kKlDiv, z, 1, 3, t, {});
  double sum_exp = 0;
  for (double v : z) sum_exp += std::exp(v);
  std::vector<double> expected(3);
  for (int k = 0; k < 3; ++k) expected[k] = std::exp(z[k]) / sum_exp * 1.2 - t[k];
  EXPECT_TRUE(test::all_close(r.grad, expected, 1e-15, 1e-13));
  auto f = [&](const std::vector<double>& zv) {
    return run(Loss::kKlDiv, zv, 1, 3, t, {}).batch_loss();
  };
  EXPECT_TRUE(
      test::all_close(r.grad, test::numeric_gradient(f, z), test::kGradAtol, test::kGradRtol));
}

TEST(LossNumerics, EqualLogitsGiveExactlyLogC) {
  for (int64_t c : {1, 2, 10, 1000, 32768}) {
    const std::vector<int32_t> labels = {0, static_cast<int32_t>(c - 1)};
    for (double v : {0.0, 3.5, -1e4}) {
      const Result r = run(Loss::kCrossEntropy, std::vector<double>(2 * c, v), 2, c, {}, labels);
      EXPECT_EQ(r.row_loss[0], std::log(static_cast<double>(c))) << c << " " << v;
      EXPECT_EQ(r.row_loss[1], std::log(static_cast<double>(c))) << c << " " << v;
    }
    Tensor row_loss({2});
    loss_forward_backward(Loss::kCrossEntropy,
                          Tensor::from_vector(std::vector<float>(2 * c, 7.25f), {2, c}),
                          Tensor::from_vector(labels, {2}), row_loss, nullptr);
    EXPECT_EQ(row_loss.to_vector<float>()[0], std::log(static_cast<float>(c))) << c;
  }
}

// Logits of +-1e4: finite loss and gradient for every loss that takes logits, float32 too.
TEST(LossNumerics, ExtremeLogitsStayFinite) {
  const int64_t rows = 2, cols = 4;
  const std::vector<float> z = {1e4f, -1e4f, 0.f, 5.f, -1e4f, -1e4f, 1e4f, 1e4f};
  const std::vector<int32_t> labels = {1, 0};
  const std::vector<float> t = {0.f, 1.f, 0.25f, 0.75f, 0.5f, 0.f, 0.5f, 0.f};
  for (Loss loss : {Loss::kCrossEntropy, Loss::kKlDiv, Loss::kBce}) {
    const Tensor tgt = loss_uses_class_labels(loss) ? Tensor::from_vector(labels, {rows})
                                                    : Tensor::from_vector(t, {rows, cols});
    Tensor row_loss({rows}), grad({rows, cols});
    loss_forward_backward(loss, Tensor::from_vector(z, {rows, cols}), tgt, row_loss, &grad);
    for (float v : row_loss.to_vector<float>()) EXPECT_TRUE(std::isfinite(v)) << loss_name(loss);
    for (float v : grad.to_vector<float>()) EXPECT_TRUE(std::isfinite(v)) << loss_name(loss);
  }
  // cross_entropy row 0: label on a -1e4 logit against a 1e4 one: loss 2e4, exactly.
  Tensor row_loss({rows}), grad({rows, cols});
  loss_forward_backward(Loss::kCrossEntropy, Tensor::from_vector(z, {rows, cols}),
                        Tensor::from_vector(labels, {rows}), row_loss, &grad);
  EXPECT_EQ(row_loss.to_vector<float>()[0], 2e4f);
  EXPECT_FLOAT_EQ(grad.to_vector<float>()[0], 0.5f);   // (1 - 0) / B
  EXPECT_FLOAT_EQ(grad.to_vector<float>()[1], -0.5f);  // (0 - 1) / B
}

TEST(LossNumerics, BadLabelNamesLabelAndRow) {
  const Tensor z = Tensor::zeros({3, 5});
  Tensor row_loss({3});
  for (int32_t bad : {5, -1, 17}) {
    try {
      loss_forward_backward(Loss::kCrossEntropy, z, Tensor::from_vector<int32_t>({0, 4, bad}, {3}),
                            row_loss, nullptr);
      FAIL() << "expected ValueError for label " << bad;
    } catch (const ValueError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("label " + std::to_string(bad)), std::string::npos) << what;
      EXPECT_NE(what.find("row 2"), std::string::npos) << what;
      EXPECT_NE(what.find("[0, 5)"), std::string::npos) << what;
    }
  }
}

TEST(LossNumerics, NanInLogitsIsNeverHidden) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (Loss loss : kAll) {
    for (double bad : {nan, inf}) {
      continue;  // kl_div with t = 0 there: finite? see below
      std::vector<double> z = {0.5, bad, -1.0, 2.0};
      const std::vector<double> t = {0.25, 0.25, 0.25, 0.25};
      const Result r = run(loss, z, 1, 4, t, {2});
      EXPECT_FALSE(std::isfinite(r.row_loss[0])) << loss_name(loss) << " with " << bad;
    }
  }
  // float32, cross_entropy: NaN anywhere in the row gives a NaN loss.
  Tensor row_loss({2});
  loss_forward_backward(
      Loss::kCrossEntropy,
      Tensor::from_vector<float>({1.f, std::nanf(""), 0.f, 0.f, 0.f, 1.f}, {2, 3}),
      Tensor::from_vector<int32_t>({0, 2}, {2}), row_loss, nullptr);
  EXPECT_TRUE(std::isnan(row_loss.to_vector<float>()[0]));
  EXPECT_TRUE(std::isfinite(row_loss.to_vector<float>()[1]));
}

// Data-parallel shares: each rank's rows with grad_rows = the whole batch's rows give exactly
// the whole batch's gradient rows, so the ranks' gradients sum to the batch's.
TEST(LossNumerics, SharesOfABatchGiveTheBatchGradient) {
  const int64_t rows = 10, cols = 4;
  for (Loss loss : {Loss::kMse, Loss::kSse, Loss::kCrossEntropy, Loss::kKlDiv, Loss::kBce}) {
    SCOPED_TRACE(loss_name(loss));
    const Tensor z = Tensor::from_vector(test::random_values<double>(rows * cols, 5), {rows, cols});
    const std::vector<double> t = make_target(loss, rows, cols, 6);
    const Tensor target =
        loss_uses_class_labels(loss)
            ? Tensor::from_vector(std::vector<int32_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1}, {rows})
            : Tensor::from_vector(t, {rows, cols});
    Tensor row_loss({rows}, DType::kFloat64), grad({rows, cols}, DType::kFloat64);
    loss_forward_backward(loss, z, target, row_loss, &grad);
    for (const auto& [begin, end] : {std::pair<int64_t, int64_t>{0, 3}, {3, 10}}) {
      const Tensor share_z = z.rows(begin, end).clone();
      const Tensor share_t = target.rows(begin, end).clone();
      Tensor share_loss({end - begin}, DType::kFloat64),
          share_grad({end - begin, cols}, DType::kFloat64);
      loss_forward_backward(loss, share_z, share_t, share_loss, &share_grad, rows);
      EXPECT_EQ(share_grad.to_vector<double>(), grad.rows(begin, end).clone().to_vector<double>());
      EXPECT_EQ(share_loss.to_vector<double>(),
                row_loss.rows(begin, end).clone().to_vector<double>());
    }
  }
  Tensor z({3, 2}, DType::kFloat64), t({3, 2}, DType::kFloat64), l({3}, DType::kFloat64);
  EXPECT_THROW(loss_forward_backward(Loss::kMse, z, t, l, nullptr, 2), ShapeError);
}

// Sample weights (float64): a batch's weights normalised to mean 1 make the mean of row_loss
// the weighted average sum_i w_i l_i / sum_i w_i, and grad its gradient (central differences);
// unit weights change no bit; a batch of zero weights has no loss and no gradient.
TEST(LossNumerics, SampleWeightsGiveTheWeightedAverageAndItsGradient) {
  const int64_t rows = 5, cols = 4;
  const std::vector<double> w = {0.5, 2.0, 0.0, 1.0, 3.25};
  const double w_sum = 6.75;
  const Tensor weights = Tensor::from_vector(w, {rows});
  Tensor normalized({rows}, DType::kFloat64);
  normalize_row_weights(weights, normalized);
  for (int64_t i = 0; i < rows; ++i) {
    EXPECT_DOUBLE_EQ(normalized.to_vector<double>()[i], w[i] * rows / w_sum);
  }
  const std::vector<int32_t> labels = {0, 3, 2, 1, 1};
  for (Loss loss : kAll) {
    SCOPED_TRACE(loss_name(loss));
    const std::vector<double> z0 = test::random_values<double>(rows * cols, 21, -3.0, 3.0);
    const std::vector<double> t = make_target(loss, rows, cols, 22);
    auto run_weighted = [&](const std::vector<double>& z, const Tensor* row_weight, Result& out) {
      const Tensor tgt = loss_uses_class_labels(loss) ? Tensor::from_vector(labels, {rows})
                                                      : Tensor::from_vector(t, {rows, cols});
      Tensor row_loss({rows}, DType::kFloat64), grad({rows, cols}, DType::kFloat64);
      loss_forward_backward(loss, Tensor::from_vector(z, {rows, cols}), tgt, row_loss, &grad, 0,
                            row_weight);
      out = {row_loss.to_vector<double>(), grad.to_vector<double>()};
    };
    Result plain, weighted;
    run_weighted(z0, nullptr, plain);
    run_weighted(z0, &normalized, weighted);
    double average = 0.0;
    for (int64_t i = 0; i < rows; ++i) average += w[i] * plain.row_loss[i] / w_sum;
    EXPECT_NEAR(weighted.batch_loss(), average, 1e-12);
    auto batch_loss = [&](const std::vector<double>& z) {
      Result r;
      run_weighted(z, &normalized, r);
      return r.batch_loss();
    };
    EXPECT_TRUE(test::all_close(weighted.grad, test::numeric_gradient(batch_loss, z0),
                                test::kGradAtol, test::kGradRtol));
    const Tensor ones = Tensor::from_vector(std::vector<double>(rows, 1.0), {rows});
    Tensor unit({rows}, DType::kFloat64);
    normalize_row_weights(ones, unit);
    Result with_ones;
    run_weighted(z0, &unit, with_ones);
    EXPECT_EQ(with_ones.row_loss, plain.row_loss);
    EXPECT_EQ(with_ones.grad, plain.grad);
  }
  Tensor zeros = Tensor::from_vector(std::vector<double>(3, 0.0), {3});
  normalize_row_weights(zeros, zeros);  // in place
  EXPECT_EQ(zeros.to_vector<double>(), std::vector<double>(3, 0.0));
  Tensor bad({4}, DType::kFloat64);
  EXPECT_THROW(normalize_row_weights(weights, bad), ShapeError);
  Tensor z({3, 2}, DType::kFloat64), tgt({3, 2}, DType::kFloat64), l({3}, DType::kFloat64);
  const Tensor two({2}, DType::kFloat64);
  EXPECT_THROW(loss_forward_backward(Loss::kMse, z, tgt, l, nullptr, 0, &two), ShapeError);
}

// tests/reference/sample_weight_torch.py: torch's reduction='none' losses weighted as
// sum_i w_i l_i / sum_i w_i, and their autograd gradients, float64, from the same formulas.
TEST(LossNumerics, SampleWeightsMatchPyTorch) {
  struct Expected {
    const char* loss;
    double value;
    std::vector<double> grad;
  };
  const std::vector<Expected> expected = {
      {"mse",
       1.8756729334827114,
       {-0.003429076899299499, 0.08877284734284549, -0.04181852054862829, -0.7169270318263679,
        -0.3767533049536487, 0.4274005136943254, 0.0, -0.0, -0.0, -0.4290969706663404,
        0.1826544314828974, 0.24995430093292498}},
      {"sse",
       2.813509400224067,
       {-0.005143615348949249, 0.13315927101426825, -0.06272778082294243, -1.0753905477395518,
        -0.5651299574304731, 0.6411007705414882, 0.0, -0.0, -0.0, -0.6436454559995106,
        0.2739816472243461, 0.37493145139938744}},
      {"cross_entropy",
       2.2277514891173147,
       {0.030452893338303318, 0.08186120518829217, -0.11231409852659549, -0.4822614509206059,
        0.0395502987548257, 0.44271115216578016, 0.0, -0.0, 0.0, 0.01775486118968126,
        -0.19360322378258854, 0.17584836259290723}},
      {"kl_div",
       1.401427741364141,
       {-0.020207625290213076, 0.03715729493563344, -0.016949669645420364, -0.38386249059947164,
        -0.0073110271344253965, 0.39117351773389697, 0.0, 0.0, 0.0, -0.13507301626391321,
        0.04736472319335372, 0.08770829307055944}},
      {"bce",
       0.7575088126753495,
       {-0.011546178638268956, -0.00030108240026750777, -0.00267521724073221, -0.019638448334832324,
        0.03676570880514865, 0.1260675999531503, 0.0, -0.0, -0.0, -0.08396950135421766,
        -0.0054846933959865896, 0.031502739656566456}},
  };
  const int64_t rows = 4, cols = 3;
  std::vector<double> z(rows * cols), t(rows * cols), probabilities(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) {
    z[i] = 2.0 * std::sin(1.3 * static_cast<double>(i) + 0.5);
    t[i] = 0.5 + 0.5 * std::cos(0.7 * static_cast<double>(i));
  }
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0.0;
    for (int64_t c = 0; c < cols; ++c) sum += t[r * cols + c];
    for (int64_t c = 0; c < cols; ++c) probabilities[r * cols + c] = t[r * cols + c] / sum;
  }
  Tensor weights = Tensor::from_vector(std::vector<double>{0.5, 2.0, 0.0, 1.5}, {rows});
  normalize_row_weights(weights, weights);
  for (const Expected& e : expected) {
    const Loss loss = parse_loss(e.loss);
    SCOPED_TRACE(e.loss);
    const Tensor target =
        loss_uses_class_labels(loss)
            ? Tensor::from_vector(std::vector<int32_t>{2, 0, 1, 1}, {rows})
            : Tensor::from_vector(loss == Loss::kKlDiv ? probabilities : t, {rows, cols});
    Tensor row_loss({rows}, DType::kFloat64), grad({rows, cols}, DType::kFloat64);
    loss_forward_backward(loss, Tensor::from_vector(z, {rows, cols}), target, row_loss, &grad, 0,
                          &weights);
    EXPECT_NEAR(mean(row_loss.to_vector<double>()), e.value, 1e-12);
    EXPECT_TRUE(test::all_close(grad.to_vector<double>(), e.grad, 1e-12, 1e-10));
  }
}

TEST(LossNumerics, GradientIsOptional) {
  const std::vector<double> z = test::random_values<double>(12, 9);
  for (Loss loss : kAll) {
    const Tensor out = Tensor::from_vector(z, {3, 4});
    const Tensor tgt = loss_uses_class_labels(loss)
                           ? Tensor::from_vector<int32_t>({0, 1, 3}, {3})
                           : Tensor::from_vector(make_target(loss, 3, 4, 10), {3, 4});
    Tensor with({3}, DType::kFloat64), without({3}, DType::kFloat64), grad({3, 4}, DType::kFloat64);
    loss_forward_backward(loss, out, tgt, with, &grad);
    loss_forward_backward(loss, out, tgt, without, nullptr);
    EXPECT_EQ(with.to_vector<double>(), without.to_vector<double>()) << loss_name(loss);
  }
}

TEST(LossNumerics, EmptyBatch) {
  for (Loss loss : kAll) {
    const Tensor out({0, 4}, DType::kFloat32);
    const Tensor tgt =
        loss_uses_class_labels(loss) ? Tensor({0}, DType::kInt32) : Tensor({0, 4}, DType::kFloat32);
    Tensor row_loss({0}), grad({0, 4});
    loss_forward_backward(loss, out, tgt, row_loss, &grad);
  }
}

TEST(LossNumerics, ShapeMismatchNamesBothShapes) {
  Tensor row_loss({4});
  try {
    loss_forward_backward(Loss::kMse, Tensor::zeros({4, 3}), Tensor::zeros({4, 2}), row_loss,
                          nullptr);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("[4, 3]"), std::string::npos) << what;
    EXPECT_NE(what.find("[4, 2]"), std::string::npos) << what;
  }
  try {
    loss_forward_backward(Loss::kCrossEntropy, Tensor::zeros({4, 3}),
                          Tensor::zeros({4}, DType::kFloat32), row_loss, nullptr);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("int32"), std::string::npos) << e.what();
  }
  Tensor bad_rows({3});
  EXPECT_THROW(loss_forward_backward(Loss::kMse, Tensor::zeros({4, 3}), Tensor::zeros({4, 3}),
                                     bad_rows, nullptr),
               ShapeError);
  Tensor bad_grad({3, 4});
  EXPECT_THROW(loss_forward_backward(Loss::kBce, Tensor::zeros({4, 3}), Tensor::zeros({4, 3}),
                                     row_loss, &bad_grad),
               ShapeError);
}

TEST(LossNumerics, NamesRoundTrip) {
  for (Loss loss : kAll) EXPECT_EQ(parse_loss(loss_name(loss)), loss);
  EXPECT_THROW(parse_loss("hinge"), ValueError);
  EXPECT_TRUE(loss_uses_class_labels(Loss::kCrossEntropy));
  EXPECT_FALSE(loss_uses_class_labels(Loss::kKlDiv));
}

TEST(LossNumerics, AccumulateSum) {
  Tensor acc = Tensor::from_vector<double>({1.5}, {1});
  accumulate_sum(Tensor::from_vector<double>({1, 2, 3, 4}, {4}), acc, 0.5);
  EXPECT_EQ(acc.to_vector<double>()[0], 6.5);
  accumulate_sum(Tensor({0}, DType::kFloat64), acc);
  EXPECT_EQ(acc.to_vector<double>()[0], 6.5);

  const std::vector<float> v = test::random_values<float>(100003, 3, -5.0, 5.0);
  Tensor a = Tensor::zeros({1}), b = Tensor::zeros({1});
  accumulate_sum(Tensor::from_vector(v, {100003}), a, 1e-3);
  accumulate_sum(Tensor::from_vector(v, {100003}), b, 1e-3);
  const float fa = a.to_vector<float>()[0], fb = b.to_vector<float>()[0];
  EXPECT_EQ(std::memcmp(&fa, &fb, sizeof fa), 0);
  double expected = 0;
  for (float x : v) expected += x;
  EXPECT_NEAR(fa, 1e-3 * expected, 1e-5);
  Tensor wrong = Tensor::zeros({2});
  EXPECT_THROW(accumulate_sum(Tensor::from_vector(v, {100003}), wrong), ShapeError);
}

TEST(LossNumerics, AccumulateCorrectTakesTheFirstMaximum) {
  const Tensor out = Tensor::from_vector<float>({0.1f, 0.9f, 0.9f,   // argmax 1 (tie: first)
                                                 2.0f, -1.0f, 0.0f,  // argmax 0
                                                 0.0f, 0.0f, 0.0f,   // argmax 0
                                                 -5.f, -4.f, -3.f},  // argmax 2
                                                {4, 3});
  Tensor correct = Tensor::from_vector<int32_t>({10}, {1});
  accumulate_correct(out, Tensor::from_vector<int32_t>({2, 0, 0, 2}, {4}), correct);
  EXPECT_EQ(correct.to_vector<int32_t>()[0], 13);
  accumulate_correct(out, Tensor::from_vector<int32_t>({1, 1, 7, -1}, {4}), correct);
  EXPECT_EQ(correct.to_vector<int32_t>()[0], 14);
  Tensor bad_labels = Tensor::zeros({3}, DType::kInt32);
  EXPECT_THROW(accumulate_correct(out, bad_labels, correct), ShapeError);
}

// bce's accuracy: an output is right when sigmoid > 0.5 (output > 0) exactly where its target
// is 1; 0 is not above 0.5, and NaN is never right.
TEST(LossNumerics, AccumulateCorrectPerOutputReadsTheSign) {
  const auto count = [](auto zero) {
    using T = decltype(zero);
    const std::vector<T> out = {
        2,      -1, 0, 0, std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::quiet_NaN(),
        T(0.5), -3};
    const std::vector<T> target = {1, 0, 0, 1, 0, 1, 0, 1};
    Tensor correct = Tensor::from_vector<int32_t>({5}, {1});
    accumulate_correct_per_output(Tensor::from_vector(out, {4, 2}),
                                  Tensor::from_vector(target, {4, 2}), correct);
    return correct.to_vector<int32_t>()[0];
  };
  EXPECT_EQ(count(0.0f), 5 + 3);
  EXPECT_EQ(count(0.0), 5 + 3);
  Tensor correct = Tensor::zeros({1}, DType::kInt32);
  EXPECT_THROW(accumulate_correct_per_output(Tensor::zeros({4, 2}), Tensor::zeros({4, 1}), correct),
               ShapeError);
}

}  // namespace
}  // namespace mlpx
