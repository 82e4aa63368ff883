// The cuBLASLt stand-in (cublasLt.h): each epilogue against the formula computed here, on the
// CPU, in the stand-in's documented order (fp32 fma over k ascending), and the documented
// argument rules (the ReLU bit mask's and GELU aux's leading dimensions, required pointers).
// GELU's expected values come from the CPU's formula (src/math/activation.h, gelu_tanh).
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "math/activation.h"
#include "mlpx_sim/counters.h"
#include "mlpx_sim/runtime.h"

namespace {

constexpr int kM = 5, kN = 3, kK = 4;  // D is kM x kN; A kM x kK, B kK x kN (column-major)

template <typename T>
T* to_device(const std::vector<T>& host) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, host.size() * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
            cudaSuccess);
  return static_cast<T*>(p);
}

template <typename T>
std::vector<T> to_host(const T* device, size_t n) {
  std::vector<T> host(n);
  EXPECT_EQ(cudaMemcpy(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return host;
}

class CublasLt : public ::testing::Test {
 protected:
  void SetUp() override {
    mlpx_sim::reset_fault();
    ASSERT_EQ(cublasLtCreate(&handle_), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F_PEDANTIC, CUDA_R_32F),
              CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(cublasLtMatrixLayoutCreate(&a_layout_, CUDA_R_32F, kM, kK, kM),
              CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(cublasLtMatrixLayoutCreate(&b_layout_, CUDA_R_32F, kK, kN, kK),
              CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(cublasLtMatrixLayoutCreate(&d_layout_, CUDA_R_32F, kM, kN, kM),
              CUBLAS_STATUS_SUCCESS);
    for (int i = 0; i < kM * kK; ++i) a_.push_back(0.25f * static_cast<float>((i * 7) % 11) - 1.0f);
    for (int i = 0; i < kK * kN; ++i) b_.push_back(0.5f * static_cast<float>((i * 5) % 7) - 1.5f);
    for (int i = 0; i < kM; ++i) bias_.push_back(0.125f * static_cast<float>(i) - 0.25f);
  }
  void TearDown() override {
    cublasLtMatrixLayoutDestroy(a_layout_);
    cublasLtMatrixLayoutDestroy(b_layout_);
    cublasLtMatrixLayoutDestroy(d_layout_);
    cublasLtMatmulDescDestroy(desc_);
    cublasLtDestroy(handle_);
    mlpx_sim::reset_fault();
  }
  // (A B)(i, j), as the stand-in sums it.
  float product(int i, int j) const {
    float acc = 0.0f;
    for (int p = 0; p < kK; ++p) acc = std::fma(a_[i + p * kM], b_[p + j * kK], acc);
    return acc;
  }
  void set(cublasLtMatmulDescAttributes_t attr, const void* value, size_t size) {
    ASSERT_EQ(cublasLtMatmulDescSetAttribute(desc_, attr, value, size), CUBLAS_STATUS_SUCCESS);
  }
  cublasStatus_t matmul(const float* a, const float* b, float* d) {
    const float one = 1.0f, zero = 0.0f;
    return cublasLtMatmul(handle_, desc_, &one, a, a_layout_, b, b_layout_, &zero, d, d_layout_, d,
                          d_layout_, nullptr, nullptr, 0, nullptr);
  }

  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_layout_ = nullptr, b_layout_ = nullptr, d_layout_ = nullptr;
  std::vector<float> a_, b_, bias_;
};

TEST_F(CublasLt, ReluAuxBiasThenDreluBgradFollowTheFormula) {
  float* a = to_device(a_);
  float* b = to_device(b_);
  float* bias = to_device(bias_);
  float* d = to_device(std::vector<float>(kM * kN, 0.0f));
  const int64_t aux_ld = 128;  // bits: one 128-bit column per column of D
  uint8_t* aux = to_device(std::vector<uint8_t>(aux_ld / 8 * kN, 0xA5));
  uint32_t epilogue = CUBLASLT_EPILOGUE_RELU_AUX_BIAS;
  set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
  set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
  set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof aux);
  set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof aux_ld);
  ASSERT_EQ(matmul(a, b, d), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> out = to_host(d, kM * kN);
  const std::vector<uint8_t> mask = to_host(aux, aux_ld / 8 * kN);
  int positive = 0;
  for (int j = 0; j < kN; ++j) {
    for (int i = 0; i < kM; ++i) {
      const float pre = product(i, j) + bias_[i];
      EXPECT_EQ(out[i + j * kM], pre > 0.0f ? pre : 0.0f) << i << ", " << j;
      const int bit = i + j * static_cast<int>(aux_ld);
      EXPECT_EQ((mask[bit / 8] >> (bit % 8)) & 1, pre > 0.0f ? 1 : 0) << i << ", " << j;
      positive += pre > 0.0f ? 1 : 0;
    }
  }
  EXPECT_GT(positive, 0);
  EXPECT_LT(positive, kM * kN);  // both sides of the ReLU are exercised

  // Backward: the incoming gradient (A B again) times the mask, and its row sums as the bias
  // gradient.
  epilogue = CUBLASLT_EPILOGUE_DRELU_BGRAD;
  set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
  ASSERT_EQ(matmul(a, b, d), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> grad = to_host(d, kM * kN);
  const std::vector<float> bias_grad = to_host(bias, kM);
  for (int i = 0; i < kM; ++i) {
    float sum = 0.0f;
    for (int j = 0; j < kN; ++j) {
      const float pre = product(i, j) + bias_[i];
      const float expected = pre > 0.0f ? product(i, j) : 0.0f;
      EXPECT_EQ(grad[i + j * kM], expected) << i << ", " << j;
      sum += expected;
    }
    EXPECT_EQ(bias_grad[i], sum) << i;
  }
  for (void* p : {static_cast<void*>(a), static_cast<void*>(b), static_cast<void*>(bias),
                  static_cast<void*>(d), static_cast<void*>(aux)})
    cudaFree(p);
}

TEST_F(CublasLt, BgradbSumsOpBOverK) {
  float* a = to_device(a_);
  float* b = to_device(b_);
  float* grad = to_device(std::vector<float>(kN, 0.0f));
  float* d = to_device(std::vector<float>(kM * kN, 0.0f));
  const uint32_t epilogue = CUBLASLT_EPILOGUE_BGRADB;
  set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
  set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, &grad, sizeof grad);
  ASSERT_EQ(matmul(a, b, d), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> out = to_host(d, kM * kN), sums = to_host(grad, kN);
  for (int j = 0; j < kN; ++j) {
    float s = 0.0f;
    for (int p = 0; p < kK; ++p) s += b_[p + j * kK];
    EXPECT_EQ(sums[j], s) << j;
    for (int i = 0; i < kM; ++i) EXPECT_EQ(out[i + j * kM], product(i, j));
  }
  for (void* p : {static_cast<void*>(a), static_cast<void*>(b), static_cast<void*>(grad),
                  static_cast<void*>(d)})
    cudaFree(p);
}

TEST_F(CublasLt, TheAuxLeadingDimensionAndPointersAreChecked) {
  float* a = to_device(a_);
  float* b = to_device(b_);
  float* d = to_device(std::vector<float>(kM * kN, 0.0f));
  uint8_t* aux = to_device(std::vector<uint8_t>(256 / 8 * kN, 0));  // aux_ld 256 bits, kN columns
  uint32_t epilogue = CUBLASLT_EPILOGUE_RELU_AUX;
  set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
  EXPECT_EQ(matmul(a, b, d), CUBLAS_STATUS_INVALID_VALUE);  // no aux pointer
  set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof aux);
  for (const int64_t bad : {int64_t{0}, int64_t{64}, int64_t{200}}) {  // not a multiple of 128
    set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &bad, sizeof bad);
    EXPECT_EQ(matmul(a, b, d), CUBLAS_STATUS_INVALID_VALUE) << bad;
  }
  const int64_t good = 256;
  set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &good, sizeof good);
  EXPECT_EQ(matmul(a, b, d), CUBLAS_STATUS_SUCCESS);
  epilogue = CUBLASLT_EPILOGUE_BIAS;  // needs the bias pointer
  set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
  EXPECT_EQ(matmul(a, b, d), CUBLAS_STATUS_INVALID_VALUE);
  // GELU's aux is fp32 with its leading dimension in elements: a multiple of 8, >= D's rows.
  epilogue = CUBLASLT_EPILOGUE_GELU_AUX;
  set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
  for (const int64_t bad : {int64_t{0}, int64_t{4}, int64_t{12}}) {  // < kM, or not a multiple of 8
    set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &bad, sizeof bad);
    EXPECT_EQ(matmul(a, b, d), CUBLAS_STATUS_INVALID_VALUE) << bad;
  }
  const int64_t gelu_ld = 8;  // 8 floats x kN columns: within the 256 / 8 * kN bytes
  set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &gelu_ld, sizeof gelu_ld);
  EXPECT_EQ(matmul(a, b, d), CUBLAS_STATUS_SUCCESS);
  epilogue = CUBLASLT_EPILOGUE_DGELU_BGRAD;  // needs the bias pointer for the gradient
  set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
  EXPECT_EQ(matmul(a, b, d), CUBLAS_STATUS_INVALID_VALUE);
  const int64_t wrong_size = 0;
  EXPECT_EQ(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_EPILOGUE, &wrong_size,
                                           sizeof wrong_size),
            CUBLAS_STATUS_INVALID_VALUE);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  for (void* p : {static_cast<void*>(a), static_cast<void*>(b), static_cast<void*>(d),
                  static_cast<void*>(aux)})
    cudaFree(p);
}

