// The CUDA backend's host glue: per-device context (stream, cuBLAS handles, workspace,
// device status flag) and raw memory. Internal; public headers never include CUDA headers.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>

#include "cuda/status.h"
#include "mlpx/device.h"

namespace mlpx::cuda {

struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;  // every mlpx launch on this device goes here
  cublasHandle_t blas = nullptr;  // bound to `stream`, fixed workspace (deterministic)
  cublasLtHandle_t blas_lt = nullptr;
  void* workspace = nullptr;  // shared by cuBLAS and cuBLASLt
  size_t workspace_bytes = 0;
  DeviceStatus* status = nullptr;  // device memory; see status.h
  bool tf32 = false;               // see set_tf32()
};

int device_count();
// The context of `device`, created on first use and kept for the life of the process.
Context& context(int device);
// The stream of `device`, with `device` made the calling thread's current device, so that
// kernels launched next (which use the current device) run where their stream and memory are.
cudaStream_t stream_of(Device device);

// precision "tf32": cuBLAS GEMMs on `device` use TF32 tensor cores (inputs rounded to 10-bit
// mantissas, fp32 accumulation) while enabled; otherwise pedantic fp32 (the default).
// Process-wide for the device's context: run_training sets it for its run and restores it.
void set_tf32(int device, bool enabled);
bool tf32_enabled(int device);

// Waits for the device's stream, then throws the first fault that device code flagged
// (and clears it).
void synchronize_and_check(int device);

void* allocate(size_t bytes, int device);
void deallocate(void* ptr, int device) noexcept;
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void zero_bytes(void* dst, int device, size_t bytes);

}  // namespace mlpx::cuda
