// The shared-memory racecheck (racecheck.h, sim/README.md "Racecheck"), and the entry points
// the compiler's ThreadSanitizer instrumentation calls in kernel code.
//
// What is tracked: the writable static storage (.data, .bss) of the object files whose
// instrumented code makes accesses, each found (dl_iterate_phdr) at its first access. `__shared__`
// is `static` in the simulator, so every shared-memory variable lives there; device memory
// (mmap), stacks and the heap do not, and their accesses cost one failed range check.
//
// How: a shadow cell per byte of that storage records the last writer and the last two
// distinct readers since the block's last barrier, each with the barrier epoch and the thread's
// warp stamp at the time. A new epoch starts with each block and each opened __syncthreads, so
// an access recorded under an older epoch is ordered before anything now. Two lanes of one
// warp are also ordered when a warp rendezvous that both took part in came after the earlier
// access: each completed rendezvous gives its lanes one fresh stamp, and "both still carry the
// same stamp, newer than the recorded one" is the test (a lane that met another part of the
// warp since is conservatively taken as unordered with this one; mlpx's kernels use full
// masks). Keeping two readers finds every write-after-read hazard where the writer is one of
// several readers; a third reader is forgotten, so such a hazard with three or more readers
// may be reported against one of the two, or, rarely, missed. There are no false reports:
// every report names two accesses that no barrier or common warp rendezvous separates.
#include "racecheck.h"

#include <link.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "counters_internal.h"
#include "mlpx_sim/device.h"  // detail::g_coordinates

