#include "kernels/gemm.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "core/log.h"
#include "kernels/bf16.h"
#include "kernels/check.h"
#include "kernels/runtime.h"
#include "mlpx/error.h"

namespace mlpx::cuda {
namespace {

// NVIDIA_TF32_OVERRIDE=0 in the environment makes cuBLAS compute TF32 requests in fp32: the
// run is then not what precision "tf32" promises (slower, and more exact). Said once.
void warn_if_tf32_is_overridden() {
  static std::atomic<bool> warned{false};
  const char* value = std::getenv("NVIDIA_TF32_OVERRIDE");
  if (value == nullptr || std::strcmp(value, "0") != 0 || warned.exchange(true)) return;
  ::mlpx::detail::log(
      LogLevel::kWarning,
      "precision tf32: NVIDIA_TF32_OVERRIDE=0 is set, so cuBLAS computes these GEMMs in "
      "fp32 (unset it for TF32 tensor cores)");
}

// What every GEMM entry does first: the device made current, the sizes checked against
// cuBLAS's int, and the cases with no product done here (an empty C; K = 0 with beta 0 zeroes
// C). Whether a product is left to compute.
bool product_needed(int device, int64_t m, int64_t n, int64_t k, float beta, float* c) {
  if (m == 0 || n == 0) return false;
  const Context& ctx = context(device);
  MLPX_CUDA_CHECK(cudaSetDevice(device));
  MLPX_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX, ShapeError,
             "gemm: expected M, N, K <= ", INT_MAX, " for cuBLAS, found ", m, ", ", n, ", ", k);
  if (k == 0 && beta == 0.0f) {
    MLPX_CUDA_CHECK(cudaMemsetAsync(c, 0, sizeof(float) * m * n, ctx.stream));
    return false;
  }
  return true;
}

}  // namespace

void gemm(int device, bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
          float alpha, const float* a, const float* b, float beta, float* c, Precision precision) {
  if (precision == Precision::kBf16) {
    gemm_bf16(device, transpose_a, transpose_b, m, n, k, alpha, a, nullptr, b, nullptr, beta, c);
    return;
  }
  if (!product_needed(device, m, n, k, beta, c)) return;
  const Context& ctx = context(device);
  // cuBLAS is column-major: a row-major C[M,N] is a column-major C^T[N,M], and
  // C^T = op(B)^T op(A)^T, so pass B first with the same transpose flags.
  const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
  const int lda = transpose_a ? std::max(M, 1) : std::max(K, 1);
  const int ldb = transpose_b ? std::max(K, 1) : std::max(N, 1);
  // The compute type decides TF32, with the handle in its default math mode (runtime.cpp):
  // CUBLAS_COMPUTE_32F is fp32 with cuBLAS's ordinary kernels, never TF32; _PEDANTIC would
  // also forbid the fast fp32 paths (NVIDIA documents it as a testing mode).
  if (precision == Precision::kTf32) warn_if_tf32_is_overridden();
  const cublasComputeType_t compute =
      precision == Precision::kTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  MLPX_CUDA_CHECK(cublasGemmEx(ctx.blas, transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                               transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, b,
                               CUDA_R_32F, ldb, a, CUDA_R_32F, lda, &beta, c, CUDA_R_32F,
                               std::max(N, 1), compute, CUBLAS_GEMM_DEFAULT));
}

