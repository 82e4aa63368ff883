// The Linear layer on the CPU: forward against a naive loop, dW, db and dx against central
// differences in float64, the bias-gradient reduction's determinism, and preconditions.
#include "mlpx/linear.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "mlpx/error.h"
#include "test_util.h"

namespace mlpx {
namespace {

struct Layer {
  int64_t batch, in, out;
  std::vector<double> x, w, b;

  std::vector<double> forward(const std::vector<double>& xv, const std::vector<double>& wv,
                              const std::vector<double>& bv) const {
    Tensor y({batch, out}, DType::kFloat64);
    linear_forward(Tensor::from_vector(xv, {batch, in}), Tensor::from_vector(wv, {out, in}),
                   Tensor::from_vector(bv, {out}), y);
    return y.to_vector<double>();
  }
};

Layer make_layer(int64_t batch, int64_t in, int64_t out, uint64_t seed) {
  return {batch,
          in,
          out,
          test::random_values<double>(batch * in, seed),
          test::random_values<double>(out * in, seed + 1),
          test::random_values<double>(out, seed + 2)};
}

TEST(LinearNumerics, ForwardMatchesNaiveLoop) {
  const Layer l = make_layer(5, 7, 3, 1);
  std::vector<double> expected(l.batch * l.out);
  for (int64_t i = 0; i < l.batch; ++i)
    for (int64_t o = 0; o < l.out; ++o) {
      double s = l.b[o];
      for (int64_t k = 0; k < l.in; ++k) s += l.x[i * l.in + k] * l.w[o * l.in + k];
      expected[i * l.out + o] = s;
    }
  EXPECT_TRUE(test::all_close(l.forward(l.x, l.w, l.b), expected, 1e-14, 1e-13));
}

// L = sum(g * y) for a fixed random g; dW, db and dx from linear_backward(dy = g).
TEST(LinearNumerics, GradientsMatchCentralDifferences) {
  for (const auto& [batch, in, out] :
       std::vector<std::array<int64_t, 3>>{{4, 3, 5}, {1, 1, 1}, {6, 1, 4}, {3, 8, 1}}) {
    SCOPED_TRACE(::testing::Message() << "batch " << batch << " in " << in << " out " << out);
    const Layer l = make_layer(batch, in, out, 7);
    const std::vector<double> g = test::random_values<double>(batch * out, 9);
    auto loss = [&](const std::vector<double>& y) {
      double s = 0;
      for (size_t i = 0; i < y.size(); ++i) s += g[i] * y[i];
      return s;
    };
    Tensor dw({out, in}, DType::kFloat64), db({out}, DType::kFloat64),
        dx({batch, in}, DType::kFloat64);
    linear_backward(Tensor::from_vector(l.x, {batch, in}), Tensor::from_vector(l.w, {out, in}),
                    Tensor::from_vector(g, {batch, out}), dw, db, &dx);
    const auto num_dw = test::numeric_gradient(
        [&](const std::vector<double>& w) { return loss(l.forward(l.x, w, l.b)); }, l.w);
    const auto num_db = test::numeric_gradient(
        [&](const std::vector<double>& b) { return loss(l.forward(l.x, l.w, b)); }, l.b);
    const auto num_dx = test::numeric_gradient(
        [&](const std::vector<double>& x) { return loss(l.forward(x, l.w, l.b)); }, l.x);
    EXPECT_TRUE(test::all_close(dw.to_vector<double>(), num_dw, test::kGradAtol, test::kGradRtol))
        << "dW";
    EXPECT_TRUE(test::all_close(db.to_vector<double>(), num_db, test::kGradAtol, test::kGradRtol))
        << "db";
    EXPECT_TRUE(test::all_close(dx.to_vector<double>(), num_dx, test::kGradAtol, test::kGradRtol))
        << "dx";
  }
}

TEST(LinearNumerics, BackwardWithoutDxAndOverwrites) {
  const Layer l = make_layer(3, 4, 2, 3);
  const std::vector<double> g = test::random_values<double>(6, 4);
  Tensor dw = Tensor::from_vector(std::vector<double>(8, 123.0), {2, 4});
  Tensor db = Tensor::from_vector(std::vector<double>(2, 123.0), {2});
  linear_backward(Tensor::from_vector(l.x, {3, 4}), Tensor::from_vector(l.w, {2, 4}),
                  Tensor::from_vector(g, {3, 2}), dw, db, nullptr);
  std::vector<double> expected_db(2, 0.0), expected_dw(8, 0.0);
  for (int i = 0; i < 3; ++i)
    for (int o = 0; o < 2; ++o) {
      expected_db[o] += g[i * 2 + o];
      for (int k = 0; k < 4; ++k) expected_dw[o * 4 + k] += g[i * 2 + o] * l.x[i * 4 + k];
    }
  EXPECT_TRUE(test::all_close(db.to_vector<double>(), expected_db, 1e-14, 1e-13));
  EXPECT_TRUE(test::all_close(dw.to_vector<double>(), expected_dw, 1e-14, 1e-13));
}

TEST(LinearNumerics, EmptyBatchGivesZeroGradients) {
  Tensor x({0, 3}), w = Tensor::zeros({2, 3}), b = Tensor::zeros({2}), y({0, 2});
  linear_forward(x, w, b, y);
  Tensor dw = Tensor::from_vector(std::vector<float>(6, 5.0f), {2, 3});
  Tensor db = Tensor::from_vector(std::vector<float>(2, 5.0f), {2});
  Tensor dx({0, 3});
  linear_backward(x, w, y, dw, db, &dx);
  EXPECT_EQ(dw.to_vector<float>(), std::vector<float>(6, 0.0f));
  EXPECT_EQ(db.to_vector<float>(), std::vector<float>(2, 0.0f));
}

TEST(LinearNumerics, AddBiasAndSumRows) {
  Tensor y = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  add_bias(y, Tensor::from_vector<double>({10, 20, 30}, {3}));
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{11, 22, 33, 14, 25, 36}));
  Tensor sums({3}, DType::kFloat64);
  sum_rows(y, sums);
  EXPECT_EQ(sums.to_vector<double>(), (std::vector<double>{25, 47, 69}));
}