namespace mlpx_sim::racecheck {
namespace {

constexpr uint16_t kNobody = 0xffff;

struct Cell {  // one byte of tracked storage
  uint32_t write_epoch = 0, read_epoch = 0;
  uint32_t write_stamp = 0;
  uint32_t read_stamp[2] = {0, 0};
  uint16_t writer = kNobody;
  uint16_t reader[2] = {kNobody, kNobody};
};

struct Region {  // a writable PT_LOAD segment and its shadow
  uintptr_t begin = 0, end = 0;
  Cell* shadow = nullptr;
};

// The objects whose instrumented code has made an access (the extent of their mappings): an
// access from anywhere else first adds that object's writable segments to g_regions.
struct Span {
  uintptr_t begin, end;
};
std::vector<Span> g_objects;

std::vector<Region> g_regions;

// The running launch (launches run one at a time: the executor's lock).
uint32_t g_epoch = 1, g_stamp = 0;
unsigned g_thread = 0;
std::vector<uint32_t> g_lane_stamp;  // per thread of the block
bool g_found = false;
Race g_race;

// Set while kernel code of this OS thread runs: accesses by host code, and by other OS threads
// running instrumented code (inline functions shared with the host side), are not tracked.
__attribute__((tls_model("initial-exec"))) thread_local bool t_tracking = false;

// Leaves [begin, end) out of `regions`.
void leave_out(std::vector<Region>& regions, uintptr_t begin, uintptr_t end) {
  std::vector<Region> kept;
  for (const Region& r : regions) {
    if (end <= r.begin || begin >= r.end) {
      kept.push_back(r);
      continue;
    }
    if (r.begin < begin) kept.push_back(Region{r.begin, begin, nullptr});
    if (end < r.end) kept.push_back(Region{end, r.end, nullptr});
  }
  regions = kept;
}

// dl_iterate_phdr's callback: when `pc` lies in `info`'s object, records the object's extent
// and its writable segments, with their shadows.
int add_object(dl_phdr_info* info, size_t, void* data) {
  const uintptr_t pc = *static_cast<uintptr_t*>(data);
  Span span{~uintptr_t{0}, 0};
  bool contains = false;
  std::vector<Region> writable;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    const uintptr_t begin = info->dlpi_addr + ph.p_vaddr, end = begin + ph.p_memsz;
    span = {std::min(span.begin, begin), std::max(span.end, end)};
    contains = contains || (pc >= begin && pc < end);
    if ((ph.p_flags & PF_W) != 0) writable.push_back(Region{begin, end, nullptr});
  }
  if (!contains) return 0;
  g_objects.push_back(span);
  // The built-in variables (threadIdx, ...): every thread reads them all the time and only
  // the executor writes them.
  const auto coordinates = reinterpret_cast<uintptr_t>(&detail::g_coordinates);
  leave_out(writable, coordinates, coordinates + sizeof detail::g_coordinates);
  for (Region& region : writable) {
    void* shadow =
        ::mmap(nullptr, (region.end - region.begin) * sizeof(Cell), PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (shadow == MAP_FAILED) continue;  // that storage goes unchecked
    region.shadow = static_cast<Cell*>(shadow);
    g_regions.push_back(region);
  }
  return 1;  // found: stop
}

// Makes sure the object holding the instrumented code at `pc` has its storage tracked.
void know_object_of(uintptr_t pc) {
  for (const Span& span : g_objects) {
    if (pc - span.begin < span.end - span.begin) return;
  }
  if (dl_iterate_phdr(add_object, &pc) == 0) g_objects.push_back(Span{pc, pc + 1});
}

// -1: not decided yet (the environment decides at the first launch or query).
std::atomic<int> g_switch{-1};

// Zero-filled shadow again (every cell "never accessed"), when an epoch or stamp counter wraps.
void clear_shadow() {
  for (Region& region : g_regions) {
    ::madvise(region.shadow, (region.end - region.begin) * sizeof(Cell), MADV_DONTNEED);
  }
}

Cell* cell_of(uintptr_t address) {
  for (const Region& region : g_regions) {
    if (address - region.begin < region.end - region.begin) {
      return region.shadow + (address - region.begin);
    }
  }
  return nullptr;
}

// Is `other`'s access with warp stamp `stamp`, in this epoch, ordered before `thread`'s now?
bool ordered(unsigned other, uint32_t stamp, unsigned thread) {
  if (other == thread) return true;
  if (other / 32 != thread / 32) return false;
  const uint32_t common = g_lane_stamp[thread];
  return g_lane_stamp[other] == common && common > stamp;
}

void found(uintptr_t address, unsigned size, bool write, unsigned other, bool other_write,
           const void* pc) {
  if (g_found) return;
  g_found = true;
  g_race = Race{address, size, g_thread, other, write, other_write, pc};
}

void access(const void* pointer, unsigned size, bool write, const void* pc) {
  know_object_of(reinterpret_cast<uintptr_t>(pc));
  const auto address = reinterpret_cast<uintptr_t>(pointer);
  Cell* cell = cell_of(address);
  if (cell == nullptr) return;
  const unsigned t = g_thread;
  const uint32_t stamp = g_lane_stamp[t];
  for (unsigned i = 0; i < size; ++i, ++cell) {
    if (i > 0 && cell_of(address + i) != cell) break;  // the access ran off the segment
    Cell& c = *cell;
    if (c.write_epoch == g_epoch && !ordered(c.writer, c.write_stamp, t)) {
      found(address, size, write, c.writer, true, pc);
    }
    if (write) {
      if (c.read_epoch == g_epoch) {
        for (int r = 0; r < 2; ++r) {
          if (c.reader[r] != kNobody && !ordered(c.reader[r], c.read_stamp[r], t)) {
            found(address, size, true, c.reader[r], false, pc);
          }
        }
      }
      c.write_epoch = g_epoch;
      c.writer = static_cast<uint16_t>(t);
      c.write_stamp = stamp;
    } else if (c.read_epoch != g_epoch) {
      c.read_epoch = g_epoch;
      c.reader[0] = static_cast<uint16_t>(t);
      c.read_stamp[0] = stamp;
      c.reader[1] = kNobody;
    } else if (c.reader[0] == t) {
      c.read_stamp[0] = stamp;
    } else if (c.reader[1] == t || c.reader[1] == kNobody) {
      c.reader[1] = static_cast<uint16_t>(t);
      c.read_stamp[1] = stamp;
    } else {  // a third reader: keep the two most recent
      c.reader[0] = c.reader[1];
      c.read_stamp[0] = c.read_stamp[1];
      c.reader[1] = static_cast<uint16_t>(t);
      c.read_stamp[1] = stamp;
    }
  }
}

void next_epoch() {
  if (++g_epoch == 0) {
    clear_shadow();
    g_epoch = 1;
  }
}

}  // namespace

void set_enabled(bool on) { g_switch = on ? 1 : 0; }

void track_region(uintptr_t begin, uintptr_t end) {
  void* shadow = ::mmap(nullptr, (end - begin) * sizeof(Cell), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (shadow == MAP_FAILED) return;  // that memory goes unchecked
  g_regions.push_back(Region{begin, end, static_cast<Cell*>(shadow)});
}

bool enabled() {
  int state = g_switch.load();
  if (state < 0) {
    const char* text = std::getenv("MLPX_SIM_RACECHECK");
    const int from_environment = text != nullptr && std::strcmp(text, "0") == 0 ? 0 : 1;
    g_switch.compare_exchange_strong(state, from_environment);
    state = g_switch.load();
  }
  return state == 1;
}

bool launch_started() {
  g_found = false;
  t_tracking = enabled();
  return t_tracking;
}

void launch_ended() { t_tracking = false; }

void block_started(unsigned threads) {
  next_epoch();
  g_lane_stamp.assign(threads, 0);
  if (g_stamp > 0xf0000000u) {  // stamps restart with the block; keep them from wrapping
    clear_shadow();
    g_stamp = 0;
  }
}

void set_thread(unsigned thread) { g_thread = thread; }

void barrier_opened() { next_epoch(); }

void warp_synced(unsigned base, unsigned mask) {
  if (g_lane_stamp.empty()) return;
  const uint32_t stamp = ++g_stamp;
  for (unsigned m = mask; m != 0; m &= m - 1) {
    g_lane_stamp[base + static_cast<unsigned>(__builtin_ctz(m))] = stamp;
  }
}

bool take_race(Race& race) {
  if (!g_found) return false;
  race = g_race;
  g_found = false;
  return true;
}

}  // namespace mlpx_sim::racecheck

// ---- The ThreadSanitizer instrumentation's entry points ------------------------------------
// The names and signatures of compiler-rt's tsan_interface.h and tsan_interface_atomic.h, which
// GCC's and Clang's -fsanitize=thread emit calls to. Under a real ThreadSanitizer build
// (MLPX_SANITIZE=thread) its runtime defines them, and the simulator's racecheck is off.
#if !defined(__SANITIZE_THREAD__)

namespace {
using mlpx_sim::racecheck::t_tracking;

// The same hooks feed the counters of device work (mlpx_sim/counters.h) while they count.
inline void track(const void* address, unsigned size, bool write, const void* pc) {
  if (t_tracking) mlpx_sim::racecheck::access(address, size, write, pc);
  if (mlpx_sim::counters_detail::t_counting_accesses) {
    mlpx_sim::counters_detail::count_access(address, size, write);
  }
}
}  // namespace

#define MLPX_SIM_TSAN_ACCESS(size)                        \
  extern "C" void __tsan_read##size(void* a) {            \
    track(a, size, false, __builtin_return_address(0));   \
  }                                                       \
  extern "C" void __tsan_write##size(void* a) {           \
    track(a, size, true, __builtin_return_address(0));    \
  }                                                       \
  extern "C" void __tsan_unaligned_read##size(void* a) {  \
    track(a, size, false, __builtin_return_address(0));   \
  }                                                       \
  extern "C" void __tsan_unaligned_write##size(void* a) { \
    track(a, size, true, __builtin_return_address(0));    \
  }                                                       \
  extern "C" void __tsan_volatile_read##size(void* a) {   \
    track(a, size, false, __builtin_return_address(0));   \
  }                                                       \
  extern "C" void __tsan_volatile_write##size(void* a) {  \
    track(a, size, true, __builtin_return_address(0));    \
  }
