// The simulator's CUDA runtime (cuda_runtime_api.h, mlpx_sim/runtime.h, enqueue_launch of
// mlpx_sim/launch.h). This file: the CUDA runtime API's errors, devices and memory; the other
// parts are listed in runtime_internal.h. See sim/README.md ("The runtime") for the model:
//   - device memory: one mmap per allocation, the allocation ending right before a PROT_NONE
//     guard page, filled with 0xFF (poison); the bytes around it (lead and alignment slack) hold
//     a canary checked after every kernel; all of it PROT_NONE except while device work runs;
//     a SIGSEGV handler names device-memory faults;
//   - streams: queues of work that run only when the program synchronises, in stream order
//     (legacy default stream semantics for stream 0 and blocking streams), after the event
//     records they wait on (cudaStreamWaitEvent);
//   - devices: MLPX_SIM_DEVICES of them (default 1), sharing the one memory; streams, events
//     and allocations belong to the device current when they are made;
//   - graph capture: records stream work, rejects what real capture rejects with the same
//     codes; graphs replay the recorded work;
//   - faults: sticky, as a real launch failure.
#include "runtime_internal.h"

// =================================================================================================
// The CUDA runtime API

using namespace mlpx_sim::runtime_detail;  // NOLINT

extern "C" {

cudaError_t cudaGetLastError(void) {
  cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  if (e == cudaSuccess) e = sticky();
  return e;
}

cudaError_t cudaPeekAtLastError(void) {
  return t_last_error != cudaSuccess ? t_last_error : sticky();
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define MLPX_SIM_NAME(code) \
  case code:                \
    return #code;
    MLPX_SIM_NAME(cudaSuccess)
    MLPX_SIM_NAME(cudaErrorInvalidValue)
    MLPX_SIM_NAME(cudaErrorMemoryAllocation)
    MLPX_SIM_NAME(cudaErrorInitializationError)
    MLPX_SIM_NAME(cudaErrorCudartUnloading)
    MLPX_SIM_NAME(cudaErrorInvalidConfiguration)
    MLPX_SIM_NAME(cudaErrorInvalidDevicePointer)
    MLPX_SIM_NAME(cudaErrorInvalidMemcpyDirection)
    MLPX_SIM_NAME(cudaErrorNoDevice)
    MLPX_SIM_NAME(cudaErrorInvalidDevice)
    MLPX_SIM_NAME(cudaErrorInvalidResourceHandle)
    MLPX_SIM_NAME(cudaErrorIllegalState)
    MLPX_SIM_NAME(cudaErrorNotReady)
    MLPX_SIM_NAME(cudaErrorIllegalAddress)
    MLPX_SIM_NAME(cudaErrorLaunchFailure)
    MLPX_SIM_NAME(cudaErrorNotPermitted)
    MLPX_SIM_NAME(cudaErrorNotSupported)
    MLPX_SIM_NAME(cudaErrorStreamCaptureUnsupported)
    MLPX_SIM_NAME(cudaErrorStreamCaptureInvalidated)
    MLPX_SIM_NAME(cudaErrorStreamCaptureMerge)
    MLPX_SIM_NAME(cudaErrorStreamCaptureUnmatched)
    MLPX_SIM_NAME(cudaErrorStreamCaptureUnjoined)
    MLPX_SIM_NAME(cudaErrorStreamCaptureIsolation)
    MLPX_SIM_NAME(cudaErrorStreamCaptureImplicit)
    MLPX_SIM_NAME(cudaErrorCapturedEvent)
    MLPX_SIM_NAME(cudaErrorStreamCaptureWrongThread)
    MLPX_SIM_NAME(cudaErrorUnknown)
#undef MLPX_SIM_NAME
  }
  return "unrecognized error code";
}

const char* cudaGetErrorString(cudaError_t error) {
  Lock lock(api_mutex());
  const auto& detail = errors().detail;
  const auto it = detail.find(error);
  if (it != detail.end() && it->second != nullptr) return it->second;
  return generic_message(error);
}