// bf16 round to nearest even and back, as the test's formula (the stand-in's rule).
uint16_t bf16_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
float float_of(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// bf16 A and B: a bf16 D with an fp32 bias (BIAS_DATA_TYPE) is the fp32 epilogue's result
// rounded once; DRELU into a bf16 D likewise; BGRADB sums op(B)'s bf16 values into an fp32 D's
// type (the default: D's). And the type rules: C and D of one type, a bf16 D only from bf16 A
// and B, a bf16 bias only beside a bf16 D.
TEST_F(CublasLt, Bf16OperandsWriteABf16DRoundedOnceAndSumBgradbInFp32) {
  std::vector<uint16_t> a16, b16;
  for (float v : a_) a16.push_back(bf16_of(v * 1.37f));  // values off the bf16 grid, rounded
  for (float v : b_) b16.push_back(bf16_of(v * 0.71f));
  const auto product16 = [&](int i, int j) {
    float acc = 0.0f;
    for (int p = 0; p < kK; ++p)
      acc = std::fma(float_of(a16[i + p * kM]), float_of(b16[p + j * kK]), acc);
    return acc;
  };
  uint16_t* a = to_device(a16);
  uint16_t* b = to_device(b16);
  float* bias = to_device(bias_);
  uint16_t* d = to_device(std::vector<uint16_t>(kM * kN, 0));
  float* d32 = to_device(std::vector<float>(kM * kN, 0.0f));
  const int64_t aux_ld = 128;
  uint8_t* aux = to_device(std::vector<uint8_t>(aux_ld / 8 * kN, 0));
  cublasLtMatrixLayout_t a_layout = nullptr, b_layout = nullptr, d_layout = nullptr;
  ASSERT_EQ(cublasLtMatrixLayoutCreate(&a_layout, CUDA_R_16BF, kM, kK, kM), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasLtMatrixLayoutCreate(&b_layout, CUDA_R_16BF, kK, kN, kK), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasLtMatrixLayoutCreate(&d_layout, CUDA_R_16BF, kM, kN, kM), CUBLAS_STATUS_SUCCESS);
  const float one = 1.0f, zero = 0.0f;
  const auto run = [&](void* out, cublasLtMatrixLayout_t out_layout) {
    return cublasLtMatmul(handle_, desc_, &one, a, a_layout, b, b_layout, &zero, out, out_layout,
                          out, out_layout, nullptr, nullptr, 0, nullptr);
  };
  uint32_t epilogue = CUBLASLT_EPILOGUE_RELU_AUX_BIAS;
  set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
  set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
  set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof aux);
  set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof aux_ld);
  const int32_t bf16_type = CUDA_R_16BF, fp32_type = CUDA_R_32F;
  set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bf16_type, sizeof bf16_type);
  EXPECT_EQ(run(d32, d_layout_), CUBLAS_STATUS_NOT_SUPPORTED);  // a bf16 bias beside an fp32 D
  set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &fp32_type, sizeof fp32_type);
  EXPECT_EQ(cublasLtMatmul(handle_, desc_, &one, a, a_layout, b, b_layout, &zero, d32, d_layout_, d,
                           d_layout, nullptr, nullptr, 0, nullptr),
            CUBLAS_STATUS_INVALID_VALUE);  // C fp32, D bf16
  ASSERT_EQ(run(d, d_layout), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint16_t> out = to_host(d, kM * kN);
  const std::vector<uint8_t> mask = to_host(aux, aux_ld / 8 * kN);
  int rounded_off = 0;
  for (int j = 0; j < kN; ++j) {
    for (int i = 0; i < kM; ++i) {
      const float pre = product16(i, j) + bias_[i];
      EXPECT_EQ(out[i + j * kM], bf16_of(pre > 0.0f ? pre : 0.0f)) << i << ", " << j;
      const int bit = i + j * static_cast<int>(aux_ld);
      EXPECT_EQ((mask[bit / 8] >> (bit % 8)) & 1, pre > 0.0f ? 1 : 0) << i << ", " << j;
      rounded_off += pre > 0.0f && float_of(bf16_of(pre)) != pre ? 1 : 0;
    }
  }
  EXPECT_GT(rounded_off, 0);  // the rounding is exercised
  epilogue = CUBLASLT_EPILOGUE_DRELU;
  set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
  ASSERT_EQ(run(d, d_layout), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  out = to_host(d, kM * kN);
  for (int j = 0; j < kN; ++j) {
    for (int i = 0; i < kM; ++i) {
      const bool on = product16(i, j) + bias_[i] > 0.0f;
      EXPECT_EQ(out[i + j * kM], on ? bf16_of(product16(i, j)) : 0) << i << ", " << j;
    }
  }
  // BGRADB with an fp32 D: the bias gradient in D's type (BIAS_DATA_TYPE back to the default).
  const int32_t default_type = -1;
  set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &default_type, sizeof default_type);
  epilogue = CUBLASLT_EPILOGUE_BGRADB;
  set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
  ASSERT_EQ(run(d32, d_layout_), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> out32 = to_host(d32, kM * kN), sums = to_host(bias, kN);
  for (int j = 0; j < kN; ++j) {
    float s = 0.0f;
    for (int p = 0; p < kK; ++p) s += float_of(b16[p + j * kK]);
    EXPECT_EQ(sums[j], s) << j;
    for (int i = 0; i < kM; ++i) EXPECT_EQ(out32[i + j * kM], product16(i, j));
  }
  // fp32 operands cannot write a bf16 D.
  epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
  EXPECT_EQ(cublasLtMatmul(handle_, desc_, &one, a, a_layout_, b, b_layout_, &zero, d, d_layout, d,
                           d_layout, nullptr, nullptr, 0, nullptr),
            CUBLAS_STATUS_INVALID_VALUE);
  for (cublasLtMatrixLayout_t l : {a_layout, b_layout, d_layout}) cublasLtMatrixLayoutDestroy(l);
  for (void* p : {static_cast<void*>(a), static_cast<void*>(b), static_cast<void*>(bias),
                  static_cast<void*>(d), static_cast<void*>(aux), static_cast<void*>(d32)})
    cudaFree(p);
}

// GELU_AUX_BIAS writes D = gelu_tanh(A B + bias) and the pre-activation into aux (element
// i + j aux_ld, aux_ld 8 > kM: the padding stays as it was); DGELU_BGRAD then multiplies the
// incoming A B by gelu_tanh's slope at aux and writes each row's sum to the bias pointer; DGELU
// the same without the sums.
TEST_F(CublasLt, GeluAuxBiasThenDgeluBgradFollowTheCpuFormula) {
  float* a = to_device(a_);
  float* b = to_device(b_);
  float* bias = to_device(bias_);
  float* d = to_device(std::vector<float>(kM * kN, 0.0f));
  const int64_t aux_ld = 8;
  const float untouched = -7.0f;
  float* aux = to_device(std::vector<float>(aux_ld * kN, untouched));
  uint32_t epilogue = CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
  set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
  set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
  set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof aux);
  set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof aux_ld);
  ASSERT_EQ(matmul(a, b, d), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> out = to_host(d, kM * kN);
  const std::vector<float> pre = to_host(aux, aux_ld * kN);
  for (int j = 0; j < kN; ++j) {
    for (int i = 0; i < aux_ld; ++i) {
      const float z = product(i % kM, j) + bias_[i % kM];
      if (i >= kM) {
        EXPECT_EQ(pre[i + j * aux_ld], untouched) << i << ", " << j;
        continue;
      }
      EXPECT_EQ(pre[i + j * aux_ld], z) << i << ", " << j;
      EXPECT_EQ(out[i + j * kM], mlpx::math::gelu_tanh(z)) << i << ", " << j;
    }
  }

  for (const uint32_t backward : {CUBLASLT_EPILOGUE_DGELU_BGRAD, CUBLASLT_EPILOGUE_DGELU}) {
    SCOPED_TRACE(backward);
    float* grad = to_device(std::vector<float>(kM, 0.5f));
    epilogue = backward;
    set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
    set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, &grad, sizeof grad);
    ASSERT_EQ(matmul(a, b, d), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<float> dz = to_host(d, kM * kN), sums = to_host(grad, kM);
    for (int i = 0; i < kM; ++i) {
      float sum = 0.0f;
      for (int j = 0; j < kN; ++j) {
        const float expected = product(i, j) * mlpx::math::gelu_tanh_slope(pre[i + j * aux_ld]);
        EXPECT_EQ(dz[i + j * kM], expected) << i << ", " << j;
        sum += expected;
      }
      EXPECT_EQ(sums[i], backward == CUBLASLT_EPILOGUE_DGELU ? 0.5f : sum) << i;
    }
    cudaFree(grad);
  }
  for (void* p : {static_cast<void*>(a), static_cast<void*>(b), static_cast<void*>(bias),
                  static_cast<void*>(d), static_cast<void*>(aux)})
    cudaFree(p);
}