void gemm_bf16(int device, bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
               float alpha, const float* a, const uint16_t* a_bits, const float* b,
               const uint16_t* b_bits, float beta, float* c) {
  if (!product_needed(device, m, n, k, beta, c)) return;
  Context& ctx = context(device);
  const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
  const int lda = transpose_a ? std::max(M, 1) : std::max(K, 1);
  const int ldb = transpose_b ? std::max(K, 1) : std::max(N, 1);
  // cuBLAS multiplies bf16 inputs: an operand whose bits are not given is rounded into the
  // context's scratch (a's bits first, then b's, 16-byte aligned), then bf16 x bf16 with fp32
  // accumulation and output.
  const size_t a_count = static_cast<size_t>(m) * static_cast<size_t>(k);
  const size_t a_bytes = a_bits == nullptr ? (a_count * sizeof(uint16_t) + 15) / 16 * 16 : 0;
  const size_t b_bytes =
      b_bits == nullptr ? static_cast<size_t>(k) * static_cast<size_t>(n) * sizeof(uint16_t) : 0;
  if (a_bytes + b_bytes > 0) {
    auto* scratch = static_cast<unsigned char*>(bf16_scratch(ctx, a_bytes + b_bytes));
    const Device on = Device::cuda(device);
    if (a_bits == nullptr) {
      auto* rounded = reinterpret_cast<uint16_t*>(scratch);
      round_to_bf16_bits(a, rounded, m * k, on);
      a_bits = rounded;
    }
    if (b_bits == nullptr) {
      auto* rounded = reinterpret_cast<uint16_t*>(scratch + a_bytes);
      round_to_bf16_bits(b, rounded, k * n, on);
      b_bits = rounded;
    }
  }
  // cuBLAS is column-major: C^T = op(B)^T op(A)^T, so B goes first (see gemm()).
  MLPX_CUDA_CHECK(cublasGemmEx(ctx.blas, transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                               transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, b_bits,
                               CUDA_R_16BF, ldb, a_bits, CUDA_R_16BF, lda, &beta, c, CUDA_R_32F,
                               std::max(N, 1), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

namespace {
// Owns a cuBLASLt descriptor for the length of one call (destroyed on every path out).
template <typename Handle, cublasStatus_t (*destroy)(Handle)>
struct LtOwned {
  Handle handle = nullptr;
  LtOwned() = default;
  LtOwned(const LtOwned&) = delete;
  LtOwned& operator=(const LtOwned&) = delete;
  ~LtOwned() {
    if (handle != nullptr) MLPX_CUDA_CHECK_NOTHROW(destroy(handle));
  }
};
using LtDesc = LtOwned<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>;
using LtLayout = LtOwned<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>;
}  // namespace

namespace {
// The largest power of two (up to 256, cuBLASLt's default assumption) that divides p's address:
// what a cached algorithm may assume of that operand (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*).
uint32_t alignment_of(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

// cuBLASLt's algorithm per problem, chosen once by its heuristic: without one, every
// cublasLtMatmul call runs the heuristic itself (host work on every GEMM of every step). The key
// is everything the heuristic sees: device, compute type, transposes, epilogue, the data types, the
// layouts extents and leading dimensions, the aux's leading dimension and each pointer's alignment.
// Shared by every thread of the process: contexts (runtime.h) are process-wide and a model may
// be trained from any thread (the Python module, the sweep), so one mutex guards the map; a
// look-up holds it for a map find (the heuristic runs under it only on a miss, once per key).
using LtAlgoKey = std::array<int64_t, 23>;
struct LtAlgoCache {
  std::mutex mutex;
  std::map<LtAlgoKey, cublasLtMatmulAlgo_t> algos;
};
LtAlgoCache& lt_algo_cache() {
  static LtAlgoCache* cache = new LtAlgoCache;  // never destroyed: no exit-order hazard
  return *cache;
}
}  // namespace

namespace {
// A column-major operand of cuBLASLt: rows x cols with its leading dimension, as stored.
struct LtOperand {
  const void* data;
  int64_t rows, cols, ld;
  cudaDataType type = CUDA_R_32F;  // or CUDA_R_16BF: math::bf16_bits
};

// What an epilogue reads or writes beside D: the bias (or where its gradient goes) and the
// ReLU bit mask with its leading dimension in bits.
struct LtEpilogue {
  uint32_t kind = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;
  const void* aux = nullptr;
  int64_t aux_ld = 0;
};

using LtPreference = LtOwned<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy>;

// cuBLASLt's heuristic's first algorithm for the described problem that fits the context's
// workspace and the operands' actual alignments (they are views into flat buffers: a layer's
// weight need not start on 256 bytes, the heuristic's default assumption).
cublasLtMatmulAlgo_t lt_heuristic(const Context& ctx, const char* what, cublasLtMatmulDesc_t desc,
                                  cublasLtMatrixLayout_t a_layout, cublasLtMatrixLayout_t b_layout,
                                  cublasLtMatrixLayout_t d_layout, const void* a, const void* b,
                                  const void* d) {
  LtPreference pref;
  MLPX_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref.handle));
  const uint64_t workspace = ctx.workspace_bytes;
  MLPX_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref.handle, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof workspace));
  const std::array<std::pair<cublasLtMatmulPreferenceAttributes_t, const void*>, 4> operands = {
      {{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, a},
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, b},
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, d},
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, d}}};
  for (const auto& [attribute, pointer] : operands) {
    const uint32_t alignment = alignment_of(pointer);
    MLPX_CUDA_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref.handle, attribute, &alignment, sizeof alignment));
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  MLPX_CUDA_CHECK(cublasLtMatmulAlgoGetHeuristic(ctx.blas_lt, desc, a_layout, b_layout, d_layout,
                                                 d_layout, pref.handle, 1, &result, &found));
  MLPX_CHECK(found > 0, ValueError, what,
             ": expected cuBLASLt's heuristic to find an algorithm for this GEMM, found none");
  return result.algo;
}

