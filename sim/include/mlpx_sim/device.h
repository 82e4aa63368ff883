// The CUDA device built-ins, as the kernels use them, for kernels compiled as plain C++ by the
// host compiler (g++ -x c++) and run by the simulator's executor (sim/src/executor.cpp).
// Part of the simulator's stand-in for <cuda_runtime.h>.
//
// Execution model (sim/README.md): a launch runs its blocks one at a time, in an order
// shuffled by MLPX_SIM_SEED; every thread of the running block is a cooperative fiber on
// one OS thread. A thread runs until it ends or reaches a rendezvous (__syncthreads and its
// _count/_and/_or forms, a warp shuffle, a vote, __syncwarp); there it yields and the
// executor resumes another. Nothing else switches threads, so:
//   - __shared__ is `static`: blocks never overlap in time, so one copy serves every block in
//     turn. It is not cleared between blocks or launches (the hardware does not clear it
//     either): a block that reads shared memory before writing it sees an earlier block's data.
//   - atomics are plain read-modify-writes: no other thread can run inside one.
//   - __threadfence* are no-ops: one OS thread sees its own writes in program order, and
//     another block cannot start before this one has finished.
// Dynamic shared memory: mlpx_sim/shared_memory.h (kernels name it with MLPX_DYNAMIC_SHARED).
// Warp-level mma.sync (bf16 m16n8k16): mlpx_sim/tensor_core.h.
//
// Host code must not call the rendezvous built-ins: outside a kernel they abort with a message.
#pragma once

#include <math.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "mlpx_sim/shared_memory.h"
#include "mlpx_sim/tensor_core.h"
#include "mlpx_sim/types.h"

// ---- Function and variable qualifiers -----------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __constant__
// Blocks run one at a time, so one static copy serves every block (see above).
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
// __restrict__ is g++'s own. __noinline__ is deliberately not defined: libstdc++ headers spell
// __attribute__((__noinline__)), which such a macro would break.

namespace mlpx_sim {

// The coordinates of the running thread (kept current by the executor at every switch).
struct ThreadCoordinates {
  uint3 thread_idx{0, 0, 0};
  uint3 block_idx{0, 0, 0};
  dim3 block_dim{1, 1, 1};
  dim3 grid_dim{1, 1, 1};
};

namespace detail {

extern ThreadCoordinates g_coordinates;

// The warp rendezvous kinds (shuffles, votes, __syncwarp) and the block barrier kinds.
enum class WarpOp : int {
  kShflIdx,
  kShflUp,
  kShflDown,
  kShflXor,
  kBallot,
  kAll,
  kAny,
  kSyncWarp,
  kMmaSync  // the operands travel beside the rendezvous (mlpx_sim/tensor_core.h)
};
enum class BarrierOp : int { kSync, kCount, kAnd, kOr };

// Implemented by the executor. A warp rendezvous of the lanes named in `mask`: waits until each
// of them has reached an operation of the same kind, then returns this lane's result (the
// bits read by a shuffle, or the vote). `size` is the byte size of the shuffled type.
uint64_t warp_rendezvous(WarpOp op, unsigned mask, uint64_t bits, unsigned size, int param,
                         int width, const char* file, int line);
// A block barrier: waits until every thread of the block has arrived at this call site;
// returns the count, and, or of the predicates (0 for plain __syncthreads).
int block_barrier(BarrierOp op, int predicate, const char* file, int line);

template <typename T>
inline T shuffle(WarpOp op, unsigned mask, T var, int param, int width, const char* file,
                 int line) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "shuffles move 4- or 8-byte values");
  uint64_t bits = 0;
  std::memcpy(&bits, &var, sizeof(T));
  bits = warp_rendezvous(op, mask, bits, sizeof(T), param, width, file, line);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

}  // namespace detail

