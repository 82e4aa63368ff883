// What the core layer needs from the CUDA backend: whether it is built, its devices, their
// memory, copies, and the synchronisation that raises the faults device code flagged. No CUDA
// type appears here. Implemented by kernels/runtime.cpp, or by kernels/stub.cpp in a CPU-only
// build (no devices; everything else throws CudaError). Internal.
#pragma once

#include <cstddef>

#include "mlpx/device.h"

namespace mlpx::cuda {

// True in a build with the CUDA backend (kernels/runtime.cpp), false with kernels/stub.cpp.
bool built();
// Usable CUDA devices; 0 without a driver, a device or the backend.
int device_count();

// Device memory is stream-ordered: allocated and freed in the order of the device's stream,
// so deallocate returns at once and never waits for the device.
void* allocate(size_t bytes, int device);
void deallocate(void* ptr, int device) noexcept;
// Copies between a device and the host or two devices; returns when host memory may be reused.
// Between two devices the copy comes after the work queued on both devices' streams, and the
// work queued on either later comes after the copy.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void zero_bytes(void* dst, int device, size_t bytes);

// Waits for the device's stream, then throws the first fault that device code flagged
// (and clears it).
void synchronize_and_check(int device);
// Copies each of `count` device ranges of `device` (src[i], bytes[i]) to host memory (dst[i])
// after the work queued so far, together with the device status, through one staging buffer
// with ONE wait for the device; then checks the status as synchronize_and_check does.
void copy_to_host_and_check(void* const* dst, const void* const* src, const size_t* bytes,
                            size_t count, int device);

}  // namespace mlpx::cuda