MLPX_SIM_TSAN_ACCESS(1)
MLPX_SIM_TSAN_ACCESS(2)
MLPX_SIM_TSAN_ACCESS(4)
MLPX_SIM_TSAN_ACCESS(8)
MLPX_SIM_TSAN_ACCESS(16)
#undef MLPX_SIM_TSAN_ACCESS

extern "C" void __tsan_read_range(void* a, unsigned long size) {
  track(a, static_cast<unsigned>(size), false, __builtin_return_address(0));
}
extern "C" void __tsan_write_range(void* a, unsigned long size) {
  track(a, static_cast<unsigned>(size), true, __builtin_return_address(0));
}

extern "C" void __tsan_init() {}
extern "C" void __tsan_func_entry(void*) {}
extern "C" void __tsan_func_exit() {}
extern "C" void __tsan_vptr_update(void**, void*) {}
extern "C" void __tsan_vptr_read(void**) {}
// Clang's instrumentation calls these for memcpy/memset/memmove (not tracked).
extern "C" void* __tsan_memcpy(void* to, const void* from, size_t n) {
  return std::memcpy(to, from, n);
}
extern "C" void* __tsan_memmove(void* to, const void* from, size_t n) {
  return std::memmove(to, from, n);
}
extern "C" void* __tsan_memset(void* to, int value, size_t n) { return std::memset(to, value, n); }