inline const uint3& thread_index() { return detail::g_coordinates.thread_idx; }
inline const uint3& block_index() { return detail::g_coordinates.block_idx; }
inline const dim3& block_dimensions() { return detail::g_coordinates.block_dim; }
inline const dim3& grid_dimensions() { return detail::g_coordinates.grid_dim; }

inline void syncthreads_at(const char* file, int line) {
  detail::block_barrier(detail::BarrierOp::kSync, 0, file, line);
}
inline int syncthreads_count_at(const char* file, int line, int predicate) {
  return detail::block_barrier(detail::BarrierOp::kCount, predicate, file, line);
}
inline int syncthreads_and_at(const char* file, int line, int predicate) {
  return detail::block_barrier(detail::BarrierOp::kAnd, predicate, file, line);
}
inline int syncthreads_or_at(const char* file, int line, int predicate) {
  return detail::block_barrier(detail::BarrierOp::kOr, predicate, file, line);
}

// Shuffles for the types CUDA provides them for (overloads, not a template, so that other
// arithmetic types convert as they do with nvcc). width must be a power of 2 up to 32.
#define MLPX_SIM_SHUFFLE_OVERLOADS(T)                                                            \
  inline T shfl_sync_at(const char* file, int line, unsigned mask, T var, int src_lane,          \
                        int width = 32) {                                                        \
    return detail::shuffle(detail::WarpOp::kShflIdx, mask, var, src_lane, width, file, line);    \
  }                                                                                              \
  inline T shfl_up_sync_at(const char* file, int line, unsigned mask, T var, unsigned delta,     \
                           int width = 32) {                                                     \
    return detail::shuffle(detail::WarpOp::kShflUp, mask, var, static_cast<int>(delta), width,   \
                           file, line);                                                          \
  }                                                                                              \
  inline T shfl_down_sync_at(const char* file, int line, unsigned mask, T var, unsigned delta,   \
                             int width = 32) {                                                   \
    return detail::shuffle(detail::WarpOp::kShflDown, mask, var, static_cast<int>(delta), width, \
                           file, line);                                                          \
  }                                                                                              \
  inline T shfl_xor_sync_at(const char* file, int line, unsigned mask, T var, int lane_mask,     \
                            int width = 32) {                                                    \
    return detail::shuffle(detail::WarpOp::kShflXor, mask, var, lane_mask, width, file, line);   \
  }
MLPX_SIM_SHUFFLE_OVERLOADS(int)
MLPX_SIM_SHUFFLE_OVERLOADS(unsigned int)
MLPX_SIM_SHUFFLE_OVERLOADS(long)
MLPX_SIM_SHUFFLE_OVERLOADS(unsigned long)
MLPX_SIM_SHUFFLE_OVERLOADS(long long)
MLPX_SIM_SHUFFLE_OVERLOADS(unsigned long long)
MLPX_SIM_SHUFFLE_OVERLOADS(float)
MLPX_SIM_SHUFFLE_OVERLOADS(double)
#undef MLPX_SIM_SHUFFLE_OVERLOADS

inline unsigned ballot_sync_at(const char* file, int line, unsigned mask, int predicate) {
  return static_cast<unsigned>(
      detail::warp_rendezvous(detail::WarpOp::kBallot, mask, predicate != 0, 4, 0, 32, file, line));
}
inline int all_sync_at(const char* file, int line, unsigned mask, int predicate) {
  return static_cast<int>(
      detail::warp_rendezvous(detail::WarpOp::kAll, mask, predicate != 0, 4, 0, 32, file, line));
}
inline int any_sync_at(const char* file, int line, unsigned mask, int predicate) {
  return static_cast<int>(
      detail::warp_rendezvous(detail::WarpOp::kAny, mask, predicate != 0, 4, 0, 32, file, line));
}

// __syncwarp(mask = 0xffffffff): a callable, so that the macro needs no empty-__VA_ARGS__ trick.
struct SyncWarpAt {
  const char* file;
  int line;
  void operator()(unsigned mask = 0xffffffffu) const {
    detail::warp_rendezvous(detail::WarpOp::kSyncWarp, mask, 0, 4, 0, 32, file, line);
  }
};

}  // namespace mlpx_sim

