// The simulator's stand-in for <cublasLt.h>: the part of cuBLASLt that fused GEMM epilogues
// need (sim/README.md, "cuBLASLt"). Handles, matmul descriptors (compute type, transposes,
// epilogue, bias and aux pointers, aux leading dimension), column-major matrix layouts, and
// cublasLtMatmul as stream work: D = epilogue(alpha op(A) op(B) + beta C), fp32 or bf16 A and B
// (fp32 C and D), accumulated as the cuBLAS stand-in does (fp32 fma over k ascending; TF32
// rounding of the inputs under CUBLAS_COMPUTE_32F_FAST_TF32). The epilogues: DEFAULT, RELU, BIAS,
// RELU_BIAS, RELU_AUX, RELU_AUX_BIAS (a ReLU bit mask: bit i + j aux_ld of the aux buffer is set
// when D(i, j) before the ReLU is > 0; aux_ld in bits, a multiple of 128, at least D's rows),
// DRELU and DRELU_BGRAD (D times the mask's bit; BGRAD also writes each row's sum of D to the
// bias pointer), BGRADA and BGRADB (the bias gradient of op(A) summed over k, per row of D, or
// of op(B), per column of D), GELU, GELU_BIAS, GELU_AUX, GELU_AUX_BIAS (the tanh form of GELU,
// mlpx's math::gelu_tanh; _AUX writes D before the GELU to aux, fp32, element i + j aux_ld,
// aux_ld in elements a multiple of 8 and at least D's rows), DGELU and DGELU_BGRAD (D times
// math::gelu_tanh_slope of aux's element; BGRAD also writes each row's sum of D to the bias
// pointer). The heuristic (cublasLtMatmulAlgoGetHeuristic, preferences) answers one algorithm
// and counts its queries. Values, enums and signatures are cuBLASLt's.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cublas_v2.h"
#include "cuda_runtime_api.h"
#include "library_types.h"

typedef struct cublasLtContext* cublasLtHandle_t;
typedef struct cublasLtMatmulDescOpaque_st* cublasLtMatmulDesc_t;
typedef struct cublasLtMatrixLayoutOpaque_st* cublasLtMatrixLayout_t;
typedef struct cublasLtMatmulPreferenceOpaque_st* cublasLtMatmulPreference_t;
typedef struct {
  uint64_t data[8];
} cublasLtMatmulAlgo_t;

typedef struct {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
} cublasLtMatmulHeuristicResult_t;

typedef enum {
  CUBLASLT_MATMUL_PREF_SEARCH_MODE = 0,
  CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8
} cublasLtMatmulPreferenceAttributes_t;

typedef enum {
  CUBLASLT_MATMUL_DESC_COMPUTE_TYPE = 0,
  CUBLASLT_MATMUL_DESC_SCALE_TYPE = 1,
  CUBLASLT_MATMUL_DESC_POINTER_MODE = 2,
  CUBLASLT_MATMUL_DESC_TRANSA = 3,
  CUBLASLT_MATMUL_DESC_TRANSB = 4,
  CUBLASLT_MATMUL_DESC_EPILOGUE = 7,
  CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,
  CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER = 11,
  CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD = 12,
  CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE = 26
} cublasLtMatmulDescAttributes_t;

typedef enum {
  CUBLASLT_EPILOGUE_DEFAULT = 1,
  CUBLASLT_EPILOGUE_RELU = 2,
  CUBLASLT_EPILOGUE_RELU_AUX = (CUBLASLT_EPILOGUE_RELU | 128),
  CUBLASLT_EPILOGUE_BIAS = 4,
  CUBLASLT_EPILOGUE_RELU_BIAS = (CUBLASLT_EPILOGUE_RELU | CUBLASLT_EPILOGUE_BIAS),
  CUBLASLT_EPILOGUE_RELU_AUX_BIAS = (CUBLASLT_EPILOGUE_RELU_AUX | CUBLASLT_EPILOGUE_BIAS),
  CUBLASLT_EPILOGUE_DRELU = 8 | 128,
  CUBLASLT_EPILOGUE_DRELU_BGRAD = CUBLASLT_EPILOGUE_DRELU | 16,
  CUBLASLT_EPILOGUE_GELU = 32,
  CUBLASLT_EPILOGUE_GELU_AUX = (CUBLASLT_EPILOGUE_GELU | 128),
  CUBLASLT_EPILOGUE_GELU_BIAS = (CUBLASLT_EPILOGUE_GELU | CUBLASLT_EPILOGUE_BIAS),
  CUBLASLT_EPILOGUE_GELU_AUX_BIAS = (CUBLASLT_EPILOGUE_GELU_AUX | CUBLASLT_EPILOGUE_BIAS),
  CUBLASLT_EPILOGUE_DGELU = 64 | 128,
  CUBLASLT_EPILOGUE_DGELU_BGRAD = CUBLASLT_EPILOGUE_DGELU | 16,
  CUBLASLT_EPILOGUE_BGRADA = 256,
  CUBLASLT_EPILOGUE_BGRADB = 512
} cublasLtEpilogue_t;

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t* lightHandle);
cublasStatus_t cublasLtDestroy(cublasLtHandle_t lightHandle);

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* matmulDesc,
                                        cublasComputeType_t computeType, cudaDataType_t scaleType);
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc);
// The attributes above, with their documented types: TRANSA/TRANSB int32 (cublasOperation_t),
// EPILOGUE uint32, BIAS_POINTER and EPILOGUE_AUX_POINTER void*, EPILOGUE_AUX_LD int64,
// COMPUTE_TYPE/SCALE_TYPE/POINTER_MODE/BIAS_DATA_TYPE int32 (only host pointers; the bias fp32,
// or bf16 beside a bf16 D; -1, the default, is D's type);
// a size that does not match the type is CUBLAS_STATUS_INVALID_VALUE.
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t matmulDesc,
                                              cublasLtMatmulDescAttributes_t attr, const void* buf,
                                              size_t sizeInBytes);

// Column-major (CUBLASLT_ORDER_COL, the default): ld >= rows.
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* matLayout, cudaDataType type,
                                          uint64_t rows, uint64_t cols, int64_t ld);
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matLayout);

// C must equal D (in place) or be a separate fp32 matrix of D's shape; algo and workspace are
// accepted and ignored (the stand-in has one algorithm). algo nullptr: cuBLASLt runs its
// heuristic inside the call, which mlpx_sim::cublaslt_heuristic_queries() counts.
cublasStatus_t cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc,
                              const void* alpha, const void* A, cublasLtMatrixLayout_t Adesc,
                              const void* B, cublasLtMatrixLayout_t Bdesc, const void* beta,
                              const void* C, cublasLtMatrixLayout_t Cdesc, void* D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t* algo,
                              void* workspace, size_t workspaceSizeInBytes, cudaStream_t stream);

// Preferences for the heuristic: MAX_WORKSPACE_BYTES (uint64) and MIN_ALIGNMENT_{A,B,C,D}_BYTES
// (uint32); other attributes are CUBLAS_STATUS_INVALID_VALUE here.
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref);
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref);
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void* buf, size_t sizeInBytes);
// The heuristic: one result (the stand-in's one algorithm, no workspace), counted by
// mlpx_sim::cublaslt_heuristic_queries().
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(
    cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc, cublasLtMatrixLayout_t Adesc,
    cublasLtMatrixLayout_t Bdesc, cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
    cublasLtMatmulPreference_t preference, int requestedAlgoCount,
    cublasLtMatmulHeuristicResult_t heuristicResultsArray[], int* returnAlgoCount);

}  // extern "C"
