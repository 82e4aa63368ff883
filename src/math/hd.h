// MLPX_HD marks the scalar formulas under mlpx/math/ as host and device code, so the CPU
// loops and the CUDA kernels call the very same inline functions.
#pragma once

#if defined(__CUDACC__)
#define MLPX_HD __host__ __device__ __forceinline__
#else
#define MLPX_HD inline
#endif