// D = op(A) op(B) with `epilogue`, on the context's cuBLASLt handle, workspace and stream,
// compute type by `precision`: fp32 or tf32 with fp32 operands, or bf16 with bf16 operands
// (CUBLAS_COMPUTE_32F: fp32 accumulation and epilogue). D is fp32 (d_type CUDA_R_32F) or, in
// bf16, bf16 too: the epilogue's fp32 result rounded once as it is stored. The bias and the
// bias gradient stay fp32 beside a bf16 D (CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE; cuBLASLt's
// default would be D's type). `what` names the caller in errors.
void lt_matmul(int device, const char* what, bool transpose_a, const LtOperand& a, bool transpose_b,
               const LtOperand& b, void* d, int64_t d_rows, int64_t d_cols,
               const LtEpilogue& epilogue, Precision precision, cudaDataType d_type = CUDA_R_32F) {
  const cudaDataType operands = precision == Precision::kBf16 ? CUDA_R_16BF : CUDA_R_32F;
  MLPX_CHECK(a.type == operands && b.type == operands &&
                 (d_type == CUDA_R_32F || (d_type == CUDA_R_16BF && operands == CUDA_R_16BF)),
             ValueError, what, ": expected ",
             operands == CUDA_R_16BF ? "bf16 operands (D fp32 or bf16) in precision bf16"
                                     : "fp32 operands and D in precision fp32 or tf32",
             ", found other types");
  if (d_rows == 0 || d_cols == 0) return;
  Context& ctx = context(device);
  MLPX_CUDA_CHECK(cudaSetDevice(device));
  for (const int64_t extent : {a.rows, a.cols, b.rows, b.cols}) {
    MLPX_CHECK(extent <= INT_MAX, ShapeError, what, ": expected extents <= ", INT_MAX, ", found ",
               extent);
  }
  if (precision == Precision::kTf32) warn_if_tf32_is_overridden();
  const cublasComputeType_t compute =
      precision == Precision::kTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  LtDesc desc;
  MLPX_CUDA_CHECK(cublasLtMatmulDescCreate(&desc.handle, compute, CUDA_R_32F));
  const int32_t op_a = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int32_t op_b = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  MLPX_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc.handle, CUBLASLT_MATMUL_DESC_TRANSA, &op_a,
                                                 sizeof(op_a)));
  MLPX_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc.handle, CUBLASLT_MATMUL_DESC_TRANSB, &op_b,
                                                 sizeof(op_b)));
  MLPX_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc.handle, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                 &epilogue.kind, sizeof(epilogue.kind)));
  if (epilogue.bias != nullptr) {
    MLPX_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc.handle, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                   &epilogue.bias, sizeof(epilogue.bias)));
    if (d_type != CUDA_R_32F) {
      const int32_t fp32 = CUDA_R_32F;
      MLPX_CUDA_CHECK(cublasLtMatmulDescSetAttribute(
          desc.handle, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &fp32, sizeof(fp32)));
    }
  }
  if (epilogue.aux != nullptr) {
    MLPX_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc.handle,
                                                   CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER,
                                                   &epilogue.aux, sizeof(epilogue.aux)));
    MLPX_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc.handle,
                                                   CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD,
                                                   &epilogue.aux_ld, sizeof(epilogue.aux_ld)));
  }
  const auto layout = [](LtLayout& l, cudaDataType type, int64_t rows, int64_t cols, int64_t ld) {
    MLPX_CUDA_CHECK(cublasLtMatrixLayoutCreate(&l.handle, type, static_cast<uint64_t>(rows),
                                               static_cast<uint64_t>(cols),
                                               std::max<int64_t>(ld, 1)));
  };
  LtLayout a_layout, b_layout, d_layout;
  layout(a_layout, a.type, a.rows, a.cols, a.ld);
  layout(b_layout, b.type, b.rows, b.cols, b.ld);
  layout(d_layout, d_type, d_rows, d_cols, d_rows);
  const float one = 1.0f, zero = 0.0f;
  const LtAlgoKey key = {device,
                         static_cast<int64_t>(compute),
                         op_a,
                         op_b,
                         static_cast<int64_t>(epilogue.kind),
                         static_cast<int64_t>(a.type),
                         static_cast<int64_t>(b.type),
                         static_cast<int64_t>(d_type),
                         a.rows,
                         a.cols,
                         a.ld,
                         b.rows,
                         b.cols,
                         b.ld,
                         d_rows,
                         d_cols,
                         epilogue.aux_ld,
                         alignment_of(a.data),
                         alignment_of(b.data),
                         alignment_of(d),
                         alignment_of(epilogue.bias),
                         alignment_of(epilogue.aux),
                         static_cast<int64_t>(ctx.workspace_bytes)};
  cublasLtMatmulAlgo_t algo{};
  {
    LtAlgoCache& cache = lt_algo_cache();
    const std::lock_guard<std::mutex> lock(cache.mutex);
    const auto found = cache.algos.find(key);
    if (found != cache.algos.end()) {
      algo = found->second;
    } else {
      algo = lt_heuristic(ctx, what, desc.handle, a_layout.handle, b_layout.handle, d_layout.handle,
                          a.data, b.data, d);
      cache.algos.emplace(key, algo);
    }
  }
  MLPX_CUDA_CHECK(cublasLtMatmul(ctx.blas_lt, desc.handle, &one, a.data, a_layout.handle, b.data,
                                 b_layout.handle, &zero, d, d_layout.handle, d, d_layout.handle,
                                 &algo, ctx.workspace, ctx.workspace_bytes, ctx.stream));
}