// ---- Built-in variables -------------------------------------------------------------------
#define threadIdx (::mlpx_sim::thread_index())
#define blockIdx (::mlpx_sim::block_index())
#define blockDim (::mlpx_sim::block_dimensions())
#define gridDim (::mlpx_sim::grid_dimensions())
inline constexpr int warpSize = 32;

// ---- Synchronisation (each carries its call site for the executor's messages) -------------
#define __syncthreads() ::mlpx_sim::syncthreads_at(__FILE__, __LINE__)
#define __syncthreads_count(predicate) \
  ::mlpx_sim::syncthreads_count_at(__FILE__, __LINE__, (predicate))
#define __syncthreads_and(predicate) ::mlpx_sim::syncthreads_and_at(__FILE__, __LINE__, (predicate))
#define __syncthreads_or(predicate) ::mlpx_sim::syncthreads_or_at(__FILE__, __LINE__, (predicate))
#define __syncwarp(...) (::mlpx_sim::SyncWarpAt{__FILE__, __LINE__}(__VA_ARGS__))
#define __shfl_sync(...) ::mlpx_sim::shfl_sync_at(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) ::mlpx_sim::shfl_up_sync_at(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) ::mlpx_sim::shfl_down_sync_at(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) ::mlpx_sim::shfl_xor_sync_at(__FILE__, __LINE__, __VA_ARGS__)
#define __ballot_sync(mask, predicate) \
  ::mlpx_sim::ballot_sync_at(__FILE__, __LINE__, (mask), (predicate))
#define __all_sync(mask, predicate) ::mlpx_sim::all_sync_at(__FILE__, __LINE__, (mask), (predicate))
#define __any_sync(mask, predicate) ::mlpx_sim::any_sync_at(__FILE__, __LINE__, (mask), (predicate))

// No-ops: one OS thread runs every simulated thread, so its writes are seen in program order,
// and blocks never overlap (see the top of this file).
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}

// ---- Atomics ------------------------------------------------------------------------------
// Plain read-modify-writes: the executor never switches threads inside one. Integer
// arithmetic wraps (done in unsigned), as on the device. Not instrumented for the racecheck
// (no_sanitize): atomics from several threads on one address are no hazard.
#define MLPX_SIM_ATOMIC inline __attribute__((no_sanitize("thread")))
namespace mlpx_sim::detail {
template <typename T>
inline T wrap_add(T a, T b) {
  if constexpr (sizeof(T) == 4) {
    return static_cast<T>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
  } else {
    return static_cast<T>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  }
}
}  // namespace mlpx_sim::detail

#define MLPX_SIM_ATOMIC_ADD(T)                                                  \
  MLPX_SIM_ATOMIC T atomicAdd(T* address, T value) {                            \
    const T old = *address;                                                     \
    *address = ::mlpx_sim::detail::wrap_add<T>(old, value);                     \
    return old;                                                                 \
  }                                                                             \
  MLPX_SIM_ATOMIC T atomicSub(T* address, T value) {                            \
    const T old = *address;                                                     \
    *address = ::mlpx_sim::detail::wrap_add<T>(old, static_cast<T>(0) - value); \
    return old;                                                                 \
  }
MLPX_SIM_ATOMIC_ADD(int)
MLPX_SIM_ATOMIC_ADD(unsigned int)
MLPX_SIM_ATOMIC_ADD(unsigned long long)
#undef MLPX_SIM_ATOMIC_ADD
MLPX_SIM_ATOMIC float atomicAdd(float* address, float value) {
  const float old = *address;
  *address = old + value;
  return old;
}
MLPX_SIM_ATOMIC double atomicAdd(double* address, double value) {
  const double old = *address;
  *address = old + value;
  return old;
}

