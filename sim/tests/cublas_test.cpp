// The simulator's cuBLAS (sim/src/cublas.cpp): column-major GEMM semantics against a double
// reference, beta == 0, TF32 rounding, math modes, stream order, capture, bad arguments.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "mlpx_sim/runtime.h"

namespace {

// A column-major matrix on the host, with its leading dimension.
struct Matrix {
  int rows = 0, cols = 0, ld = 0;
  std::vector<float> data;
  Matrix(int r, int c, int ld_, std::mt19937& rng) : rows(r), cols(c), ld(ld_) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    data.resize(c == 0 ? 1 : static_cast<size_t>(ld) * (c - 1) + r);
    for (float& v : data) v = u(rng);
  }
  float at(int i, int j) const {
    return data[static_cast<size_t>(i) + static_cast<size_t>(j) * ld];
  }
};

float* to_device(const std::vector<float>& v) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, v.size() * sizeof(float)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  return static_cast<float*>(p);
}

std::vector<float> to_host(const float* d, size_t n) {
  std::vector<float> v(n);
  EXPECT_EQ(cudaMemcpy(v.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  return v;
}

class Cublas : public ::testing::Test {
 protected:
  void SetUp() override {
    mlpx_sim::reset_fault();
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(cublasCreate(&handle_), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(cublasSetStream(handle_, stream_), CUBLAS_STATUS_SUCCESS);
  }
  void TearDown() override {
    EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    cublasDestroy(handle_);
    cudaStreamDestroy(stream_);
    mlpx_sim::reset_fault();
  }

  struct Result {
    double max_error = 0.0;  // max over C of |c - ref| / sum_p |a_ip b_pj| (+ |beta c|)
    double normwise = 0.0;   // ||C - ref|| / ||ref|| (Frobenius)
    std::vector<float> c;
  };

  // C = alpha op(A) op(B) + beta C with cublasGemmEx, against a double reference.
  Result run(bool ta, bool tb, int m, int n, int k, float alpha, float beta,
             cublasComputeType_t compute, int pad = 3, bool nan_c = false) {
    std::mt19937 rng(1234 + m * 7 + n * 11 + k * 13 + (ta ? 1 : 0) + (tb ? 2 : 0));
    const Matrix a(ta ? k : m, ta ? m : k, (ta ? k : m) + pad, rng);
    const Matrix b(tb ? n : k, tb ? k : n, (tb ? n : k) + pad, rng);
    Matrix c(m, n, m + pad, rng);
    if (nan_c) std::fill(c.data.begin(), c.data.end(), std::nanf(""));
    const auto op_a = [&](int i, int p) {
      return static_cast<double>(ta ? a.at(p, i) : a.at(i, p));
    };
    const auto op_b = [&](int p, int j) {
      return static_cast<double>(tb ? b.at(j, p) : b.at(p, j));
    };
    float* da = to_device(a.data);
    float* db = to_device(b.data);
    float* dc = to_device(c.data);
    EXPECT_EQ(cublasGemmEx(handle_, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                           m, n, k, &alpha, da, CUDA_R_32F, a.ld, db, CUDA_R_32F, b.ld, &beta, dc,
                           CUDA_R_32F, c.ld, compute, CUBLAS_GEMM_DEFAULT),
              CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    Result r;
    r.c = to_host(dc, c.data.size());
    double diff2 = 0.0, ref2 = 0.0;
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < m; ++i) {
        double ref = 0.0, scale = 0.0;
        for (int p = 0; p < k; ++p) {
          ref += op_a(i, p) * op_b(p, j);
          scale += std::fabs(op_a(i, p) * op_b(p, j));
        }
        ref *= alpha;
        scale *= std::fabs(alpha);
        if (beta != 0.0f) {
          ref += static_cast<double>(beta) * c.at(i, j);
          scale += std::fabs(static_cast<double>(beta) * c.at(i, j));
        }
        const double got = r.c[static_cast<size_t>(i) + static_cast<size_t>(j) * c.ld];
        r.max_error = std::max(r.max_error, std::fabs(got - ref) / std::max(scale, 1e-30));
        diff2 += (got - ref) * (got - ref);
        ref2 += ref * ref;
      }
      // The padding rows between m and ldc are untouched.
      for (int i = m; i < c.ld && j + 1 < n; ++i)
        EXPECT_EQ(std::memcmp(&r.c[i + static_cast<size_t>(j) * c.ld],
                              &c.data[i + static_cast<size_t>(j) * c.ld], 4),
                  0);
    }
    r.normwise = std::sqrt(diff2 / std::max(ref2, 1e-300));
    cudaFree(da);
    cudaFree(db);
    cudaFree(dc);
    return r;
  }

  cudaStream_t stream_ = nullptr;
  cublasHandle_t handle_ = nullptr;
};

TEST_F(Cublas, GemmExMatchesDoubleReferenceForAllOps) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const Result r = run(ta, tb, 7, 5, 9, 1.5f, -0.75f, CUBLAS_COMPUTE_32F_PEDANTIC);
      EXPECT_LT(r.max_error, 1e-6) << "transa " << ta << " transb " << tb;
      const Result r2 = run(ta, tb, 13, 1, 3, 1.0f, 0.0f, CUBLAS_COMPUTE_32F, 1);
      EXPECT_LT(r2.max_error, 1e-6) << "transa " << ta << " transb " << tb;
    }
}