// The heuristic is counted: once per cublasLtMatmulAlgoGetHeuristic, and once per matmul given
// no algorithm (cuBLASLt then queries it inside the call); a matmul given the heuristic's
// algorithm makes no query.
TEST_F(CublasLt, HeuristicQueriesAreCounted) {
  float* a = to_device(a_);
  float* b = to_device(b_);
  float* d = to_device(std::vector<float>(kM * kN, 0.0f));
  cublasLtMatmulPreference_t pref = nullptr;
  ASSERT_EQ(cublasLtMatmulPreferenceCreate(&pref), CUBLAS_STATUS_SUCCESS);
  const uint64_t workspace = 0;
  const uint32_t alignment = 4;
  ASSERT_EQ(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                 &workspace, sizeof workspace),
            CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                 &alignment, sizeof alignment),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                 &workspace, sizeof workspace),
            CUBLAS_STATUS_INVALID_VALUE);  // the wrong size
  const uint64_t before = mlpx_sim::cublaslt_heuristic_queries();
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  ASSERT_EQ(cublasLtMatmulAlgoGetHeuristic(handle_, desc_, a_layout_, b_layout_, d_layout_,
                                           d_layout_, pref, 1, &result, &found),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(found, 1);
  EXPECT_EQ(result.state, CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(result.workspaceSize, 0u);
  EXPECT_EQ(mlpx_sim::cublaslt_heuristic_queries(), before + 1);
  const float one = 1.0f, zero = 0.0f;
  for (int call = 0; call < 2; ++call) {
    ASSERT_EQ(cublasLtMatmul(handle_, desc_, &one, a, a_layout_, b, b_layout_, &zero, d, d_layout_,
                             d, d_layout_, &result.algo, nullptr, 0, nullptr),
              CUBLAS_STATUS_SUCCESS);
  }
  EXPECT_EQ(mlpx_sim::cublaslt_heuristic_queries(), before + 1);
  ASSERT_EQ(matmul(a, b, d), CUBLAS_STATUS_SUCCESS);  // no algorithm
  EXPECT_EQ(mlpx_sim::cublaslt_heuristic_queries(), before + 2);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> out = to_host(d, kM * kN);
  for (int j = 0; j < kN; ++j) {
    for (int i = 0; i < kM; ++i) EXPECT_EQ(out[i + j * kM], product(i, j));
  }
  cublasLtMatmulPreferenceDestroy(pref);
  for (void* p : {static_cast<void*>(a), static_cast<void*>(b), static_cast<void*>(d)}) cudaFree(p);
}

}  // namespace
