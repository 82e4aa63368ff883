// Raw memory on any device: the layer under Tensor. Internal.
#pragma once

#include <cstddef>

#include "mlpx/device.h"

namespace mlpx::detail {

// Allocates `bytes` on `device` (on the CPU 64-byte aligned, and from 2 MiB up 2 MiB aligned
// with transparent huge pages advised on Linux); throws Error when it cannot,
// naming how much was asked for (and, on a GPU, how much was free).
void* allocate(size_t bytes, Device device);
void deallocate(void* ptr, Device device) noexcept;
// Copies between any two devices; returns when the bytes are in place.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void zero_bytes(void* dst, Device device, size_t bytes);

}  // namespace mlpx::detail