void check_gelu_aux_ld(const char* what, int64_t pre_ld, int64_t units) {
  MLPX_CHECK(pre_ld % 8 == 0 && pre_ld >= units && pre_ld > 0, ShapeError, what,
             ": expected the GELU pre-activation's leading dimension a multiple of 8 elements and "
             ">= ",
             units, ", found ", pre_ld);
}

void check_mask_ld(const char* what, int64_t mask_ld_bits, int64_t units) {
  MLPX_CHECK(mask_ld_bits % 128 == 0 && mask_ld_bits >= units, ShapeError, what,
             ": expected the ReLU mask's leading dimension a multiple of 128 bits and >= ", units,
             ", found ", mask_ld_bits);
}

// The forward's epilogue: the bias, then a ReLU if asked, writing its bit mask where one is given
// (mask_ld_bits checked against the layer's `out` units).
LtEpilogue bias_epilogue(const char* what, const float* bias, bool relu, void* relu_mask,
                         int64_t mask_ld_bits, int64_t out) {
  LtEpilogue epilogue;
  epilogue.bias = bias;
  if (relu_mask != nullptr) {
    MLPX_CHECK(relu, ValueError, what, ": expected a ReLU mask only with the ReLU");
    check_mask_ld(what, mask_ld_bits, out);
    epilogue.kind = CUBLASLT_EPILOGUE_RELU_AUX_BIAS;
    epilogue.aux = relu_mask;
    epilogue.aux_ld = mask_ld_bits;
  } else {
    epilogue.kind = relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
  }
  return epilogue;
}
}  // namespace