// ---- Device ----------------------------------------------------------------------------------

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return fail(cudaErrorInvalidValue);
  Lock lock(api_mutex());
  if (no_device()) {
    *count = 0;
    return fail(cudaErrorNoDevice, "no CUDA-capable device is detected (MLPX_SIM_DEVICES=0)");
  }
  *count = state().device_count;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  Lock lock(api_mutex());
  if (no_device()) return fail(cudaErrorNoDevice);
  const cudaError_t e = check_device(device, "cudaSetDevice");
  if (e != cudaSuccess) return e;
  t_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return fail(cudaErrorInvalidValue);
  Lock lock(api_mutex());
  if (no_device()) return fail(cudaErrorNoDevice);
  *device = t_device;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  State& st = state();
  std::vector<CUstream_st*> capturing;
  for (CUstream_st* s : st.streams)
    if (s->capture) capturing.push_back(s);
  if (!capturing.empty()) {
    const std::string why = "cudaDeviceSynchronize while " + stream_name(capturing.front()) +
                            " captures; the capture is invalidated";
    for (CUstream_st* s : capturing) invalidate(s, why);
    return fail(cudaErrorStreamCaptureUnsupported, why);
  }
  count_host_wait("cudaDeviceSynchronize");
  drain_device(t_device);
  return sync_result();
}

// ---- Memory ----------------------------------------------------------------------------------

cudaError_t cudaMalloc(void** devPtr, size_t size) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  const cudaError_t e = check_unsafe("cudaMalloc", false);
  if (e != cudaSuccess) return e;
  return allocate(devPtr, size, t_device, nullptr);
}

cudaError_t cudaFree(void* devPtr) {
  Lock lock(api_mutex());
  if (devPtr == nullptr) return sticky() != cudaSuccess ? fail_sticky() : cudaSuccess;
  const cudaError_t unsafe = check_unsafe("cudaFree", false);
  if (unsafe != cudaSuccess) return unsafe;
  Slot* s = find_live_start(devPtr);
  if (s == nullptr) {
    Slot* any = find_slot(reinterpret_cast<uintptr_t>(devPtr));
    std::string why = "cudaFree(" + hex(devPtr) + "): ";
    if (any == nullptr)
      why += "not device memory";
    else if (any->state.load() != kSlotLive)
      why += "already freed (an allocation of " + std::to_string(any->size.load()) + " bytes)";
    else
      why += "not the start of a device allocation (inside " +
             describe_offset(reinterpret_cast<uintptr_t>(devPtr), *any) + ")";
    return fail(cudaErrorInvalidValue, why);
  }
  // cudaFree waits for the device: work queued before may still use the memory.
  count_host_wait("cudaFree");
  if (sticky() == cudaSuccess) drain_device(s->device);
  release(*s);
  return sync_result();
}

cudaError_t cudaMallocAsync(void** devPtr, size_t size, cudaStream_t stream) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (s->capture) {
    if (s->capture->invalidated)
      return fail(cudaErrorStreamCaptureInvalidated,
                  "cudaMallocAsync on " + stream_name(s) +
                      ": the capture was invalidated earlier: " + s->capture->why);
    Slot* made = nullptr;
    const cudaError_t e = allocate(devPtr, size, s->device, &made);
    if (e != cudaSuccess || made == nullptr) return e;
    auto owner = std::make_shared<GraphAllocation>();
    owner->ptr = *devPtr;
    owner->id = made->id;
    s->capture->allocations[*devPtr] = owner;
    return submit(s, make_item(
                         "cudaMallocAsync (graph allocation)", false,
                         [owner] { owner->repoison(); }, cudaGraphNodeTypeMemAlloc));
  }
  if (s->legacy) {
    const cudaError_t e = check_legacy_use("cudaMallocAsync");
    if (e != cudaSuccess) return e;
  }
  return allocate(devPtr, size, s->legacy ? t_device : s->device, nullptr);
}