#define MLPX_SIM_ATOMIC_BITS(T)                                 \
  MLPX_SIM_ATOMIC T atomicExch(T* address, T value) {           \
    const T old = *address;                                     \
    *address = value;                                           \
    return old;                                                 \
  }                                                             \
  MLPX_SIM_ATOMIC T atomicCAS(T* address, T compare, T value) { \
    const T old = *address;                                     \
    if (old == compare) *address = value;                       \
    return old;                                                 \
  }                                                             \
  MLPX_SIM_ATOMIC T atomicAnd(T* address, T value) {            \
    const T old = *address;                                     \
    *address = old & value;                                     \
    return old;                                                 \
  }                                                             \
  MLPX_SIM_ATOMIC T atomicOr(T* address, T value) {             \
    const T old = *address;                                     \
    *address = old | value;                                     \
    return old;                                                 \
  }                                                             \
  MLPX_SIM_ATOMIC T atomicXor(T* address, T value) {            \
    const T old = *address;                                     \
    *address = old ^ value;                                     \
    return old;                                                 \
  }                                                             \
  MLPX_SIM_ATOMIC T atomicMax(T* address, T value) {            \
    const T old = *address;                                     \
    if (value > old) *address = value;                          \
    return old;                                                 \
  }                                                             \
  MLPX_SIM_ATOMIC T atomicMin(T* address, T value) {            \
    const T old = *address;                                     \
    if (value < old) *address = value;                          \
    return old;                                                 \
  }
MLPX_SIM_ATOMIC_BITS(int)
MLPX_SIM_ATOMIC_BITS(unsigned int)
MLPX_SIM_ATOMIC_BITS(unsigned long long)
MLPX_SIM_ATOMIC_BITS(long long)
#undef MLPX_SIM_ATOMIC_BITS
MLPX_SIM_ATOMIC float atomicExch(float* address, float value) {
  const float old = *address;
  *address = value;
  return old;
}
// ((old >= limit) ? 0 : old + 1) and ((old == 0 || old > limit) ? limit : old - 1), as in CUDA.
MLPX_SIM_ATOMIC unsigned int atomicInc(unsigned int* address, unsigned int limit) {
  const unsigned int old = *address;
  *address = old >= limit ? 0u : old + 1u;
  return old;
}
MLPX_SIM_ATOMIC unsigned int atomicDec(unsigned int* address, unsigned int limit) {
  const unsigned int old = *address;
  *address = (old == 0u || old > limit) ? limit : old - 1u;
  return old;
}

// ---- Reinterpretation, loads, bit and math intrinsics ---------------------------------------
namespace mlpx_sim {
// The bits of `from` as a To (std::bit_cast is C++20).
template <typename To, typename From>
inline To bit_cast(From from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast between types of one size");
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
}
}  // namespace mlpx_sim
inline float __int_as_float(int x) { return mlpx_sim::bit_cast<float>(x); }
inline int __float_as_int(float x) { return mlpx_sim::bit_cast<int>(x); }
inline float __uint_as_float(unsigned int x) { return mlpx_sim::bit_cast<float>(x); }
inline unsigned int __float_as_uint(float x) { return mlpx_sim::bit_cast<unsigned int>(x); }
inline double __longlong_as_double(long long x) { return mlpx_sim::bit_cast<double>(x); }
inline long long __double_as_longlong(double x) { return mlpx_sim::bit_cast<long long>(x); }
template <typename T>
inline T __ldg(const T* address) {
  return *address;
}

inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned int>(x)); }
inline int __clzll(long long x) {
  return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x));
}
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }

// The fast-math intrinsics, computed at full precision (a kernel's results can only be closer
// to exact than on the device).
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __saturatef(float x) { return x > 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }

// The device code calls the math library unqualified (isfinite(x), expf(x), ...): <math.h>
// declares the C functions globally; the classification functions are macros in C and
// templates in std:: in C++, so bring those into the global namespace.
using std::fpclassify;
using std::isfinite;
using std::isinf;
using std::isnan;
using std::isnormal;
using std::signbit;