void gemm_bias_epilogue(int device, int64_t batch, int64_t in, int64_t out, const float* x,
                        const float* w, const float* bias, float* y, bool relu, Precision precision,
                        void* relu_mask, int64_t mask_ld_bits) {
  const char* what = "gemm_bias_epilogue";
  const LtEpilogue epilogue = bias_epilogue(what, bias, relu, relu_mask, mask_ld_bits, out);
  // y^T[out, batch] = w x^T: A = w^T's storage [in, out] (op T), B = x^T [in, batch] (op N).
  lt_matmul(device, what, true, {w, in, out, in}, false, {x, in, batch, in}, y, out, batch,
            epilogue, precision);
}

void gemm_weight_grad_bgrad(int device, int64_t batch, int64_t in, int64_t out, const float* x,
                            const float* dy, float* dweight, float* dbias, Precision precision) {
  LtEpilogue epilogue;
  epilogue.kind = CUBLASLT_EPILOGUE_BGRADB;
  epilogue.bias = dbias;
  // dweight^T[in, out] = x^T dy: A = x^T [in, batch] (op N), B = dy^T's storage [out, batch]
  // (op T), so op(B) is dy [batch, out] and BGRADB sums each of its columns over the batch.
  lt_matmul(device, "gemm_weight_grad_bgrad", false, {x, in, batch, in}, true,
            {dy, out, batch, out}, dweight, in, out, epilogue, precision);
}

void gemm_input_grad_drelu(int device, int64_t batch, int64_t in, int64_t out, const float* dy,
                           const float* w, const void* relu_mask, int64_t mask_ld_bits, float* dx,
                           Precision precision) {
  const char* what = "gemm_input_grad_drelu";
  check_mask_ld(what, mask_ld_bits, in);
  LtEpilogue epilogue;
  epilogue.kind = CUBLASLT_EPILOGUE_DRELU;
  epilogue.aux = relu_mask;
  epilogue.aux_ld = mask_ld_bits;
  // dx^T[in, batch] = w^T dy^T: A = w^T [in, out] (op N), B = dy^T [out, batch] (op N); D's
  // element (i, r) has the mask's bit i + r * mask_ld_bits, as the layer below wrote it.
  lt_matmul(device, what, false, {w, in, out, in}, false, {dy, out, batch, out}, dx, in, batch,
            epilogue, precision);
}

void gemm_bias_epilogue_bf16(int device, int64_t batch, int64_t in, int64_t out,
                             const uint16_t* x_bits, const uint16_t* w_bits, const float* bias,
                             float* y, uint16_t* y_bits, bool relu, void* relu_mask,
                             int64_t mask_ld_bits) {
  const char* what = "gemm_bias_epilogue_bf16";
  MLPX_CHECK((y == nullptr) != (y_bits == nullptr), ValueError, what,
             ": expected one output, fp32 y or its bf16 bits, found ",
             y == nullptr ? "neither" : "both");
  const LtEpilogue epilogue = bias_epilogue(what, bias, relu, relu_mask, mask_ld_bits, out);
  // As gemm_bias_epilogue: y^T[out, batch] = w x^T, A = w (op T), B = x^T (op N), from bits.
  void* d = y != nullptr ? static_cast<void*>(y) : static_cast<void*>(y_bits);
  lt_matmul(device, what, true, {w_bits, in, out, in, CUDA_R_16BF}, false,
            {x_bits, in, batch, in, CUDA_R_16BF}, d, out, batch, epilogue, Precision::kBf16,
            y != nullptr ? CUDA_R_32F : CUDA_R_16BF);
}

