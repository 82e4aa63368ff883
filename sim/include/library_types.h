// The simulator's stand-in for CUDA's <library_types.h>: the data type tags cuBLAS takes
// (real values). CUDA_R_32F is computed with, and CUDA_R_16BF as GemmEx inputs; the others
// are named for completeness.
#pragma once

typedef enum cudaDataType_t {
  CUDA_R_16F = 2,
  CUDA_R_32F = 0,
  CUDA_R_64F = 1,
  CUDA_R_16BF = 14
} cudaDataType;
