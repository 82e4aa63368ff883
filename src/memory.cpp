#include "memory.h"

#include <cstdlib>
#include <cstring>

#include "mlpx/error.h"
#if MLPX_WITH_CUDA
#include "cuda/runtime.h"
#endif

namespace mlpx::detail {

void fail_without_cuda(const char* what) {
  throw CudaError(concat(what,
                         ": expected a build with the CUDA backend, found a CPU-only build "
                         "(configure with -DMLPX_CUDA=ON on a machine with nvcc)"));
}

void* allocate(size_t bytes, Device device) {
  if (bytes == 0) return nullptr;
  if (device.is_cuda()) {
#if MLPX_WITH_CUDA
    return cuda::allocate(bytes, device.index);
#else
    fail_without_cuda("allocate");
#endif
  }
  constexpr size_t kAlign = 64;
  void* ptr = std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
  MLPX_CHECK(ptr != nullptr, Error, "out of host memory: asked for ", bytes, " bytes");
  return ptr;
}

void deallocate(void* ptr, Device device) noexcept {
  if (ptr == nullptr) return;
  if (device.is_cuda()) {
#if MLPX_WITH_CUDA
    cuda::deallocate(ptr, device.index);
#endif
    return;
  }
  std::free(ptr);
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#if MLPX_WITH_CUDA
  cuda::copy_bytes(dst, dst_device, src, src_device, bytes);
#else
  fail_without_cuda("copy");
#endif
}

void zero_bytes(void* dst, Device device, size_t bytes) {
  if (bytes == 0) return;
  if (device.is_cpu()) {
    std::memset(dst, 0, bytes);
    return;
  }
#if MLPX_WITH_CUDA
  cuda::zero_bytes(dst, device.index, bytes);
#else
  fail_without_cuda("zero");
#endif
}

}  // namespace mlpx::detail
