// The CUDA backend's host glue: the per-device context (stream, cuBLAS handle, workspace,
// device status flag). Used inside kernels/ only: the layers above see the CUDA-free
// core/backend.h and the launchers' headers. Internal.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

#include "core/backend.h"
#include "kernels/status.h"
#include "mlpx/device.h"

namespace mlpx::cuda {

// Owns what it holds: the destructor synchronizes the stream, then frees the status block and
// the workspace and destroys the event, the handle and the stream (so a context that failed
// half way through its creation releases what it had).
struct Context {
  Context() = default;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context();

  int device = 0;
  cudaStream_t stream = nullptr;       // every mlpx launch on this device goes here
  cublasHandle_t blas = nullptr;       // bound to `stream`, fixed workspace (deterministic)
  cublasLtHandle_t blas_lt = nullptr;  // the epilogue GEMMs (kernels/gemm.cpp, gemm_epilogue)
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  DeviceStatus* status = nullptr;  // device memory; see status.h
  // The bfloat16 copies of a bf16 GEMM's inputs (kernels/gemm.cpp): grown by bf16_scratch,
  // never shrunk, so that a captured step (whose shapes the plain first step has seen)
  // allocates nothing. A buffer it outgrew stays allocated until the context goes (in
  // `retired`): a captured graph may still name it.
  void* bf16_scratch = nullptr;
  size_t bf16_scratch_bytes = 0;
  std::vector<void*> retired;
  // The staging buffer of copy_to_host_and_check (the epoch's one read-back): grown, never
  // shrunk, so that a read-back allocates at most once per size.
  void* readback = nullptr;
  size_t readback_bytes = 0;
  // Recorded on `stream` where another device's stream must wait for the work queued so far
  // (a copy between devices, kernels/runtime.cpp).
  cudaEvent_t ready = nullptr;
};

// Makes `device` the calling thread's current device while it lives, then restores the device
// that was current. CUDA allocates, creates events and launches kernels on the current device,
// so a helper that works on one device sets it, and leaves the caller's choice as it was.
// `fatal`: a failing call throws CudaError; otherwise it is logged (destructors, noexcept).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device, bool fatal = true);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  int device_ = -1;
};

// The context of `device`, created on first use and kept until the process exits: an atexit
// handler, registered after the first CUDA call (so it runs before the CUDA runtime's own
// teardown), releases every context, so that a leak checker sees nothing left.
Context& context(int device);
// ctx.bf16_scratch with at least `bytes`: when smaller, a new one of at least twice the size
// (so that the retired ones add up to less than the last). Inside a graph capture a new
// allocation fails the capture (the trainer then runs plain launches).
void* bf16_scratch(Context& ctx, size_t bytes);
// The stream of `device`, with `device` made the calling thread's current device, so that
// kernels launched next (which use the current device) run where their stream and memory are.
cudaStream_t stream_of(Device device);

}  // namespace mlpx::cuda
