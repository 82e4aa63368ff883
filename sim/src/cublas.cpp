// The simulator's cuBLAS (cublas_v2.h): handles, and SGEMM / GemmEx in fp32 as stream work.
// See sim/README.md ("cuBLAS").
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime_api.h"
#include "mlpx_sim/launch_count.h"
#include "mlpx_sim/runtime.h"

struct cublasContext {
  cudaStream_t stream = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace mlpx_sim {

float round_to_tf32(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7f800000u) == 0x7f800000u) return x;  // NaN, infinity
  // Keep 10 of the 23 mantissa bits: add half of the dropped range (minus one when the kept
  // part is even, so that a tie goes to even), then truncate. A carry into the exponent is the
  // correct rounding, up to infinity.
  const uint32_t lsb = (bits >> 13) & 1u;
  bits += 0x0fffu + lsb;
  bits &= ~0x1fffu;
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

namespace {

bool tf32_disabled_by_environment() {
  // cuBLAS honours NVIDIA_TF32_OVERRIDE=0: no TF32 anywhere.
  static const bool disabled = [] {
    const char* v = std::getenv("NVIDIA_TF32_OVERRIDE");
    return v != nullptr && std::strcmp(v, "0") == 0;
  }();
  return disabled;
}

struct Gemm {
  bool trans_a, trans_b;
  int m, n, k;
  float alpha, beta;
  const void* a;  // float, or bfloat16 bits (uint16_t) when bf16_inputs
  int lda;
  const void* b;
  int ldb;
  float* c;
  int ldc;
  bool tf32;
  bool bf16_inputs = false;
};

// Element i of a GEMM input: a float, or the float32 whose top half is the bfloat16 (exact).
float input_at(const void* base, size_t i, bool bf16) {
  if (!bf16) return static_cast<const float*>(base)[i];
  const uint32_t bits = static_cast<uint32_t>(static_cast<const uint16_t*>(base)[i]) << 16;
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

// Elements a column-major operand spans: ld * (cols - 1) + rows.
size_t extent(int rows, int cols, int ld) {
  if (rows == 0 || cols == 0) return 0;
  return static_cast<size_t>(ld) * static_cast<size_t>(cols - 1) + static_cast<size_t>(rows);
}

void run_gemm(const Gemm& g, const std::string& what) {
  mlpx_sim::detail::count_gemm();
  const bool reads_ab = g.k > 0 && g.alpha != 0.0f;
  std::string why;
  // op(A) is m x k: A is m x k (N) or k x m (T); op(B) is k x n: B is k x n (N) or n x k (T).
  const size_t a_elems = g.trans_a ? extent(g.k, g.m, g.lda) : extent(g.m, g.k, g.lda);
  const size_t b_elems = g.trans_b ? extent(g.n, g.k, g.ldb) : extent(g.k, g.n, g.ldb);
  const size_t c_elems = extent(g.m, g.n, g.ldc);
  const size_t in_bytes = g.bf16_inputs ? sizeof(uint16_t) : sizeof(float);
  if (reads_ab && !check_device_range(g.a, a_elems * in_bytes, why)) {
    raise_fault(cudaErrorIllegalAddress, what + ": A: " + why);
    return;
  }
  if (reads_ab && !check_device_range(g.b, b_elems * in_bytes, why)) {
    raise_fault(cudaErrorIllegalAddress, what + ": B: " + why);
    return;
  }
  if (!check_device_range(g.c, c_elems * sizeof(float), why)) {
    raise_fault(cudaErrorIllegalAddress, what + ": C: " + why);
    return;
  }
  const auto m = static_cast<size_t>(g.m), n = static_cast<size_t>(g.n),
             k = static_cast<size_t>(g.k);
  // op(A) row by row and op(B) column by column, each contiguous in k (rounded if TF32).
  std::vector<float> a_rows, b_cols;
  if (reads_ab) {
    a_rows.resize(m * k);
    b_cols.resize(n * k);
    const auto in = [&](const void* base, size_t i) {
      const float v = input_at(base, i, g.bf16_inputs);
      return g.tf32 ? round_to_tf32(v) : v;
    };
    for (size_t i = 0; i < m; ++i)
      for (size_t p = 0; p < k; ++p)
        a_rows[i * k + p] = in(g.a, g.trans_a ? p + i * static_cast<size_t>(g.lda)
                                              : i + p * static_cast<size_t>(g.lda));
    for (size_t j = 0; j < n; ++j)
      for (size_t p = 0; p < k; ++p)
        b_cols[j * k + p] = in(g.b, g.trans_b ? j + p * static_cast<size_t>(g.ldb)
                                              : p + j * static_cast<size_t>(g.ldb));
  }
  for (size_t j = 0; j < n; ++j) {
    for (size_t i = 0; i < m; ++i) {
      float acc = 0.0f;
      if (reads_ab) {
        const float* ar = &a_rows[i * k];
        const float* bc = &b_cols[j * k];
        for (size_t p = 0; p < k; ++p) acc = std::fma(ar[p], bc[p], acc);  // k ascending
      }
      float& out = g.c[i + j * static_cast<size_t>(g.ldc)];
      // beta == 0: C is not read (NaN in C does not propagate), as in cuBLAS.
      out = g.beta == 0.0f ? g.alpha * acc : std::fma(g.beta, out, g.alpha * acc);
    }
  }
}

bool valid_op(cublasOperation_t op) {
  return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C;
}

cublasStatus_t gemm(cublasHandle_t handle, const char* api, cublasOperation_t transa,
                    cublasOperation_t transb, int m, int n, int k, const float* alpha,
                    const void* A, int lda, const void* B, int ldb, const float* beta, float* C,
                    int ldc, bool tf32, bool bf16_inputs = false) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!valid_op(transa) || !valid_op(transb) || m < 0 || n < 0 || k < 0)
    return CUBLAS_STATUS_INVALID_VALUE;
  const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
  const auto at_least = [](int v) { return v < 1 ? 1 : v; };
  if (lda < at_least(ta ? k : m) || ldb < at_least(tb ? n : k) || ldc < at_least(m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (alpha == nullptr || beta == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;  // nothing to compute
  Gemm g{ta,         tb,  m, n,   k, *alpha, *beta,
         A,          lda, B, ldb, C, ldc,    tf32 && !tf32_disabled_by_environment(),
         bf16_inputs};
  std::string what = std::string(api) + " (" + (ta ? "T" : "N") + (tb ? "T" : "N") +
                     ", m=" + std::to_string(m) + " n=" + std::to_string(n) +
                     " k=" + std::to_string(k) +
                     (g.bf16_inputs ? ", bf16)"
                      : g.tf32      ? ", TF32)"
                                    : ", fp32)");
  const cudaError_t e = enqueue_work(handle->stream, what, [g, what] { run_gemm(g, what); });
  return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

}  // namespace
}  // namespace mlpx_sim

extern "C" {

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR:
      return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS:
      return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR:
      return "the functionality requested requires some license and an error was detected when "
             "trying to check the current licensing";
  }
  return "unknown error";
}

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();
    return CUBLAS_STATUS_NOT_INITIALIZED;
  }
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;  // queued GEMMs hold copies of what they need
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (stream == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, size_t bytes) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes > 0 && (workspace == nullptr || !mlpx_sim::is_device_pointer(workspace)))
    return CUBLAS_STATUS_INVALID_VALUE;
  handle->workspace = workspace;  // unused: the simulated GEMM needs none
  handle->workspace_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const int base = mode & 0xf;
  if (base > CUBLAS_TF32_TENSOR_OP_MATH || (mode & ~0x1f) != 0) return CUBLAS_STATUS_INVALID_VALUE;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->math;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const float* alpha,
                           const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc) {
  // SGEMM uses TF32 only when the handle's math mode allows it.
  const bool tf32 = handle != nullptr && (handle->math & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH;
  return mlpx_sim::gemm(handle, "cublasSgemm", transa, transb, m, n, k, alpha, A, lda, B, ldb, beta,
                        C, ldc, tf32);
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const void* alpha,
                            const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C,
                            cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t algo) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const int algo_value = algo;
  if (!(algo_value == CUBLAS_GEMM_DEFAULT || algo_value == CUBLAS_GEMM_DEFAULT_TENSOR_OP ||
        (algo_value >= 0 && algo_value <= 23) || (algo_value >= 99 && algo_value <= 115)))
    return CUBLAS_STATUS_INVALID_VALUE;
  // fp32 inputs, or bf16 ones (as cuBLAS's bf16 tensor-core GEMMs: the products of two
  // bfloat16 values are exact in fp32, accumulated in fp32); the output is fp32 either way.
  const bool bf16_inputs = Atype == CUDA_R_16BF && Btype == CUDA_R_16BF;
  if (!(bf16_inputs || (Atype == CUDA_R_32F && Btype == CUDA_R_32F)) || Ctype != CUDA_R_32F)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  if (bf16_inputs && computeType != CUBLAS_COMPUTE_32F &&
      computeType != CUBLAS_COMPUTE_32F_PEDANTIC)
    return CUBLAS_STATUS_NOT_SUPPORTED;  // bf16 inputs with a 32F compute type only
  bool tf32;
  switch (computeType) {
    case CUBLAS_COMPUTE_32F_PEDANTIC:
      tf32 = false;
      break;
    case CUBLAS_COMPUTE_32F:
      tf32 = (handle->math & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH;
      break;
    case CUBLAS_COMPUTE_32F_FAST_TF32:
      tf32 = true;
      break;
    default:
      return CUBLAS_STATUS_NOT_SUPPORTED;  // FAST_16F/16BF and others: not modelled
  }
  return mlpx_sim::gemm(handle, "cublasGemmEx", transa, transb, m, n, k,
                        static_cast<const float*>(alpha), A, lda, B, ldb,
                        static_cast<const float*>(beta), static_cast<float*>(C), ldc,
                        tf32 && !bf16_inputs, bf16_inputs);
}

}  // extern "C"