TEST_F(Cublas, BetaZeroIgnoresC) {
  const Result r = run(false, true, 6, 4, 5, 2.0f, 0.0f, CUBLAS_COMPUTE_32F_PEDANTIC, 2, true);
  EXPECT_LT(r.max_error, 1e-6);
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 6; ++i) EXPECT_FALSE(std::isnan(r.c[i + j * 8]));
}

TEST_F(Cublas, KZeroScalesC) {
  const Result r = run(false, false, 4, 3, 0, 1.0f, 0.5f, CUBLAS_COMPUTE_32F_PEDANTIC);
  EXPECT_LT(r.max_error, 1e-7);
}

TEST_F(Cublas, Tf32RoundsInputsPedanticDoesNot) {
  const Result fp32 = run(false, false, 33, 17, 256, 1.0f, 0.0f, CUBLAS_COMPUTE_32F_PEDANTIC);
  const Result tf32 = run(false, false, 33, 17, 256, 1.0f, 0.0f, CUBLAS_COMPUTE_32F_FAST_TF32);
  // fp32: about one ulp; TF32: the 2^-11 rounding of every input shows, around 1e-4..1e-3.
  EXPECT_LT(fp32.normwise, 1e-6);
  EXPECT_LT(fp32.max_error, 1e-6);
  EXPECT_GT(tf32.normwise, 1e-4);
  EXPECT_LT(tf32.normwise, 1e-3);
  EXPECT_GT(tf32.max_error, 1e-5);
  std::printf("relative error (normwise, max over |ab| sums): fp32 %.3g, %.3g; tf32 %.3g, %.3g\n",
              fp32.normwise, fp32.max_error, tf32.normwise, tf32.max_error);
}

TEST_F(Cublas, MathModeDecidesForCompute32F) {
  const Result plain = run(true, false, 9, 9, 128, 1.0f, 0.0f, CUBLAS_COMPUTE_32F);
  EXPECT_LT(plain.normwise, 1e-6);
  ASSERT_EQ(cublasSetMathMode(handle_, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);
  const Result tf32 = run(true, false, 9, 9, 128, 1.0f, 0.0f, CUBLAS_COMPUTE_32F);
  EXPECT_GT(tf32.normwise, 1e-4);
  // The pedantic compute type never uses TF32, whatever the handle's mode.
  const Result pedantic = run(true, false, 9, 9, 128, 1.0f, 0.0f, CUBLAS_COMPUTE_32F_PEDANTIC);
  EXPECT_LT(pedantic.normwise, 1e-6);
  ASSERT_EQ(cublasSetMathMode(handle_, CUBLAS_PEDANTIC_MATH), CUBLAS_STATUS_SUCCESS);
  const Result fast = run(true, false, 9, 9, 128, 1.0f, 0.0f, CUBLAS_COMPUTE_32F_FAST_TF32);
  EXPECT_GT(fast.normwise, 1e-4);
}

TEST(Tf32, RoundsToNearestEven) {
  const auto f = [](uint32_t bits) {
    float x;
    std::memcpy(&x, &bits, 4);
    return x;
  };
  const auto bits = [](float x) {
    uint32_t b;
    std::memcpy(&b, &x, 4);
    return b;
  };
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties to the even mantissa, 1.
  EXPECT_EQ(mlpx_sim::round_to_tf32(1.0f + std::ldexp(1.0f, -11)), 1.0f);
  // 1 + 3 * 2^-11: halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even): up.
  EXPECT_EQ(mlpx_sim::round_to_tf32(1.0f + 3 * std::ldexp(1.0f, -11)), 1.0f + std::ldexp(1.0f, -9));
  // Just above half: up; just below: down.
  EXPECT_EQ(bits(mlpx_sim::round_to_tf32(f(0x3f801001u))), 0x3f802000u);
  EXPECT_EQ(bits(mlpx_sim::round_to_tf32(f(0x3f800fffu))), 0x3f800000u);
  EXPECT_EQ(bits(mlpx_sim::round_to_tf32(f(0xbf801001u))), 0xbf802000u);  // sign kept
  // Exact TF32 values, infinities and NaN are unchanged; the largest float rounds to infinity.
  EXPECT_EQ(mlpx_sim::round_to_tf32(0.75f), 0.75f);
  EXPECT_TRUE(std::isinf(mlpx_sim::round_to_tf32(INFINITY)));
  EXPECT_TRUE(std::isnan(mlpx_sim::round_to_tf32(NAN)));
  EXPECT_TRUE(std::isinf(mlpx_sim::round_to_tf32(f(0x7f7fffffu))));
}

TEST_F(Cublas, SgemmUsesTf32OnlyInTf32MathMode) {
  std::mt19937 rng(7);
  const Matrix a(8, 64, 8, rng), b(64, 8, 64, rng);
  float* da = to_device(a.data);
  float* db = to_device(b.data);
  float* dc = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&dc), 64 * sizeof(float)), cudaSuccess);
  const float one = 1.0f, zero = 0.0f;
  ASSERT_EQ(
      cublasSgemm(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 64, &one, da, 8, db, 64, &zero, dc, 8),
      CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  const std::vector<float> plain = to_host(dc, 64);
  ASSERT_EQ(cublasSetMathMode(handle_, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(
      cublasSgemm(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 64, &one, da, 8, db, 64, &zero, dc, 8),
      CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  const std::vector<float> tf32 = to_host(dc, 64);
  EXPECT_NE(plain, tf32);
  // The plain SGEMM is fp32 with fma in k order: exactly this loop.
  for (int i = 0; i < 8; ++i) {
    float acc = 0.0f;
    for (int p = 0; p < 64; ++p) acc = std::fma(a.at(i, p), b.at(p, 0), acc);
    EXPECT_EQ(plain[i], acc);
  }
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);
}

TEST_F(Cublas, RunsAsStreamWorkAndCaptures) {
  std::vector<float> a = {1, 2, 3, 4}, b = {1, 0, 0, 1};  // 2x2 column-major, b = I
  float* da = to_device(a);
  float* db = to_device(b);
  float* dc = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&dc), 4 * sizeof(float)), cudaSuccess);
  const float one = 1.0f, zero = 0.0f;
  std::vector<float> host(4, 0.0f);
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  ASSERT_EQ(cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, da, CUDA_R_32F, 2, db,
                         CUDA_R_32F, 2, &zero, dc, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F_PEDANTIC,
                         CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaMemcpyAsync(host.data(), dc, 16, cudaMemcpyDeviceToHost, stream_), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream_, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, stream_), cudaSuccess);
  EXPECT_EQ(host, std::vector<float>(4, 0.0f));  // not run before the synchronisation
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(host, a);
  // The replay reads A as it is then.
  const std::vector<float> a2 = {5, 6, 7, 8};
  ASSERT_EQ(cudaMemcpy(da, a2.data(), 16, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, stream_), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(host, a2);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);
}

