// Helpers shared by the test suites.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "mlpx/device.h"
#include "mlpx/tensor.h"

// GPU tests skip, never fail, where no CUDA device can be used.
#define MLPX_REQUIRE_CUDA()                                                           \
  do {                                                                                \
    if (!::mlpx::cuda_available())                                                    \
      GTEST_SKIP() << (::mlpx::built_with_cuda() ? "no usable CUDA device"            \
                                                 : "built without the CUDA backend"); \
  } while (0)

namespace mlpx::test {

// A fixture with a fresh folder /tmp/<prefix>-XXXXXX per test, removed with its contents after.
class TempDirTest : public ::testing::Test {
 protected:
  explicit TempDirTest(std::string prefix = "mlpx-test") : prefix_(std::move(prefix)) {}
  void SetUp() override {
    std::string pattern = "/tmp/" + prefix_ + "-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const {
    return (std::filesystem::path(dir_) / name).string();
  }

  std::string prefix_;
  std::string dir_;
};

// Values uniform in [lo, hi) from a seeded std::mt19937_64 (test inputs only).
template <typename T>
std::vector<T> random_values(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> out(n);
  for (auto& v : out) v = static_cast<T>(dist(gen));
  return out;
}

// Passes when |actual - expected| <= atol + rtol * |expected| everywhere (NaN never passes);
// on failure names the first few elements that fail, with their indices.
template <typename A, typename B>
::testing::AssertionResult all_close(const std::vector<A>& actual, const std::vector<B>& expected,
                                     double atol, double rtol) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure()
           << "expected " << expected.size() << " values, found " << actual.size();
  }
  std::ostringstream faults;
  int count = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double a = static_cast<double>(actual[i]), e = static_cast<double>(expected[i]);
    const bool ok = std::abs(a - e) <= atol + rtol * std::abs(e);
    if (!ok) {
      if (count < 5) faults << " [" << i << "] " << a << " vs " << e << ";";
      ++count;
    }
  }
  if (count == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << count << " of " << actual.size() << " values differ beyond atol " << atol << " + rtol "
         << rtol << ":" << faults.str();
}

// ||actual - reference|| / ||reference|| (2-norms, in float64): the accuracy of a whole result,
// as the precision tests (tf32, bf16) state their tolerances.
template <typename A, typename B>
double relative_error(const std::vector<A>& actual, const std::vector<B>& reference) {
  double num = 0, den = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    const double d = static_cast<double>(actual[i]) - static_cast<double>(reference[i]);
    num += d * d;
    den += static_cast<double>(reference[i]) * static_cast<double>(reference[i]);
  }
  return std::sqrt(num / den);
}

// The gradient check's rule (float64, central differences with step kGradEps): pass when
// |analytic - numeric| <= kGradAtol + kGradRtol |numeric|, i.e. all_close(analytic, numeric,
// kGradAtol, kGradRtol).
inline constexpr double kGradEps = 1e-6;
inline constexpr double kGradAtol = 1e-5;
inline constexpr double kGradRtol = 1e-3;

// Central differences of a scalar function f at x, one coordinate at a time.
inline std::vector<double> numeric_gradient(
    const std::function<double(const std::vector<double>&)>& f, std::vector<double> x) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double xi = x[i];
    x[i] = xi + kGradEps;
    const double plus = f(x);
    x[i] = xi - kGradEps;
    const double minus = f(x);
    x[i] = xi;
    g[i] = (plus - minus) / (2 * kGradEps);
  }
  return g;
}

}  // namespace mlpx::test