// The bias gradient is a fixed-order reduction: the same bits every time, and close to the
// plain sum.
TEST(LinearNumerics, SumRowsIsDeterministic) {
  const int64_t rows = 4099, cols = 37;
  const std::vector<float> x = test::random_values<float>(rows * cols, 5, -10.0, 10.0);
  const Tensor xt = Tensor::from_vector(x, {rows, cols});
  Tensor a({cols}), b({cols});
  sum_rows(xt, a);
  sum_rows(xt, b);
  const std::vector<float> va = a.to_vector<float>(), vb = b.to_vector<float>();
  EXPECT_EQ(std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)), 0);
  std::vector<double> expected(cols, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) expected[c] += x[r * cols + c];
  EXPECT_TRUE(test::all_close(va, expected, 1e-3, 1e-4));
}

TEST(LinearNumerics, ShapeMismatchNamesBothShapes) {
  const Tensor x = Tensor::zeros({4, 3}), w = Tensor::zeros({2, 5}), b = Tensor::zeros({2});
  Tensor y = Tensor::zeros({4, 2});
  try {
    linear_forward(x, w, b, y);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("[2, 3]"), std::string::npos) << what;  // expected weight
    EXPECT_NE(what.find("[2, 5]"), std::string::npos) << what;  // found weight
  }
  const Tensor w_ok = Tensor::zeros({2, 3});
  EXPECT_THROW(linear_forward(x, w_ok, Tensor::zeros({3}), y), ShapeError);
  Tensor y_bad = Tensor::zeros({4, 3});
  EXPECT_THROW(linear_forward(x, w_ok, b, y_bad), ShapeError);
  Tensor dw = Tensor::zeros({2, 3}), db = Tensor::zeros({2}), dx_bad = Tensor::zeros({3, 3});
  EXPECT_THROW(linear_backward(x, w_ok, y, dw, db, &dx_bad), ShapeError);
  Tensor db64 = Tensor::zeros({2}, DType::kFloat64);
  EXPECT_THROW(linear_backward(x, w_ok, y, dw, db64, nullptr), ShapeError);
  Tensor sums = Tensor::zeros({4});
  EXPECT_THROW(sum_rows(x, sums), ShapeError);
}

}  // namespace
}  // namespace mlpx