void gemm_weight_grad_bf16(int device, int64_t batch, int64_t in, int64_t out,
                           const uint16_t* x_bits, const uint16_t* dy_bits, float* dweight,
                           float* dbias) {
  LtEpilogue epilogue;
  if (dbias != nullptr) {
    epilogue.kind = CUBLASLT_EPILOGUE_BGRADB;
    epilogue.bias = dbias;
  }
  // As gemm_weight_grad_bgrad: dweight^T[in, out] = x^T dy, A = x^T (op N), B = dy^T (op T).
  lt_matmul(device, "gemm_weight_grad_bf16", false, {x_bits, in, batch, in, CUDA_R_16BF}, true,
            {dy_bits, out, batch, out, CUDA_R_16BF}, dweight, in, out, epilogue, Precision::kBf16);
}

void gemm_input_grad_bf16(int device, int64_t batch, int64_t in, int64_t out,
                          const uint16_t* dy_bits, const uint16_t* w_bits, const void* relu_mask,
                          int64_t mask_ld_bits, uint16_t* dx_bits) {
  const char* what = "gemm_input_grad_bf16";
  LtEpilogue epilogue;
  if (relu_mask != nullptr) {
    check_mask_ld(what, mask_ld_bits, in);
    epilogue.kind = CUBLASLT_EPILOGUE_DRELU;
    epilogue.aux = relu_mask;
    epilogue.aux_ld = mask_ld_bits;
  }
  // As gemm_input_grad_drelu: dx^T[in, batch] = w^T dy^T, A = w (op N), B = dy^T (op N).
  lt_matmul(device, what, false, {w_bits, in, out, in, CUDA_R_16BF}, false,
            {dy_bits, out, batch, out, CUDA_R_16BF}, dx_bits, in, batch, epilogue, Precision::kBf16,
            CUDA_R_16BF);
}

void gemm_bias_gelu_tanh_epilogue(int device, int64_t batch, int64_t in, int64_t out,
                                  const float* x, const float* w, const float* bias, float* y,
                                  float* pre, int64_t pre_ld, Precision precision) {
  const char* what = "gemm_bias_gelu_tanh_epilogue";
  check_gelu_aux_ld(what, pre_ld, out);
  LtEpilogue epilogue;
  epilogue.kind = CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
  epilogue.bias = bias;
  epilogue.aux = pre;
  epilogue.aux_ld = pre_ld;
  // As gemm_bias_epilogue: y^T[out, batch] = w x^T; the aux is pre^T [out, batch], ld pre_ld.
  lt_matmul(device, what, true, {w, in, out, in}, false, {x, in, batch, in}, y, out, batch,
            epilogue, precision);
}

void gemm_input_grad_dgelu(int device, int64_t batch, int64_t in, int64_t out, const float* dy,
                           const float* w, const float* pre_below, int64_t pre_ld, float* dx,
                           float* dbias_below, Precision precision) {
  const char* what = "gemm_input_grad_dgelu";
  check_gelu_aux_ld(what, pre_ld, in);
  LtEpilogue epilogue;
  epilogue.kind = dbias_below != nullptr ? CUBLASLT_EPILOGUE_DGELU_BGRAD : CUBLASLT_EPILOGUE_DGELU;
  epilogue.bias = dbias_below;
  epilogue.aux = pre_below;
  epilogue.aux_ld = pre_ld;
  // As gemm_input_grad_drelu: dx^T[in, batch] = w^T dy^T. D's rows are the layer below's units,
  // so BGRAD's sum of each row over the batch is that layer's bias gradient.
  lt_matmul(device, what, false, {w, in, out, in}, false, {dy, out, batch, out}, dx, in, batch,
            epilogue, precision);
}

}  // namespace mlpx::cuda
