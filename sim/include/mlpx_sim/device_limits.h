// Function and device attributes of the CUDA runtime that the simulator models: the opt-in to
// more than 48 KiB of dynamic shared memory per block, and the device attributes a launcher
// reads to size its shared memory (the simulated device is an H200, compute capability 9.0).
// Included by the stand-in <cuda_runtime_api.h>; implemented by sim/src/device_extensions.cpp.
#pragma once

#include "mlpx_sim/types.h"

// The real values (driver_types.h).
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9
};
enum cudaDeviceAttr {
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97
};

extern "C" {
// cudaFuncAttributeMaxDynamicSharedMemorySize: the most dynamic shared memory a launch of
// `func` may ask for (0 .. 227 KiB; 48 KiB until set, as on the device). The carveout is
// accepted (0 .. 100 or -1) and has no effect. Other values: cudaErrorInvalidValue.
cudaError_t cudaFuncSetAttribute(const void* func, enum cudaFuncAttribute attr, int value);
// The H200's figures for the attributes above; cudaErrorInvalidValue for any other attribute,
// cudaErrorInvalidDevice for a device that does not exist.
cudaError_t cudaDeviceGetAttribute(int* value, enum cudaDeviceAttr attr, int device);
}

// CUDA's C++ overload for a kernel named by its own pointer type.
template <typename Function>
cudaError_t cudaFuncSetAttribute(Function* func, enum cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(func), attr, value);
}

namespace mlpx_sim {

// An H200's shared memory: 228 KiB per SM, of which one block may use 227 KiB (with the opt-in
// above 48 KiB); 1 KiB per block is reserved by the system.
inline constexpr int kSharedBytesPerBlock = 48 * 1024;
inline constexpr int kSharedBytesPerBlockOptin = 227 * 1024;
inline constexpr int kSharedBytesPerMultiprocessor = 228 * 1024;

namespace detail {
// The dynamic shared memory limit for launches of `function` (48 KiB unless opted in).
size_t max_dynamic_shared_bytes(const void* function);
}  // namespace detail

}  // namespace mlpx_sim