cudaError_t cudaFreeAsync(void* devPtr, cudaStream_t stream) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (devPtr == nullptr) return cudaSuccess;
  if (s->capture) {
    if (s->capture->invalidated)
      return fail(cudaErrorStreamCaptureInvalidated,
                  "cudaFreeAsync on " + stream_name(s) +
                      ": the capture was invalidated earlier: " + s->capture->why);
    auto it = s->capture->allocations.find(devPtr);
    if (it == s->capture->allocations.end())
      return fail(cudaErrorNotSupported,
                  "cudaFreeAsync(" + hex(devPtr) +
                      ") during stream capture of memory not allocated in the same capture: not "
                      "modelled by the simulator");
    auto owner = it->second;
    s->capture->allocations.erase(it);
    // The graph keeps the memory (its allocation node poisons it again at each replay).
    return submit(
        s, make_item(
               "cudaFreeAsync (graph allocation)", false, [owner] {}, cudaGraphNodeTypeMemFree));
  }
  Slot* slot = find_live_start(devPtr);
  if (slot == nullptr)
    return fail(cudaErrorInvalidValue,
                "cudaFreeAsync(" + hex(devPtr) + "): not the start of a live device allocation");
  const uint64_t id = slot->id;
  return submit(s, make_item("cudaFreeAsync", false, [devPtr, id] {
                  Slot* now = find_live_start(devPtr);
                  if (now == nullptr || now->id != id) {
                    mlpx_sim::raise_fault(
                        cudaErrorIllegalAddress,
                        "cudaFreeAsync(" + hex(devPtr) + "): the memory was freed before");
                    return;
                  }
                  release(*now);
                }));
}

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  if (free == nullptr || total == nullptr) return fail(cudaErrorInvalidValue);
  const Memory& m = state().memory;
  *total = m.limit;
  *free = m.limit > m.used ? m.limit - m.used : 0;
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (count == 0) return cudaSuccess;
  ItemPtr item;
  bool touches_host = false;
  const cudaError_t e = make_copy("cudaMemcpyAsync", dst, src, count, kind, item, touches_host);
  if (e != cudaSuccess) return e;
  return submit(s, std::move(item));
}

cudaError_t cudaMemcpyPeerAsync(void* dst, int dstDevice, const void* src, int srcDevice,
                                size_t count, cudaStream_t stream) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  cudaError_t e = check_device(dstDevice, "cudaMemcpyPeerAsync");
  if (e == cudaSuccess) e = check_device(srcDevice, "cudaMemcpyPeerAsync");
  if (e != cudaSuccess) return e;
  if (count == 0) return cudaSuccess;
  ItemPtr item;
  bool touches_host = false;
  e = make_copy("cudaMemcpyPeerAsync", dst, src, count, cudaMemcpyDeviceToDevice, item,
                touches_host);
  if (e != cudaSuccess) return e;
  const Slot* d = find_slot(reinterpret_cast<uintptr_t>(dst));
  const Slot* r = find_slot(reinterpret_cast<uintptr_t>(src));
  if (d->device != dstDevice || r->device != srcDevice)
    return fail(cudaErrorInvalidValue,
                "cudaMemcpyPeerAsync: the destination " + hex(dst) + " is memory of device " +
                    std::to_string(d->device) + " (named: " + std::to_string(dstDevice) +
                    "), the source " + hex(src) + " of device " + std::to_string(r->device) +
                    " (named: " + std::to_string(srcDevice) + ")");
  return submit(s, std::move(item));
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  const cudaError_t unsafe = check_unsafe("cudaMemcpy", true);
  if (unsafe != cudaSuccess) return unsafe;
  if (count == 0) return cudaSuccess;
  ItemPtr item;
  bool touches_host = false;
  cudaError_t e = make_copy("cudaMemcpy", dst, src, count, kind, item, touches_host);
  if (e != cudaSuccess) return e;
  State& st = state();
  uint64_t seq = 0;
  e = submit(&st.legacy, std::move(item), &seq);
  if (e != cudaSuccess) return e;
  // With host memory on either side, cudaMemcpy returns once the copy is done (after the work
  // queued before it); device to device, it does not wait.
  if (touches_host) {
    count_host_wait("cudaMemcpy");
    Drain drain;
    run_until(&st.legacy, seq, drain);
  }
  return sync_result();
}

cudaError_t cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t stream) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (count == 0) return cudaSuccess;
  ItemPtr item;
  const cudaError_t e = make_memset("cudaMemsetAsync", devPtr, value, count, item);
  if (e != cudaSuccess) return e;
  return submit(s, std::move(item));
}

cudaError_t cudaMemset(void* devPtr, int value, size_t count) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  const cudaError_t unsafe = check_unsafe("cudaMemset", true);
  if (unsafe != cudaSuccess) return unsafe;
  if (count == 0) return cudaSuccess;
  ItemPtr item;
  const cudaError_t e = make_memset("cudaMemset", devPtr, value, count, item);
  if (e != cudaSuccess) return e;
  // On device memory cudaMemset is asynchronous to the host: queued on the legacy stream.
  return submit(&state().legacy, std::move(item));
}

}  // extern "C"
