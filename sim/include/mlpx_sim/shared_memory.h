// Dynamic shared memory (CUDA's `extern __shared__ T name[];`) for kernels compiled as C++.
//
// `extern` cannot be combined with the simulator's `__shared__` (which is `static`), so kernel
// code names the block's dynamic shared memory through a macro that has both spellings
// (MLPX_DYNAMIC_SHARED in kernels/launch.cuh), which here calls dynamic_shared_memory<T>().
// The memory is one arena of 227 KiB (the H200's per-block limit) followed by a PROT_NONE guard
// page; a launch's `shared_bytes` (rounded up to 16) end right at the guard page, so an access
// past them faults. It is filled with poison (0xFF bytes: NaN as float) at the start of every
// block, so a read of memory the block has not written shows; and the racecheck tracks it like
// static `__shared__` memory. Implemented by sim/src/device_extensions.cpp.
#pragma once

#include <cstddef>

namespace mlpx_sim {

namespace detail {
// The running launch's dynamic shared memory (its first byte), 16-byte aligned.
unsigned char* dynamic_shared_base();
// [executor] A launch asking for `bytes` starts / one of its blocks of `threads` threads starts.
void dynamic_shared_launch_started(size_t bytes);
void device_block_started(unsigned threads);
}  // namespace detail

template <typename T>
inline T* dynamic_shared_memory() {
  return reinterpret_cast<T*>(detail::dynamic_shared_base());
}

}  // namespace mlpx_sim
