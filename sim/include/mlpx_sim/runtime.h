// The simulator runtime's own interface beyond the CUDA API (sim/src/runtime_sim.cpp): how the
// cuBLAS and Thrust stand-ins put work on a stream, the range checks they make, and the
// controls tests use. See sim/README.md ("The runtime").
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "cuda_runtime_api.h"

namespace mlpx_sim {

// Puts device work other than a kernel launch (a cuBLAS call, a Thrust sort) on `stream`
// (0: the legacy default stream): it runs, with device memory accessible, when the stream's
// queue is drained, in order with the stream's other work; while the stream captures it is
// recorded instead, and each graph launch runs `run` again. `what` names it in fault messages.
// Returns the error a launch would get at the call (a bad handle, an invalidated capture, an
// earlier sticky fault), which is also set as the calling thread's last error.
cudaError_t enqueue_work(cudaStream_t stream, std::string what, std::function<void()> run);

// For running work: true when [ptr, ptr + bytes) lies inside one live device allocation; else
// false, with why ("0x... is not device memory", "... extends 4 bytes past an allocation of
// 12 bytes at 0x...", "... lies in a freed allocation ...").
bool check_device_range(const void* ptr, size_t bytes, std::string& why);
// True when `ptr` points into a live device allocation.
bool is_device_pointer(const void* ptr);

// For running work: reports an asynchronous fault (cudaErrorLaunchFailure,
// cudaErrorIllegalAddress): prints "mlpx sim: <why>" to stderr, drops all queued work and
// makes `code` sticky: every later synchronisation and most later calls return it.
void raise_fault(cudaError_t code, const std::string& why);

// ---- Controls, for tests and tools ---------------------------------------------------------

// Clears a sticky fault and the calling thread's last error (a real process would have to
// exit; tests that provoke faults on purpose use this to carry on).
void reset_fault();

// The simulated device's memory: total bytes (cudaMemGetInfo's total; the cap cudaMalloc
// enforces). Initially MLPX_SIM_DEVICE_MEMORY from the environment ("8G", "512M", bytes), else
// 141 GiB, as an H200.
void set_device_memory_limit(size_t bytes);
size_t device_memory_limit();
size_t device_bytes_in_use();

// The number of simulated devices (cudaGetDeviceCount): MLPX_SIM_DEVICES from the environment
// (0 to 8), else 1. Setting it is for tests; a program that has cached the count keeps its copy.
void set_device_count(int count);
int device_count();

// How many calls so far made the host wait for device work: cudaStreamSynchronize,
// cudaDeviceSynchronize, cudaEventSynchronize, cudaFree of device memory (it waits for the
// device), cudaMemcpy with host memory. For tests that check a loop does not synchronise.
uint64_t host_waits();

// Makes device memory accessible to host code while it lives (device memory is otherwise
// PROT_NONE outside device work): for executor tests that call execute() directly on device
// allocations. Nests.
class DeviceAccess {
 public:
  DeviceAccess();
  ~DeviceAccess();
  DeviceAccess(const DeviceAccess&) = delete;
  DeviceAccess& operator=(const DeviceAccess&) = delete;
};

}  // namespace mlpx_sim
