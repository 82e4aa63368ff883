#include "core/memory.h"

#include <cstdlib>
#include <cstring>

#include "core/backend.h"
#include "mlpx/error.h"

namespace mlpx::detail {

void* allocate(size_t bytes, Device device) {
  if (bytes == 0) return nullptr;
  if (device.is_cuda()) return cuda::allocate(bytes, device.index);
  constexpr size_t kAlign = 64;
  void* ptr = std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
  MLPX_CHECK(ptr != nullptr, Error, "out of host memory: asked for ", bytes, " bytes");
  return ptr;
}

void deallocate(void* ptr, Device device) noexcept {
  if (ptr == nullptr) return;
  if (device.is_cuda()) {
    cuda::deallocate(ptr, device.index);
  } else {
    std::free(ptr);
  }
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
  } else {
    cuda::copy_bytes(dst, dst_device, src, src_device, bytes);
  }
}

void zero_bytes(void* dst, Device device, size_t bytes) {
  if (bytes == 0) return;
  if (device.is_cpu()) {
    std::memset(dst, 0, bytes);
  } else {
    cuda::zero_bytes(dst, device.index, bytes);
  }
}

}  // namespace mlpx::detail