// Atomics in instrumented code (std::atomic, shared_ptr's counts in host code of the kernel
// files) become calls: done here as sequentially consistent atomics (the strongest order, so
// correct whatever was asked), not tracked.
#define MLPX_SIM_TSAN_ATOMICS(bits, T)                                                             \
  extern "C" T __tsan_atomic##bits##_load(const volatile T* a, int) {                              \
    return __atomic_load_n(a, __ATOMIC_SEQ_CST);                                                   \
  }                                                                                                \
  extern "C" void __tsan_atomic##bits##_store(volatile T* a, T v, int) {                           \
    __atomic_store_n(a, v, __ATOMIC_SEQ_CST);                                                      \
  }                                                                                                \
  extern "C" T __tsan_atomic##bits##_exchange(volatile T* a, T v, int) {                           \
    return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST);                                            \
  }                                                                                                \
  extern "C" T __tsan_atomic##bits##_fetch_add(volatile T* a, T v, int) {                          \
    return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST);                                             \
  }                                                                                                \
  extern "C" T __tsan_atomic##bits##_fetch_sub(volatile T* a, T v, int) {                          \
    return __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST);                                             \
  }                                                                                                \
  extern "C" T __tsan_atomic##bits##_fetch_and(volatile T* a, T v, int) {                          \
    return __atomic_fetch_and(a, v, __ATOMIC_SEQ_CST);                                             \
  }                                                                                                \
  extern "C" T __tsan_atomic##bits##_fetch_or(volatile T* a, T v, int) {                           \
    return __atomic_fetch_or(a, v, __ATOMIC_SEQ_CST);                                              \
  }                                                                                                \
  extern "C" T __tsan_atomic##bits##_fetch_xor(volatile T* a, T v, int) {                          \
    return __atomic_fetch_xor(a, v, __ATOMIC_SEQ_CST);                                             \
  }                                                                                                \
  extern "C" T __tsan_atomic##bits##_fetch_nand(volatile T* a, T v, int) {                         \
    return __atomic_fetch_nand(a, v, __ATOMIC_SEQ_CST);                                            \
  }                                                                                                \
  extern "C" int __tsan_atomic##bits##_compare_exchange_strong(volatile T* a, T* expected, T v,    \
                                                               int, int) {                         \
    return __atomic_compare_exchange_n(a, expected, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
  }                                                                                                \
  extern "C" int __tsan_atomic##bits##_compare_exchange_weak(volatile T* a, T* expected, T v, int, \
                                                             int) {                                \
    return __atomic_compare_exchange_n(a, expected, v, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);  \
  }                                                                                                \
  extern "C" T __tsan_atomic##bits##_compare_exchange_val(volatile T* a, T expected, T v, int,     \
                                                          int) {                                   \
    __atomic_compare_exchange_n(a, &expected, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);       \
    return expected;                                                                               \
  }
MLPX_SIM_TSAN_ATOMICS(8, char)
MLPX_SIM_TSAN_ATOMICS(16, short)
MLPX_SIM_TSAN_ATOMICS(32, int)
MLPX_SIM_TSAN_ATOMICS(64, long)
#undef MLPX_SIM_TSAN_ATOMICS

extern "C" void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
extern "C" void __tsan_atomic_signal_fence(int) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

#endif  // !__SANITIZE_THREAD__
