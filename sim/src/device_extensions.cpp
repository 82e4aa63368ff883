// Dynamic shared memory, the function and device attributes that govern it, and the warp-level
// bf16 mma (mlpx_sim/shared_memory.h, mlpx_sim/device_limits.h, mlpx_sim/tensor_core.h).
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_runtime_api.h"
#include "mlpx_sim/device.h"
#include "mlpx_sim/shared_memory.h"
#include "mlpx_sim/tensor_core.h"
#include "racecheck.h"
#include "runtime_internal.h"

namespace mlpx_sim {
namespace {

// ---- Dynamic shared memory ----------------------------------------------------------------

constexpr size_t kAlignment = 16;
constexpr unsigned char kPoison = 0xFF;

struct Arena {
  unsigned char* begin = nullptr;  // kSharedBytesPerBlockOptin (rounded up to pages) ...
  unsigned char* guard = nullptr;  // ... then one PROT_NONE page
};

Arena& arena() {
  static Arena a = [] {
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t usable = (kSharedBytesPerBlockOptin + page - 1) / page * page;
    void* map = ::mmap(nullptr, usable + page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) throw std::runtime_error("cannot map the dynamic shared memory arena");
    Arena made;
    made.begin = static_cast<unsigned char*>(map);
    made.guard = made.begin + usable;
    ::mprotect(made.guard, page, PROT_NONE);
    racecheck::track_region(reinterpret_cast<uintptr_t>(made.begin),
                            reinterpret_cast<uintptr_t>(made.guard));
    return made;
  }();
  return a;
}

unsigned char* g_base = nullptr;  // the running launch's dynamic shared memory
size_t g_bytes = 0;

// ---- Function attributes ------------------------------------------------------------------

std::mutex g_attribute_mutex;
std::map<const void*, size_t>& max_dynamic_bytes() {
  static std::map<const void*, size_t> limits;
  return limits;
}

// ---- mma ----------------------------------------------------------------------------------

// One lane's operands, deposited before the warp's rendezvous and read by its 31 partners
// after it. Two generations, alternating per call: a lane that has left rendezvous n can
// write its operands for n + 1 while slower lanes still read those of n, but cannot pass
// rendezvous n + 1 before all of them arrive there (having finished reading n).
struct MmaOperands {
  uint32_t a[4];
  uint32_t b[2];
  float c[4];
};
std::vector<MmaOperands> g_operands[2];
std::vector<uint32_t> g_mma_count;  // per thread of the running block

float bf16_low(uint32_t reg) { return bit_cast<float>(reg << 16); }
float bf16_high(uint32_t reg) { return bit_cast<float>(reg & 0xffff0000u); }

// Element (row, k) of A (16x16) from the lanes' A registers.
float a_element(const MmaOperands* lanes, int row, int k) {
  const int group = row % 8, t = (k % 8) / 2;
  const int reg = (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
  const uint32_t bits = lanes[group * 4 + t].a[reg];
  return k % 2 == 0 ? bf16_low(bits) : bf16_high(bits);
}
// Element (k, col) of B (16x8).
float b_element(const MmaOperands* lanes, int k, int col) {
  const int t = (k % 8) / 2, reg = k >= 8 ? 1 : 0;
  const uint32_t bits = lanes[col * 4 + t].b[reg];
  return k % 2 == 0 ? bf16_low(bits) : bf16_high(bits);
}

}  // namespace

namespace detail {

unsigned char* dynamic_shared_base() { return g_base; }

void dynamic_shared_launch_started(size_t bytes) {
  const Arena& a = arena();
  g_bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  g_base = a.guard - g_bytes;
}

void device_block_started(unsigned threads) {
  if (g_bytes > 0) std::memset(g_base, kPoison, g_bytes);
  g_mma_count.assign(threads, 0);
  for (auto& generation : g_operands) generation.resize(threads);
}

size_t max_dynamic_shared_bytes(const void* function) {
  std::lock_guard<std::mutex> lock(g_attribute_mutex);
  const auto found = max_dynamic_bytes().find(function);
  return found == max_dynamic_bytes().end() ? static_cast<size_t>(kSharedBytesPerBlock)
                                            : found->second;
}

}  // namespace detail

void mma_m16n8k16_bf16_at(const char* file, int line, float d[4], const uint32_t a[4],
                          const uint32_t b[2], const float c[4]) {
  const ThreadCoordinates& at = detail::g_coordinates;
  const unsigned thread =
      at.thread_idx.x + at.block_dim.x * (at.thread_idx.y + at.block_dim.y * at.thread_idx.z);
  if (thread >= g_mma_count.size()) {
    throw std::runtime_error("mma.sync outside a running block");
  }
  const unsigned generation = g_mma_count[thread]++ & 1u;
  MmaOperands& mine = g_operands[generation][thread];
  std::memcpy(mine.a, a, sizeof mine.a);
  std::memcpy(mine.b, b, sizeof mine.b);
  std::memcpy(mine.c, c, sizeof mine.c);
  detail::warp_rendezvous(detail::WarpOp::kMmaSync, 0xffffffffu, 0, 4, 0, 32, file, line);
  const MmaOperands* lanes = g_operands[generation].data() + (thread & ~31u);
  const unsigned lane = thread & 31u;
  const int group = static_cast<int>(lane / 4), t = static_cast<int>(lane % 4);
  for (int i = 0; i < 4; ++i) {
    const int row = group + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
    float sum = 0.0f;
    for (int k = 0; k < 16; ++k) sum += a_element(lanes, row, k) * b_element(lanes, k, col);
    d[i] = sum + lanes[lane].c[i];
  }
}

}  // namespace mlpx_sim

extern "C" {

cudaError_t cudaFuncSetAttribute(const void* func, enum cudaFuncAttribute attr, int value) {
  using mlpx_sim::runtime_detail::fail;
  if (func == nullptr)
    return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute of a null function");
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || value > mlpx_sim::kSharedBytesPerBlockOptin) {
      return fail(cudaErrorInvalidValue, "cudaFuncAttributeMaxDynamicSharedMemorySize " +
                                             std::to_string(value) + ": expected 0 to " +
                                             std::to_string(mlpx_sim::kSharedBytesPerBlockOptin) +
                                             " bytes (227 KiB, an H200 block's limit)");
    }
    std::lock_guard<std::mutex> lock(mlpx_sim::g_attribute_mutex);
    mlpx_sim::max_dynamic_bytes()[func] = static_cast<size_t>(value);
    return cudaSuccess;
  }
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) {
    return value >= -1 && value <= 100 ? cudaSuccess : fail(cudaErrorInvalidValue);
  }
  return fail(cudaErrorInvalidValue);
}

cudaError_t cudaDeviceGetAttribute(int* value, enum cudaDeviceAttr attr, int device) {
  using mlpx_sim::runtime_detail::fail;
  if (value == nullptr) return fail(cudaErrorInvalidValue);
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || device < 0 || device >= count) {
    return fail(cudaErrorInvalidDevice);
  }
  switch (attr) {
    case cudaDevAttrMaxSharedMemoryPerBlock:
      *value = mlpx_sim::kSharedBytesPerBlock;
      return cudaSuccess;
    case cudaDevAttrMultiProcessorCount:
      *value = 132;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor:
      *value = 9;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor:
      *value = 0;
      return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor:
      *value = mlpx_sim::kSharedBytesPerMultiprocessor;
      return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = mlpx_sim::kSharedBytesPerBlockOptin;
      return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue);
}

}  // extern "C"
