// The cuBLASLt stand-in (cublasLt.h, sim/README.md "cuBLASLt"): descriptors, layouts and
// cublasLtMatmul with its epilogues, as stream work.
#include "cublasLt.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "math/activation.h"  // mlpx's GELU (tanh form) and its slope: the epilogues' formula
#include "mlpx_sim/counters.h"
#include "mlpx_sim/runtime.h"

struct cublasLtContext {
  int unused = 0;
};

struct cublasLtMatmulDescOpaque_st {
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  cublasOperation_t trans_a = CUBLAS_OP_N, trans_b = CUBLAS_OP_N;
  uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;  // the bias, or where a bias gradient goes
  void* aux = nullptr;
  int64_t aux_ld = 0;
  int32_t bias_type = -1;  // CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE; -1: D's type
};

struct cublasLtMatrixLayoutOpaque_st {
  cudaDataType type = CUDA_R_32F;
  uint64_t rows = 0, cols = 0;
  int64_t ld = 0;
};

struct cublasLtMatmulPreferenceOpaque_st {
  uint64_t max_workspace_bytes = 0;
  uint32_t min_alignment[4] = {256, 256, 256, 256};  // A, B, C, D in bytes (cuBLASLt's default)
};

namespace mlpx_sim {
namespace {

bool tf32_off_by_environment() {
  static const bool off = [] {
    const char* v = std::getenv("NVIDIA_TF32_OVERRIDE");
    return v != nullptr && std::strcmp(v, "0") == 0;
  }();
  return off;
}

float element(const void* base, size_t i, cudaDataType type) {
  if (type == CUDA_R_32F) return static_cast<const float*>(base)[i];
  const uint32_t bits = static_cast<uint32_t>(static_cast<const uint16_t*>(base)[i]) << 16;
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

size_t type_bytes(cudaDataType type) { return type == CUDA_R_32F ? 4 : 2; }

// x rounded to the nearest bfloat16, ties to even, as bits: cuBLASLt's conversion of an fp32
// epilogue result into a bf16 D (or bias gradient); a NaN stays a quiet NaN of its sign.
uint16_t bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Stores x as element i of a `type` array (bf16: rounded to nearest even).
void store(void* base, size_t i, cudaDataType type, float x) {
  if (type == CUDA_R_32F) {
    static_cast<float*>(base)[i] = x;
  } else {
    static_cast<uint16_t*>(base)[i] = bf16_bits(x);
  }
}

size_t span(const cublasLtMatrixLayoutOpaque_st& l) {
  return l.rows == 0 || l.cols == 0 ? 0 : static_cast<size_t>(l.ld) * (l.cols - 1) + l.rows;
}

bool has(uint32_t epilogue, uint32_t bits) { return (epilogue & bits) == bits; }

// The GELU epilogues' bits: 32 the forward GELU, 64 its gradient (DGELU); 128 an aux buffer.
constexpr uint32_t kGeluBit = 32u, kDgeluBit = 64u, kAuxBit = 128u;
bool is_gelu_family(uint32_t epilogue) { return (epilogue & (kGeluBit | kDgeluBit)) != 0; }

std::atomic<uint64_t> g_heuristic_queries{0};

struct Matmul {
  cublasLtMatmulDescOpaque_st desc;
  cublasLtMatrixLayoutOpaque_st a, b, c, d;
  float alpha, beta;
  const void* A;
  const void* B;
  const void* C;
  void* D;
  size_t m, n, k;
  bool tf32;
  cudaDataType bias_type;  // of the bias, or of the bias gradient written
};

bool in_device(const void* p, size_t bytes, const char* what, const std::string& label) {
  std::string why;
  if (bytes == 0 || check_device_range(p, bytes, why)) return true;
  raise_fault(cudaErrorIllegalAddress, label + ": " + what + ": " + why);
  return false;
}

void run(const Matmul& g, const std::string& label) {
  const uint32_t e = g.desc.epilogue;
  const bool bias_in = has(e, CUBLASLT_EPILOGUE_BIAS) && !has(e, CUBLASLT_EPILOGUE_DRELU) &&
                       !has(e, CUBLASLT_EPILOGUE_DGELU);
  const bool bgrad = has(e, CUBLASLT_EPILOGUE_DRELU_BGRAD) || e == CUBLASLT_EPILOGUE_DGELU_BGRAD ||
                     e == CUBLASLT_EPILOGUE_BGRADA || e == CUBLASLT_EPILOGUE_BGRADB;
  const bool relu = has(e, CUBLASLT_EPILOGUE_RELU) && !has(e, CUBLASLT_EPILOGUE_DRELU);
  const bool aux_out = has(e, CUBLASLT_EPILOGUE_RELU_AUX) && relu;
  const bool drelu = has(e, CUBLASLT_EPILOGUE_DRELU);
  // GELU (tanh form, src/math/activation.h): GELU_AUX writes the pre-activation to aux (D's
  // type, element i + j aux_ld); DGELU multiplies by the slope at aux's element; DGELU_BGRAD
  // also sums.
  const bool gelu = has(e, kGeluBit) && !has(e, kDgeluBit);
  const bool gelu_aux_out = gelu && has(e, kAuxBit);
  const bool dgelu = has(e, CUBLASLT_EPILOGUE_DGELU);
  const bool row_bgrad =
      has(e, CUBLASLT_EPILOGUE_DRELU_BGRAD) || e == CUBLASLT_EPILOGUE_DGELU_BGRAD;
  const size_t bias_len = e == CUBLASLT_EPILOGUE_BGRADB ? g.n : g.m;
  const size_t d_bytes = type_bytes(g.d.type);
  const size_t aux_bytes =
      is_gelu_family(e)
          ? (g.n == 0 ? 0 : (static_cast<size_t>(g.desc.aux_ld) * (g.n - 1) + g.m) * d_bytes)
          : (static_cast<size_t>(g.desc.aux_ld) * g.n + 7) / 8;
  if (!in_device(g.A, span(g.a) * type_bytes(g.a.type), "A", label) ||
      !in_device(g.B, span(g.b) * type_bytes(g.b.type), "B", label) ||
      !in_device(g.D, span(g.d) * type_bytes(g.d.type), "D", label) ||
      (g.beta != 0.0f && !in_device(g.C, span(g.c) * type_bytes(g.c.type), "C", label)) ||
      ((bias_in || bgrad) &&
       !in_device(g.desc.bias, bias_len * type_bytes(g.bias_type), "bias", label)) ||
      ((aux_out || drelu || gelu_aux_out || dgelu) &&
       !in_device(g.desc.aux, aux_bytes, "aux", label)))
    return;
  const auto in = [&](const void* base, cudaDataType type, size_t i) {
    const float v = element(base, i, type);
    return g.tf32 ? round_to_tf32(v) : v;
  };
  const auto at_a = [&](size_t i, size_t p) {  // op(A)(i, p)
    const size_t lda = static_cast<size_t>(g.a.ld);
    return in(g.A, g.a.type, g.desc.trans_a != CUBLAS_OP_N ? p + i * lda : i + p * lda);
  };
  const auto at_b = [&](size_t p, size_t j) {  // op(B)(p, j)
    const size_t ldb = static_cast<size_t>(g.b.ld);
    return in(g.B, g.b.type, g.desc.trans_b != CUBLAS_OP_N ? j + p * ldb : p + j * ldb);
  };
  auto* aux = static_cast<unsigned char*>(g.desc.aux);
  void* bias_out = const_cast<void*>(g.desc.bias);
  // Without the arithmetic (a counting pass, mlpx_sim/counters.h) acc stays 0, as in the
  // cuBLAS stand-in: the epilogue, its bytes and FLOPs remain.
  const bool computes = gemm_arithmetic();
  std::vector<float> row_sums(g.m, 0.0f);
  for (size_t j = 0; j < g.n; ++j) {
    for (size_t i = 0; i < g.m; ++i) {
      float acc = 0.0f;
      for (size_t p = 0; computes && p < g.k; ++p) acc = std::fma(at_a(i, p), at_b(p, j), acc);
      const size_t ci = i + j * static_cast<size_t>(g.c.ld);
      float x = g.beta == 0.0f ? g.alpha * acc
                               : std::fma(g.beta, element(g.C, ci, g.c.type), g.alpha * acc);
      if (bias_in) x += element(g.desc.bias, i, g.bias_type);
      const size_t bit = i + j * static_cast<size_t>(g.desc.aux_ld);
      if (aux_out) {
        const auto mask = static_cast<unsigned char>(1u << (bit % 8));
        aux[bit / 8] =
            static_cast<unsigned char>(x > 0.0f ? aux[bit / 8] | mask : aux[bit / 8] & ~mask);
      }
      if (relu) x = x > 0.0f ? x : 0.0f;
      if (drelu && ((aux[bit / 8] >> (bit % 8)) & 1u) == 0) x = 0.0f;
      if (gelu_aux_out) store(aux, bit, g.d.type, x);  // element i + j aux_ld
      if (gelu) x = mlpx::math::gelu_tanh(x);
      // DGELU: the incoming gradient times the slope at the saved pre-activation, as the CPU's
      // gelu_tanh row computes it (dy * gelu_tanh_slope(x)).
      if (dgelu) x = x * mlpx::math::gelu_tanh_slope(element(aux, bit, g.d.type));
      row_sums[i] += x;
      // The epilogue computes in fp32; a bf16 D is its result rounded once, as it is stored.
      store(g.D, i + j * static_cast<size_t>(g.d.ld), g.d.type, x);
    }
  }
  if (row_bgrad) {
    for (size_t i = 0; i < g.m; ++i) store(bias_out, i, g.bias_type, row_sums[i]);
  } else if (e == CUBLASLT_EPILOGUE_BGRADA) {  // per row of D: op(A)'s row summed over k
    for (size_t i = 0; i < g.m; ++i) {
      float s = 0.0f;
      for (size_t p = 0; p < g.k; ++p) s += at_a(i, p);
      store(bias_out, i, g.bias_type, s);
    }
  } else if (e == CUBLASLT_EPILOGUE_BGRADB) {  // per column of D: op(B)'s column over k
    for (size_t j = 0; j < g.n; ++j) {
      float s = 0.0f;
      for (size_t p = 0; p < g.k; ++p) s += at_b(p, j);
      store(bias_out, j, g.bias_type, s);
    }
  }
  count_device_bytes(span(g.a) * type_bytes(g.a.type) + span(g.b) * type_bytes(g.b.type) +
                         (g.beta != 0.0f ? g.m * g.n * type_bytes(g.c.type) : 0) +
                         (bias_in ? g.m * type_bytes(g.bias_type) : 0) +
                         (drelu ? (g.m * g.n + 7) / 8 : 0) + (dgelu ? g.m * g.n * d_bytes : 0),
                     g.m * g.n * d_bytes + (aux_out ? (g.m * g.n + 7) / 8 : 0) +
                         (gelu_aux_out ? g.m * g.n * d_bytes : 0) +
                         (bgrad ? bias_len * type_bytes(g.bias_type) : 0));
  count_gemm(2 * g.m * g.n * g.k, g.a.type == CUDA_R_16BF ? "bf16" : g.tf32 ? "tf32" : "fp32");
}

}  // namespace
}  // namespace mlpx_sim

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t* lightHandle) {
  if (lightHandle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *lightHandle = new cublasLtContext;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t lightHandle) {
  if (lightHandle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete lightHandle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* matmulDesc,
                                        cublasComputeType_t computeType, cudaDataType_t scaleType) {
  if (matmulDesc == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  if ((computeType != CUBLAS_COMPUTE_32F && computeType != CUBLAS_COMPUTE_32F_FAST_TF32 &&
       computeType != CUBLAS_COMPUTE_32F_PEDANTIC) ||
      scaleType != CUDA_R_32F)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  *matmulDesc = new cublasLtMatmulDescOpaque_st;
  (*matmulDesc)->compute = computeType;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc) {
  delete matmulDesc;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t matmulDesc,
                                              cublasLtMatmulDescAttributes_t attr, const void* buf,
                                              size_t sizeInBytes) {
  if (matmulDesc == nullptr || buf == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  const auto read = [&](auto& out) {
    if (sizeInBytes != sizeof out) return false;
    std::memcpy(&out, buf, sizeof out);
    return true;
  };
  int32_t i32 = 0;
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB:
      if (!read(i32) || i32 < 0 || i32 > 2) return CUBLAS_STATUS_INVALID_VALUE;
      (attr == CUBLASLT_MATMUL_DESC_TRANSA ? matmulDesc->trans_a : matmulDesc->trans_b) =
          static_cast<cublasOperation_t>(i32);
      return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
      return read(matmulDesc->epilogue) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
      return read(matmulDesc->bias) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER:
      return read(matmulDesc->aux) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD:
      return read(matmulDesc->aux_ld) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE:
      if (!read(i32)) return CUBLAS_STATUS_INVALID_VALUE;
      matmulDesc->compute = static_cast<cublasComputeType_t>(i32);
      return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE:
      if (!read(i32)) return CUBLAS_STATUS_INVALID_VALUE;
      return i32 == CUDA_R_32F ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_SUPPORTED;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
      // -1 (the default): the bias (gradient) has D's type; else fp32 or bf16, which
      // cublasLtMatmul checks against D's type.
      if (!read(i32)) return CUBLAS_STATUS_INVALID_VALUE;
      if (i32 != -1 && i32 != CUDA_R_32F && i32 != CUDA_R_16BF) return CUBLAS_STATUS_NOT_SUPPORTED;
      matmulDesc->bias_type = i32;
      return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_POINTER_MODE:
      if (!read(i32)) return CUBLAS_STATUS_INVALID_VALUE;
      return i32 == 0 ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_SUPPORTED;
  }
  return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* matLayout, cudaDataType type,
                                          uint64_t rows, uint64_t cols, int64_t ld) {
  if (matLayout == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  if (type != CUDA_R_32F && type != CUDA_R_16BF) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (ld < static_cast<int64_t>(rows < 1 ? 1 : rows)) return CUBLAS_STATUS_INVALID_VALUE;
  *matLayout = new cublasLtMatrixLayoutOpaque_st{type, rows, cols, ld};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matLayout) {
  delete matLayout;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc,
                              const void* alpha, const void* A, cublasLtMatrixLayout_t Adesc,
                              const void* B, cublasLtMatrixLayout_t Bdesc, const void* beta,
                              const void* C, cublasLtMatrixLayout_t Cdesc, void* D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t* algo,
                              void* /*workspace*/, size_t /*workspaceSizeInBytes*/,
                              cudaStream_t stream) {
  using namespace mlpx_sim;  // NOLINT
  if (lightHandle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  // No algorithm: cuBLASLt queries its heuristic itself, on every such call (counted).
  if (algo == nullptr) g_heuristic_queries.fetch_add(1, std::memory_order_relaxed);
  if (computeDesc == nullptr || Adesc == nullptr || Bdesc == nullptr || Cdesc == nullptr ||
      Ddesc == nullptr || alpha == nullptr || beta == nullptr)
    return CUBLAS_STATUS_INVALID_VALUE;
  const cublasLtMatmulDescOpaque_st& desc = *computeDesc;
  const bool ta = desc.trans_a != CUBLAS_OP_N, tb = desc.trans_b != CUBLAS_OP_N;
  const uint64_t m = ta ? Adesc->cols : Adesc->rows, k = ta ? Adesc->rows : Adesc->cols;
  const uint64_t kb = tb ? Bdesc->cols : Bdesc->rows, n = tb ? Bdesc->rows : Bdesc->cols;
  // Shapes: op(A) m x k, op(B) k x n, C and D m x n; A and B of one type, C and D of one type:
  // fp32, or bf16 when A and B are (the rows of cuBLASLt's type table with compute 32F that the
  // stand-in models: fp32 x fp32 -> fp32; bf16 x bf16 -> fp32 or bf16).
  if (kb != k || Ddesc->rows != m || Ddesc->cols != n || Cdesc->rows != m || Cdesc->cols != n ||
      Adesc->type != Bdesc->type || Cdesc->type != Ddesc->type ||
      (Ddesc->type != CUDA_R_32F && !(Ddesc->type == CUDA_R_16BF && Adesc->type == CUDA_R_16BF)))
    return CUBLAS_STATUS_INVALID_VALUE;
  // The bias (gradient) vector's type: D's by default; fp32 may be asked for beside a bf16 D
  // (CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE), bf16 only beside a bf16 D.
  const cudaDataType bias_type =
      desc.bias_type == -1 ? Ddesc->type : static_cast<cudaDataType>(desc.bias_type);
  if (bias_type == CUDA_R_16BF && Ddesc->type != CUDA_R_16BF) return CUBLAS_STATUS_NOT_SUPPORTED;
  const uint32_t e = desc.epilogue;
  switch (e) {
    case CUBLASLT_EPILOGUE_DEFAULT:
    case CUBLASLT_EPILOGUE_RELU:
    case CUBLASLT_EPILOGUE_BIAS:
    case CUBLASLT_EPILOGUE_RELU_BIAS:
    case CUBLASLT_EPILOGUE_RELU_AUX:
    case CUBLASLT_EPILOGUE_RELU_AUX_BIAS:
    case CUBLASLT_EPILOGUE_DRELU:
    case CUBLASLT_EPILOGUE_DRELU_BGRAD:
    case CUBLASLT_EPILOGUE_BGRADA:
    case CUBLASLT_EPILOGUE_BGRADB:
    case CUBLASLT_EPILOGUE_GELU:
    case CUBLASLT_EPILOGUE_GELU_AUX:
    case CUBLASLT_EPILOGUE_GELU_BIAS:
    case CUBLASLT_EPILOGUE_GELU_AUX_BIAS:
    case CUBLASLT_EPILOGUE_DGELU:
    case CUBLASLT_EPILOGUE_DGELU_BGRAD:
      break;
    default:
      return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  const bool needs_bias = (e & CUBLASLT_EPILOGUE_BIAS) != 0 || e == CUBLASLT_EPILOGUE_DRELU_BGRAD ||
                          e == CUBLASLT_EPILOGUE_DGELU_BGRAD || e == CUBLASLT_EPILOGUE_BGRADA ||
                          e == CUBLASLT_EPILOGUE_BGRADB;
  const bool needs_aux = (e & 128) != 0;
  if (needs_bias && desc.bias == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  // The aux's leading dimension: the ReLU bit mask's in bits, a multiple of 128; GELU's
  // pre-activation (fp32, D's type) in elements, a multiple of 8; either at least D's rows.
  const int64_t aux_ld_multiple = is_gelu_family(e) ? 8 : 128;
  if (needs_aux && (desc.aux == nullptr || desc.aux_ld % aux_ld_multiple != 0 ||
                    desc.aux_ld < static_cast<int64_t>(m) || desc.aux_ld == 0))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  Matmul g{desc,
           *Adesc,
           *Bdesc,
           *Cdesc,
           *Ddesc,
           *static_cast<const float*>(alpha),
           *static_cast<const float*>(beta),
           A,
           B,
           C,
           D,
           m,
           n,
           k,
           desc.compute == CUBLAS_COMPUTE_32F_FAST_TF32 && Adesc->type == CUDA_R_32F &&
               !tf32_off_by_environment(),
           bias_type};
  const std::string label = "cublasLtMatmul (" + std::string(ta ? "T" : "N") + (tb ? "T" : "N") +
                            ", m=" + std::to_string(m) + " n=" + std::to_string(n) +
                            " k=" + std::to_string(k) + ", epilogue " + std::to_string(e) + ")";
  const cudaError_t queued = enqueue_work(stream, label, [g, label] { run(g, label); });
  return queued == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  if (pref == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *pref = new cublasLtMatmulPreferenceOpaque_st;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  delete pref;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void* buf, size_t sizeInBytes) {
  if (pref == nullptr || buf == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
    if (sizeInBytes != sizeof(uint64_t)) return CUBLAS_STATUS_INVALID_VALUE;
    std::memcpy(&pref->max_workspace_bytes, buf, sizeof(uint64_t));
    return CUBLAS_STATUS_SUCCESS;
  }
  if (attr >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES &&
      attr <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES) {
    if (sizeInBytes != sizeof(uint32_t)) return CUBLAS_STATUS_INVALID_VALUE;
    std::memcpy(&pref->min_alignment[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf,
                sizeof(uint32_t));
    return CUBLAS_STATUS_SUCCESS;
  }
  return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(
    cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc, cublasLtMatrixLayout_t Adesc,
    cublasLtMatrixLayout_t Bdesc, cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
    cublasLtMatmulPreference_t preference, int requestedAlgoCount,
    cublasLtMatmulHeuristicResult_t heuristicResultsArray[], int* returnAlgoCount) {
  using namespace mlpx_sim;  // NOLINT
  if (lightHandle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (operationDesc == nullptr || Adesc == nullptr || Bdesc == nullptr || Cdesc == nullptr ||
      Ddesc == nullptr || preference == nullptr || requestedAlgoCount < 1 ||
      heuristicResultsArray == nullptr || returnAlgoCount == nullptr)
    return CUBLAS_STATUS_INVALID_VALUE;
  g_heuristic_queries.fetch_add(1, std::memory_order_relaxed);
  // One algorithm, which needs no workspace; it names the epilogue it was chosen for.
  heuristicResultsArray[0] = cublasLtMatmulHeuristicResult_t{};
  heuristicResultsArray[0].algo.data[0] = operationDesc->epilogue;
  heuristicResultsArray[0].workspaceSize = 0;
  heuristicResultsArray[0].state = CUBLAS_STATUS_SUCCESS;
  heuristicResultsArray[0].wavesCount = 1.0f;
  *returnAlgoCount = 1;
  return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"

namespace mlpx_sim {
uint64_t cublaslt_heuristic_queries() { return g_heuristic_queries.load(); }
}  // namespace mlpx_sim