TEST_F(Cublas, BadArguments) {
  const float one = 1.0f;
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 64 * sizeof(float)), cudaSuccess);
  // lda below the rows of A.
  EXPECT_EQ(
      cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, d, CUDA_R_32F, 3, d,
                   CUDA_R_32F, 4, &one, d, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(
      cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, -1, 4, 4, &one, d, CUDA_R_32F, 4, d,
                   CUDA_R_32F, 4, &one, d, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(
      cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, d, CUDA_R_16F, 4, d,
                   CUDA_R_32F, 4, &one, d, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      CUBLAS_STATUS_NOT_SUPPORTED);
  EXPECT_EQ(
      cublasGemmEx(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, d, CUDA_R_32F, 4, d,
                   CUDA_R_32F, 4, &one, d, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      CUBLAS_STATUS_NOT_INITIALIZED);
  EXPECT_STREQ(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE");
  EXPECT_STREQ(cublasGetStatusString(CUBLAS_STATUS_SUCCESS), "success");
  // An operand that reaches past its allocation: an illegal address when the GEMM runs.
  ASSERT_EQ(
      cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, d, CUDA_R_32F, 9, d,
                   CUDA_R_32F, 8, &one, d, CUDA_R_32F, 8, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      CUBLAS_STATUS_SUCCESS);
  testing::internal::CaptureStderr();
  EXPECT_EQ(cudaStreamSynchronize(stream_), cudaErrorIllegalAddress);
  const std::string printed = testing::internal::GetCapturedStderr();
  EXPECT_NE(printed.find("cublasGemmEx"), std::string::npos) << printed;
  EXPECT_NE(printed.find("A: "), std::string::npos) << printed;
  mlpx_sim::reset_fault();
  cudaFree(d);
}

TEST_F(Cublas, WorkspaceMustBeDeviceMemory) {
  void* ws = nullptr;
  ASSERT_EQ(cudaMalloc(&ws, 1024), cudaSuccess);
  EXPECT_EQ(cublasSetWorkspace(handle_, ws, 1024), CUBLAS_STATUS_SUCCESS);
  std::vector<char> host(1024);
  EXPECT_EQ(cublasSetWorkspace(handle_, host.data(), 1024), CUBLAS_STATUS_INVALID_VALUE);
  cudaFree(ws);
}

}  // namespace
