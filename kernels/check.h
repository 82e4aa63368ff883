// Status checks for CUDA runtime and cuBLAS calls. Internal.
//   MLPX_CUDA_CHECK(stmt)          throws CudaError with file:line, the statement and the error
//   MLPX_CUDA_CHECK_NOTHROW(stmt)  logs the same as an error (destructors; see mlpx/log.h)
//   MLPX_CUDA_CHECK_LAUNCH()       checks cudaGetLastError after a kernel launch
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

namespace mlpx::cuda::detail {
// Each returns true when the status is success; `fatal` decides throw vs print.
bool check(cudaError_t status, const char* stmt, const char* file, int line, bool fatal);
bool check(cublasStatus_t status, const char* stmt, const char* file, int line, bool fatal);
}  // namespace mlpx::cuda::detail

#define MLPX_CUDA_CHECK(stmt) ::mlpx::cuda::detail::check((stmt), #stmt, __FILE__, __LINE__, true)
#define MLPX_CUDA_CHECK_NOTHROW(stmt) \
  ::mlpx::cuda::detail::check((stmt), #stmt, __FILE__, __LINE__, false)
#define MLPX_CUDA_CHECK_LAUNCH() MLPX_CUDA_CHECK(cudaGetLastError())
