// precision "tf32": GEMMs on TF32 tensor cores, against a float64 CPU reference, by
// ||out - ref|| / ||ref|| (tf32 lands near 3e-4; fp32 far below it).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "mlpx/gemm.h"
#include "test_util.h"

namespace mlpx {
namespace {

TEST(Tf32Parity, GemmIsWithinTf32ToleranceAndFp32IsExact) {
  MLPX_REQUIRE_CUDA();
  // Multiples of 16: shapes cuBLAS may legally run on non-tensor-core kernels (odd ones) would
  // make the TF32 check pass or fail by cuBLAS's choice, not by the compute type.
  const int64_t m = 128, n = 64, k = 1024;
  const auto a = test::random_values<float>(m * k, 41), b = test::random_values<float>(n * k, 42);
  std::vector<double> ref(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p)
        ref[i * n + j] += static_cast<double>(a[i * k + p]) * static_cast<double>(b[j * k + p]);
  const Tensor ga = Tensor::from_vector(a, {m, k}, Device::cuda());
  const Tensor gb = Tensor::from_vector(b, {n, k}, Device::cuda());
  Tensor c({m, n}, DType::kFloat32, Device::cuda());

  gemm(ga, false, gb, true, c);
  const auto fp32 = c.to_vector<float>();
  EXPECT_LT(test::relative_error(fp32, ref), 1e-5);

  gemm(ga, false, gb, true, c, 1.0, 0.0, Precision::kTf32);
  const auto tf32 = c.to_vector<float>();
  const double err = test::relative_error(tf32, ref);
  EXPECT_LT(err, 1e-3);
  EXPECT_GT(err, 1e-5) << "tf32 gave fp32 accuracy: the compute type did not take effect";

  gemm(ga, false, gb, true, c);  // back to fp32: the same bits as before
  EXPECT_EQ(c.to_vector<float>(), fp32);
}

}  // namespace
}  // namespace mlpx
