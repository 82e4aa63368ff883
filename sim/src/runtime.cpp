// The simulator's CUDA runtime (cuda_runtime_api.h, mlpx_sim/runtime.h, enqueue_launch of
// mlpx_sim/launch.h). See sim/README.md ("The runtime") for the model:
//   - device memory: one mmap per allocation, the allocation ending right before a PROT_NONE
//     guard page, filled with 0xFF (poison); the bytes around it (lead and alignment slack) hold
//     a canary checked after every kernel; all of it PROT_NONE except while device work runs;
//     a SIGSEGV handler names device-memory faults;
//   - streams: queues of work that run only when the program synchronises, in stream order
//     (legacy default stream semantics for stream 0 and blocking streams), after the event
//     records they wait on (cudaStreamWaitEvent);
//   - devices: MLPX_SIM_DEVICES of them (default 1), sharing the one memory; streams, events
//     and allocations belong to the device current when they are made;
//   - graph capture: records stream work, rejects what real capture rejects with the same
//     codes; graphs replay the recorded work;
//   - faults: sticky, as a real launch failure.
#include "mlpx_sim/runtime.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cuda_runtime_api.h"
#include "mlpx_sim/launch.h"

namespace mlpx_sim::runtime_detail {

using Clock = std::chrono::steady_clock;

// ---- Configuration ---------------------------------------------------------------------------

constexpr size_t kDefaultMemoryLimit = size_t{141} << 30;  // an H200's 141 GiB
constexpr size_t kDefaultAlignment = 16;    // the largest alignment a device type needs (float4)
constexpr size_t kChargeGranularity = 256;  // what cudaMemGetInfo counts per allocation
constexpr size_t kCheckedLead = 256;        // canary bytes before an allocation checked per kernel
constexpr size_t kMaxSlots = size_t{1} << 20;
constexpr size_t kQuarantineCount = 1024;              // freed allocations kept PROT_NONE
constexpr size_t kQuarantineBytes = size_t{64} << 30;  // (address space only)
constexpr size_t kHostCheckBytes = size_t{64} << 20;   // from here, check the host can back it

size_t page_size() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// "8G", "512M", "64K", "123" (bytes); binary units.
size_t parse_bytes(const char* text, size_t fallback) {
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text) return fallback;
  unsigned shift = 0;
  switch (*end) {
    case 'k':
    case 'K':
      shift = 10;
      break;
    case 'm':
    case 'M':
      shift = 20;
      break;
    case 'g':
    case 'G':
      shift = 30;
      break;
    case 't':
    case 'T':
      shift = 40;
      break;
    case '\0':
      break;
    default:
      return fallback;
  }
  return static_cast<size_t>(value) << shift;
}

size_t env_alignment() {
  const char* text = std::getenv("MLPX_SIM_ALIGN");
  if (text == nullptr) return kDefaultAlignment;
  const size_t a = parse_bytes(text, kDefaultAlignment);
  if (a == 0 || a > page_size() || (a & (a - 1)) != 0) {
    std::fprintf(stderr, "mlpx sim: MLPX_SIM_ALIGN=%s is not a power of two up to %zu; using %zu\n",
                 text, page_size(), kDefaultAlignment);
    return kDefaultAlignment;
  }
  return a;
}

// Bytes the host could still give, from /proc/meminfo (MemAvailable); SIZE_MAX if unknown.
size_t host_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  size_t value = 0;
  std::string unit;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return value * 1024;
  }
  return SIZE_MAX;
}

std::string hex(uintptr_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIxPTR, v);
  return buf;
}
std::string hex(const void* p) { return hex(reinterpret_cast<uintptr_t>(p)); }

// ---- The lock and the error state -------------------------------------------------------------

std::recursive_mutex& api_mutex() {
  static auto* m = new std::recursive_mutex;  // never destroyed: calls may come from exit
  return *m;
}
using Lock = std::lock_guard<std::recursive_mutex>;

struct Errors {
  std::set<std::string> interned;     // the detailed messages, stable storage
  std::map<int, const char*> detail;  // code -> last detailed message (nullptr: generic)
};
Errors& errors() {
  static auto* e = new Errors;
  return *e;
}
std::atomic<int> g_sticky{cudaSuccess};
thread_local cudaError_t t_last_error = cudaSuccess;

cudaError_t sticky() { return static_cast<cudaError_t>(g_sticky.load()); }

// Sets `code` as the thread's last error, with `why` as its detailed message ("" = CUDA's text).
cudaError_t fail(cudaError_t code, const std::string& why = {}) {
  Lock lock(api_mutex());
  Errors& e = errors();
  e.detail[code] = why.empty() ? nullptr : e.interned.insert(why).first->c_str();
  t_last_error = code;
  return code;
}
cudaError_t fail_sticky() {
  t_last_error = sticky();
  return t_last_error;
}

// ---- Device memory ---------------------------------------------------------------------------
//
// Layout of one allocation (pages from mmap):
//   map_start .. data          lead: canary (data is placed so that the allocation ends at guard)
//   data .. data + size        the allocation: poison (0xFF) when fresh
//   data + size .. guard       slack up to the alignment: canary
//   guard .. map_end           one PROT_NONE page
// A slot records it where the SIGSEGV handler can read it without a lock.

enum : int { kSlotFree = 0, kSlotLive = 1, kSlotFreed = 2 };

struct Slot {
  std::atomic<int> state;
  std::atomic<uintptr_t> map_start, map_end, data, size;
  // Under the lock only:
  size_t rounded;
  size_t charged;
  uint64_t id;
  int device;
};

// Canary bytes: the 32-bit word 0xFFFFFFFA repeated (a NaN as a float or a double, -6 as an
// int), aligned to the address so that a check needs no state.
inline unsigned char canary_at(uintptr_t a) { return (a & 3) == 0 ? 0xFA : 0xFF; }
void fill_canary(uintptr_t from, uintptr_t to) {
  for (uintptr_t a = from; a < to; ++a) *reinterpret_cast<unsigned char*>(a) = canary_at(a);
}
// The first address in [from, to) whose canary was overwritten, or 0.
uintptr_t first_bad_canary(uintptr_t from, uintptr_t to) {
  for (uintptr_t a = from; a < to; ++a)
    if (*reinterpret_cast<const unsigned char*>(a) != canary_at(a)) return a;
  return 0;
}

// For the signal handler.
std::atomic<Slot*> g_slots{nullptr};
std::atomic<size_t> g_high_water{0};
std::atomic<const char*> g_running{nullptr};  // the label of the device work running now

struct Memory {
  Slot* slots = nullptr;
  size_t high_water = 0;
  std::vector<size_t> free_slots;
  std::map<uintptr_t, size_t> by_start;  // map_start -> slot (live and quarantined)
  std::deque<size_t> quarantine;
  size_t quarantine_bytes = 0;
  size_t used = 0;
  size_t limit = parse_bytes(std::getenv("MLPX_SIM_DEVICE_MEMORY"), kDefaultMemoryLimit);
  size_t alignment = env_alignment();
  int open_depth = 0;
  uint64_t next_id = 1;
};

// ---- Stream work, streams, captures ------------------------------------------------------------

struct Item {
  std::string label;  // "kernel name (file:line)", "cudaMemcpyAsync", ...
  bool kernel = false;
  std::function<void()> run;
};
using ItemPtr = std::shared_ptr<const Item>;

struct Work {
  uint64_t seq;
  ItemPtr item;
  // cudaStreamWaitEvent: the item runs after `after`'s work up to `after_seq` (the record).
  CUstream_st* after = nullptr;
  uint64_t after_seq = 0;
};

struct GraphAllocation;

struct GraphBody {
  std::vector<ItemPtr> items;
};

struct Capture {
  uint64_t id = 0;
  // The stream that began the capture. Other streams join it by waiting on an event recorded in
  // it (a fork); each must be joined back before the capture ends: the origin waits on an event
  // recorded after the last work that stream submitted. The graph records every member's work
  // in submission order, an order every dependency between them agrees with.
  CUstream_st* origin = nullptr;
  std::vector<CUstream_st*> forked;
  std::map<CUstream_st*, size_t> submitted;  // a forked stream's work: the graph's items so far
  std::map<CUstream_st*, size_t> joined;     // of them, those the origin has waited for
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id thread;
  bool invalidated = false;
  std::string why;  // what invalidated it
  std::shared_ptr<GraphBody> body = std::make_shared<GraphBody>();
  std::map<void*, std::shared_ptr<GraphAllocation>> allocations;  // made here, not freed here
};

}  // namespace mlpx_sim::runtime_detail

struct CUstream_st {
  int device = 0;  // the legacy default stream serves every device
  bool legacy = false;
  bool blocking = true;
  std::deque<mlpx_sim::runtime_detail::Work> queue;
  // The capture this stream records into: its own (it began it) or one it joined (shared).
  std::shared_ptr<mlpx_sim::runtime_detail::Capture> capture;
};

struct CUevent_st {
  int device = 0;
  CUstream_st* stream = nullptr;
  uint64_t seq = 0;  // of the latest record
  bool recorded = false;
  bool done = false;
  uint64_t capture_id = 0;  // recorded while a capture was active (a captured event)
  // A captured event's stream, and the number of graph items recorded before it.
  CUstream_st* capture_stream = nullptr;
  size_t capture_items = 0;
  mlpx_sim::runtime_detail::Clock::time_point when{};
};

struct CUgraph_st {
  std::shared_ptr<mlpx_sim::runtime_detail::GraphBody> body;
};

struct CUgraphExec_st {
  std::shared_ptr<mlpx_sim::runtime_detail::GraphBody> body;
};

namespace mlpx_sim::runtime_detail {

constexpr int kMaxDevices = 8;

// MLPX_SIM_DEVICES: how many devices (0 to kMaxDevices); 1 when unset or unreadable.
int env_device_count() {
  const char* text = std::getenv("MLPX_SIM_DEVICES");
  if (text == nullptr || *text == '\0') return 1;
  char* end = nullptr;
  const long n = std::strtol(text, &end, 10);
  if (*end != '\0' || n < 0 || n > kMaxDevices) {
    std::fprintf(stderr, "mlpx sim: MLPX_SIM_DEVICES=%s is not a count from 0 to %d; using 1\n",
                 text, kMaxDevices);
    return 1;
  }
  return static_cast<int>(n);
}

thread_local int t_device = 0;  // the calling thread's current device (cudaSetDevice)

struct State {
  Memory memory;
  CUstream_st legacy;
  std::set<CUstream_st*> streams;  // valid handles
  std::set<CUstream_st*> zombies;  // destroyed with work still queued
  std::map<CUevent_st*, std::shared_ptr<CUevent_st>> events;
  std::set<CUgraph_st*> graphs;
  std::set<CUgraphExec_st*> execs;
  std::map<uint64_t, std::shared_ptr<Capture>> active_captures;  // by id
  uint64_t seq = 0;
  uint64_t next_capture = 1;
  int device_count = env_device_count();
  uint64_t host_waits = 0;
  State() { legacy.legacy = true; }
};

State& state() {
  static auto* s = new State;  // never destroyed
  return *s;
}

// ---- Memory: slots and lookup ------------------------------------------------------------------

Slot* slot_array() {
  Memory& m = state().memory;
  if (m.slots == nullptr) {
    void* p = mmap(nullptr, sizeof(Slot) * kMaxSlots, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      std::fprintf(stderr, "mlpx sim: cannot map the allocation table: %s\n", std::strerror(errno));
      std::abort();
    }
    m.slots = static_cast<Slot*>(p);  // zero pages: every slot free
    g_slots.store(m.slots);
  }
  return m.slots;
}

// The slot whose mapping holds address p (live or quarantined), or nullptr.
Slot* find_slot(uintptr_t p) {
  Memory& m = state().memory;
  auto it = m.by_start.upper_bound(p);
  if (it == m.by_start.begin()) return nullptr;
  --it;
  Slot& s = m.slots[it->second];
  return p < s.map_end.load() ? &s : nullptr;
}

// The live allocation starting exactly at p, or nullptr.
Slot* find_live_start(const void* p) {
  Slot* s = find_slot(reinterpret_cast<uintptr_t>(p));
  if (s == nullptr || s->state.load() != kSlotLive ||
      s->data.load() != reinterpret_cast<uintptr_t>(p))
    return nullptr;
  return s;
}

void protect(const Slot& s, bool open) {
  const uintptr_t start = s.map_start.load();
  const size_t bytes = s.map_end.load() - page_size() - start;  // all but the guard
  if (mprotect(reinterpret_cast<void*>(start), bytes, open ? PROT_READ | PROT_WRITE : PROT_NONE) !=
      0) {
    std::fprintf(stderr, "mlpx sim: mprotect of device memory at %s failed: %s\n",
                 hex(start).c_str(), std::strerror(errno));
    std::abort();
  }
}

template <typename F>
void for_each_live(F f) {
  Memory& m = state().memory;
  for (const auto& entry : m.by_start) {
    Slot& s = m.slots[entry.second];
    if (s.state.load() == kSlotLive) f(s);
  }
}

void open_memory() {
  Memory& m = state().memory;
  if (m.open_depth++ == 0) for_each_live([](Slot& s) { protect(s, true); });
}
void close_memory() {
  Memory& m = state().memory;
  if (--m.open_depth == 0) for_each_live([](Slot& s) { protect(s, false); });
}

std::string describe_offset(uintptr_t a, const Slot& s) {
  const uintptr_t data = s.data.load(), size = s.size.load();
  std::string where;
  if (a >= data + size)
    where = std::to_string(a - (data + size)) + " bytes past an allocation of ";
  else if (a < data)
    where = std::to_string(data - a) + " bytes before an allocation of ";
  else
    where = "an allocation of ";
  return where + std::to_string(size) + " bytes at " + hex(data);
}

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "mlpx sim: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

// After a kernel: the canaries next to every live allocation (the slack after it, the last
// kCheckedLead bytes before it). A kernel that wrote there wrote out of bounds.
void check_redzones(const char* label) {
  for_each_live([label](Slot& s) {
    const uintptr_t data = s.data.load(), end = data + s.size.load();
    const uintptr_t lead_from = std::max(s.map_start.load(), data - std::min(data, kCheckedLead));
    uintptr_t bad = first_bad_canary(end, data + s.rounded);
    // Before the allocation: the lowest changed byte, where the farthest write began.
    if (bad == 0) bad = first_bad_canary(lead_from, data);
    if (bad != 0)
      die("out-of-bounds device access at " + hex(bad) + " (" + describe_offset(bad, s) + ") in " +
          label + " (a write, found by the redzone check after the launch)");
  });
}

void install_segv_handler();

cudaError_t allocate(void** out, size_t size, int device, Slot** made) {
  Memory& m = state().memory;
  if (out == nullptr) return fail(cudaErrorInvalidValue);
  if (size == 0) {
    *out = nullptr;
    return cudaSuccess;
  }
  const size_t page = page_size();
  const size_t charged = round_up(size, kChargeGranularity);
  if (size > m.limit || charged > m.limit - m.used)
    return fail(cudaErrorMemoryAllocation, "out of memory: asked for " + std::to_string(size) +
                                               " bytes, " + std::to_string(m.limit - m.used) +
                                               " of " + std::to_string(m.limit) +
                                               " bytes free on the simulated device");
  const size_t rounded = round_up(size, m.alignment);
  const size_t data_pages = (rounded + page - 1) / page;
  const size_t map_bytes = (data_pages + 1) * page;
  if (rounded >= kHostCheckBytes) {
    const size_t host = host_available_bytes();
    if (rounded > host)
      return fail(cudaErrorMemoryAllocation,
                  "out of memory: the host has " + std::to_string(host) +
                      " bytes available to back a simulated device allocation of " +
                      std::to_string(size) + " bytes");
  }
  Slot* slots = slot_array();
  size_t index;
  if (!m.free_slots.empty()) {
    index = m.free_slots.back();
    m.free_slots.pop_back();
  } else if (m.high_water < kMaxSlots) {
    index = m.high_water++;
  } else {
    return fail(cudaErrorMemoryAllocation, "out of memory: the simulator's table of " +
                                               std::to_string(kMaxSlots) + " allocations is full");
  }
  void* mapped = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mapped == MAP_FAILED) {
    m.free_slots.push_back(index);
    return fail(cudaErrorMemoryAllocation, "out of memory: mmap of " + std::to_string(map_bytes) +
                                               " bytes failed: " + std::strerror(errno));
  }
  const auto start = reinterpret_cast<uintptr_t>(mapped);
  const uintptr_t guard = start + data_pages * page;
  const uintptr_t data = guard - rounded;
  fill_canary(start, data);
  std::memset(reinterpret_cast<void*>(data), 0xFF, size);  // poison: never-written memory shows
  fill_canary(data + size, guard);
  mprotect(reinterpret_cast<void*>(guard), page, PROT_NONE);
  if (m.open_depth == 0) mprotect(mapped, data_pages * page, PROT_NONE);

  Slot& s = slots[index];
  s.map_start.store(start);
  s.map_end.store(start + map_bytes);
  s.data.store(data);
  s.size.store(size);
  s.rounded = rounded;
  s.charged = charged;
  s.id = m.next_id++;
  s.device = device;
  s.state.store(kSlotLive, std::memory_order_release);
  g_high_water.store(m.high_water, std::memory_order_release);
  m.by_start[start] = index;
  m.used += charged;
  install_segv_handler();
  *out = reinterpret_cast<void*>(data);
  if (made != nullptr) *made = &s;
  return cudaSuccess;
}

void evict_quarantine() {
  Memory& m = state().memory;
  while (!m.quarantine.empty() &&
         (m.quarantine.size() > kQuarantineCount || m.quarantine_bytes > kQuarantineBytes)) {
    const size_t index = m.quarantine.front();
    m.quarantine.pop_front();
    Slot& s = m.slots[index];
    const uintptr_t start = s.map_start.load();
    const size_t bytes = s.map_end.load() - start;
    m.quarantine_bytes -= bytes;
    m.by_start.erase(start);
    s.state.store(kSlotFree, std::memory_order_release);
    munmap(reinterpret_cast<void*>(start), bytes);
    m.free_slots.push_back(index);
  }
}

// Frees the live allocation in slot s: checks all of its canaries, returns its pages to the
// host, keeps its addresses PROT_NONE for a while (a later use faults as a use after free).
void release(Slot& s) {
  Memory& m = state().memory;
  const uintptr_t start = s.map_start.load(), end = s.map_end.load();
  const uintptr_t data = s.data.load(), size = s.size.load();
  if (m.open_depth == 0) protect(s, true);
  uintptr_t bad = first_bad_canary(data + size, data + s.rounded);
  if (bad == 0) bad = first_bad_canary(start, data);
  if (bad != 0)
    die("out-of-bounds device access at " + hex(bad) + " (" + describe_offset(bad, s) +
        ") (a write by an earlier kernel, found when the allocation was freed)");
  madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTNEED);
  mprotect(reinterpret_cast<void*>(start), end - start, PROT_NONE);
  s.state.store(kSlotFreed, std::memory_order_release);
  m.used -= s.charged;
  m.quarantine.push_back(static_cast<size_t>(&s - m.slots));
  m.quarantine_bytes += end - start;
  evict_quarantine();
}

// Where a pointer range of a copy lies: host memory, or inside one live device allocation.
enum class Side { kHost, kDevice };

// False (with why) when the range touches a device mapping without lying inside a live
// allocation: past its end, before its start, or in freed memory.
bool classify(const void* ptr, size_t bytes, Side& side, std::string& why) {
  const auto p = reinterpret_cast<uintptr_t>(ptr);
  Slot* s = find_slot(p);
  if (s == nullptr) {
    side = Side::kHost;
    return true;
  }
  if (s->state.load() != kSlotLive) {
    why = hex(p) + " lies in a freed device allocation of " + std::to_string(s->size.load()) +
          " bytes at " + hex(s->data.load());
    return false;
  }
  const uintptr_t data = s->data.load(), size = s->size.load();
  const std::string range = "the range " + hex(p) + " + " + std::to_string(bytes) + " bytes ";
  if (p < data || p >= data + size) {
    why = range + "starts " + describe_offset(p, *s);
    return false;
  }
  if (p + bytes > data + size) {
    why = range + "extends " + std::to_string(p + bytes - (data + size)) +
          " bytes past an allocation of " + std::to_string(size) + " bytes at " + hex(data);
    return false;
  }
  side = Side::kDevice;
  return true;
}

// ---- The SIGSEGV handler -----------------------------------------------------------------------

struct sigaction g_previous_segv;
std::atomic<bool> g_handler_installed{false};

// Async-signal-safe formatting into a fixed buffer.
struct Text {
  char buf[1024];
  size_t n = 0;
  void put(const char* s) {
    while (*s != '\0' && n + 1 < sizeof buf) buf[n++] = *s++;
  }
  void put_dec(uint64_t v) {
    char tmp[24];
    int i = 0;
    do {
      tmp[i++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (i > 0 && n + 1 < sizeof buf) buf[n++] = tmp[--i];
  }
  void put_hex(uint64_t v) {
    put("0x");
    char tmp[20];
    int i = 0;
    do {
      tmp[i++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v != 0);
    while (i > 0 && n + 1 < sizeof buf) buf[n++] = tmp[--i];
  }
  void flush() {
    buf[n++] = '\n';
    size_t off = 0;
    while (off < n) {
      const ssize_t w = write(STDERR_FILENO, buf + off, n - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
  }
};

void chain_segv(int sig, siginfo_t* info, void* context) {
  const struct sigaction& prev = g_previous_segv;
  if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, context);
    return;
  }
  if (prev.sa_handler == SIG_DFL || prev.sa_handler == SIG_IGN) {
    // Back to the default action; returning re-runs the faulting access, which then kills us.
    signal(sig, SIG_DFL);
    return;
  }
  prev.sa_handler(sig);
}

void on_segv(int sig, siginfo_t* info, void* context) {
  const auto a = reinterpret_cast<uintptr_t>(info->si_addr);
  Slot* slots = g_slots.load();
  const size_t count = g_high_water.load(std::memory_order_acquire);
  const Slot* hit = nullptr;
  int st = kSlotFree;
  for (size_t i = 0; slots != nullptr && i < count; ++i) {
    st = slots[i].state.load(std::memory_order_acquire);
    if (st == kSlotFree) continue;
    if (a >= slots[i].map_start.load() && a < slots[i].map_end.load()) {
      hit = &slots[i];
      break;
    }
  }
  if (hit == nullptr) {
    chain_segv(sig, info, context);
    return;
  }
  const uint64_t data = hit->data.load(), size = hit->size.load();
  const char* running = g_running.load();
  Text t;
  t.put("mlpx sim: ");
  if (st == kSlotFreed) {
    t.put(running != nullptr ? "use of freed device memory at "
                             : "host code touched freed device memory at ");
    t.put_hex(a);
    t.put(" (freed allocation of ");
  } else if (running != nullptr) {
    t.put("out-of-bounds device access at ");
    t.put_hex(a);
    t.put(" (");
  } else {
    t.put("host code touched device memory at ");
    t.put_hex(a);
    t.put(" (");
  }
  if (st != kSlotFreed) {
    if (a >= data + size) {
      t.put_dec(a - (data + size));
      t.put(" bytes past an allocation of ");
    } else if (a < data) {
      t.put_dec(data - a);
      t.put(" bytes before an allocation of ");
    } else {
      t.put("allocation of ");
    }
  }
  t.put_dec(size);
  t.put(" bytes at ");
  t.put_hex(data);
  t.put(")");
  if (running != nullptr) {
    t.put(" in ");
    t.put(running);
  }
  t.flush();
  signal(SIGABRT, SIG_DFL);
  abort();
}

// The leak check (MLPX_SIM_LEAK_CHECK=1, as compute-sanitizer --leak-check full): at exit,
// device allocations still live are listed on stderr and the exit status becomes 1. Registered
// with atexit at the first allocation, so it runs after the handlers registered later, as a
// library's release of its own context.
void leak_check_at_exit() {
  Lock lock(api_mutex());
  size_t count = 0, bytes = 0;
  std::string listed;
  for_each_live([&](Slot& s) {
    ++count;
    bytes += s.size.load();
    if (count <= 5) {
      listed += (count == 1 ? "" : ", ") + std::to_string(s.size.load()) + " bytes at " +
                hex(reinterpret_cast<const void*>(s.data.load()));
    }
  });
  if (count == 0) return;
  std::fprintf(stderr,
               "mlpx sim: leak check: %zu device allocation%s (%zu bytes) never freed: %s%s\n",
               count, count == 1 ? "" : "s", bytes, listed.c_str(), count > 5 ? ", ..." : "");
  std::fflush(stderr);
  std::_Exit(1);
}

void register_leak_check() {
  static std::atomic<bool> registered{false};
  const char* on = std::getenv("MLPX_SIM_LEAK_CHECK");
  if (on == nullptr || std::strcmp(on, "1") != 0 || registered.exchange(true)) return;
  std::atexit(leak_check_at_exit);
}

void install_segv_handler() {
  register_leak_check();
  if (g_handler_installed.exchange(true)) return;
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_sigaction = on_segv;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, &g_previous_segv);
}

// ---- Streams -----------------------------------------------------------------------------------

CUstream_st* resolve(cudaStream_t handle) {
  State& st = state();
  if (handle == nullptr || handle == cudaStreamLegacy) return &st.legacy;
  return st.streams.count(handle) != 0 ? handle : nullptr;
}

std::string stream_name(const CUstream_st* s) {
  return s->legacy ? std::string("the legacy default stream") : "stream " + hex(s);
}

const char* mode_name(cudaStreamCaptureMode mode) {
  switch (mode) {
    case cudaStreamCaptureModeGlobal:
      return "cudaStreamCaptureModeGlobal";
    case cudaStreamCaptureModeThreadLocal:
      return "cudaStreamCaptureModeThreadLocal";
    case cudaStreamCaptureModeRelaxed:
      return "cudaStreamCaptureModeRelaxed";
  }
  return "?";
}

template <typename F>
void for_each_stream(F f) {
  State& st = state();
  f(&st.legacy);
  for (CUstream_st* s : st.streams) f(s);
  for (CUstream_st* s : st.zombies) f(s);
}

void invalidate(CUstream_st* s, const std::string& why) {
  if (s->capture && !s->capture->invalidated) {
    s->capture->invalidated = true;
    s->capture->why = why;
  }
}

// Use of the legacy stream while a blocking stream captures: the legacy stream would depend on
// the capture (cudaErrorStreamCaptureImplicit; those captures are invalidated).
cudaError_t check_legacy_use(const char* api) {
  std::vector<CUstream_st*> blocking;
  for (CUstream_st* s : state().streams)
    if (s->capture && s->blocking) blocking.push_back(s);
  if (blocking.empty()) return cudaSuccess;
  const std::string why = std::string(api) + " uses the legacy default stream while blocking " +
                          stream_name(blocking.front()) +
                          " captures (an implicit dependency); the capture is invalidated";
  for (CUstream_st* s : blocking) invalidate(s, why);
  return fail(cudaErrorStreamCaptureImplicit, why);
}

// A "potentially unsafe" call (cudaMalloc, cudaFree, a synchronous copy or memset,
// cudaEventSynchronize): prohibited while this thread captures in Global or ThreadLocal mode,
// or any thread captures in Global mode; the prohibiting captures are invalidated.
cudaError_t check_unsafe(const char* api, bool uses_legacy) {
  if (uses_legacy) {
    const cudaError_t e = check_legacy_use(api);
    if (e != cudaSuccess) return e;
  }
  std::vector<CUstream_st*> prohibiting;
  const auto self = std::this_thread::get_id();
  for (CUstream_st* s : state().streams) {
    if (!s->capture) continue;
    const Capture& c = *s->capture;
    if (c.mode == cudaStreamCaptureModeGlobal ||
        (c.mode == cudaStreamCaptureModeThreadLocal && c.thread == self))
      prohibiting.push_back(s);
  }
  if (prohibiting.empty()) return cudaSuccess;
  const std::string why = std::string(api) + " is not permitted while " +
                          stream_name(prohibiting.front()) + " captures in " +
                          mode_name(prohibiting.front()->capture->mode) +
                          " mode; the capture is invalidated";
  for (CUstream_st* s : prohibiting) invalidate(s, why);
  return fail(cudaErrorStreamCaptureUnsupported, why);
}

// Queues `item` on s, or records it while s captures. *seq_out: the queued work's number.
cudaError_t submit(CUstream_st* s, ItemPtr item, uint64_t* seq_out = nullptr) {
  State& st = state();
  if (s->capture) {
    if (s->capture->invalidated)
      return fail(cudaErrorStreamCaptureInvalidated,
                  item->label + " on " + stream_name(s) +
                      ": the capture was invalidated earlier: " + s->capture->why);
    s->capture->body->items.push_back(std::move(item));
    if (s != s->capture->origin) s->capture->submitted[s] = s->capture->body->items.size();
    return cudaSuccess;
  }
  if (s->legacy) {
    const cudaError_t e = check_legacy_use(item->label.c_str());
    if (e != cudaSuccess) return e;
  }
  s->queue.push_back(Work{++st.seq, std::move(item)});
  if (seq_out != nullptr) *seq_out = st.seq;
  return cudaSuccess;
}

// Queues a wait: work submitted to s later runs after `on`'s work up to `on_seq`.
void submit_wait(CUstream_st* s, CUstream_st* on, uint64_t on_seq) {
  State& st = state();
  Work w{++st.seq, nullptr};
  w.after = on;
  w.after_seq = on_seq;
  s->queue.push_back(std::move(w));
}

ItemPtr make_item(std::string label, bool kernel, std::function<void()> run) {
  auto item = std::make_shared<Item>();
  item->label = std::move(label);
  item->kernel = kernel;
  item->run = std::move(run);
  return item;
}

void drop_all_work() {
  for_each_stream([](CUstream_st* s) { s->queue.clear(); });
}

// Runs work, opening device memory at the first item and closing it at the end.
class Drain {
 public:
  Drain() = default;
  Drain(const Drain&) = delete;
  Drain& operator=(const Drain&) = delete;
  ~Drain() {
    if (opened_) close_memory();
  }
  void run(const Work& w) {
    if (!opened_) {
      open_memory();
      opened_ = true;
    }
    const char* previous = g_running.exchange(w.item->label.c_str());
    w.item->run();
    if (w.item->kernel && sticky() == cudaSuccess) check_redzones(w.item->label.c_str());
    g_running.store(previous);
  }

 private:
  bool opened_ = false;
};

bool stream_alive(const CUstream_st* s) {
  State& st = state();
  auto* p = const_cast<CUstream_st*>(s);
  return s == &st.legacy || st.streams.count(p) != 0 || st.zombies.count(p) != 0;
}

// Runs the work of s numbered up to `seq`, in order, each item after the work it depends on:
// legacy default stream work after all earlier work of blocking streams, blocking streams'
// work after earlier legacy stream work, and a wait's stream after the record it waits on
// (which was submitted earlier, so the recursion ends). A fault drops everything.
void run_until(CUstream_st* s, uint64_t seq, Drain& drain) {
  State& st = state();
  while (!s->queue.empty() && s->queue.front().seq <= seq) {
    const Work w = std::move(s->queue.front());
    s->queue.pop_front();
    if (w.item == nullptr) {  // a wait (cudaStreamWaitEvent)
      if (stream_alive(w.after)) run_until(w.after, w.after_seq, drain);
      if (sticky() != cudaSuccess) {
        drop_all_work();
        return;
      }
      continue;
    }
    if (s->legacy) {
      for (CUstream_st* b : st.streams)
        if (b->blocking) run_until(b, w.seq, drain);
      for (CUstream_st* b : st.zombies)
        if (b->blocking) run_until(b, w.seq, drain);
    } else if (s->blocking) {
      run_until(&st.legacy, w.seq, drain);
    }
    if (sticky() != cudaSuccess) {
      drop_all_work();
      return;
    }
    drain.run(w);
    if (sticky() != cudaSuccess) {
      drop_all_work();
      return;
    }
  }
}

void reap_zombies() {
  State& st = state();
  for (auto it = st.zombies.begin(); it != st.zombies.end();) {
    if ((*it)->queue.empty()) {
      delete *it;
      it = st.zombies.erase(it);
    } else {
      ++it;
    }
  }
}

// Everything queued for `device`: the legacy default stream and the device's streams (and
// what they wait on).
void drain_device(int device) {
  State& st = state();
  Drain drain;
  run_until(&st.legacy, UINT64_MAX, drain);
  for (CUstream_st* s : st.streams)
    if (s->device == device) run_until(s, UINT64_MAX, drain);
  for (CUstream_st* s : st.zombies)
    if (s->device == device) run_until(s, UINT64_MAX, drain);
  reap_zombies();
}

cudaError_t sync_result() { return sticky() != cudaSuccess ? fail_sticky() : cudaSuccess; }

// ---- Graph allocations
// ---------------------------------------------------------------------------

// An allocation made by cudaMallocAsync while a stream captures: the graph owns it (freed when
// the last graph, executable and queued replay referring to it are gone); each replay's
// allocation node fills it with poison again, as a graph allocation's contents are undefined.
struct GraphAllocation {
  void* ptr = nullptr;
  uint64_t id = 0;
  Slot* live() const {
    Slot* s = find_live_start(ptr);
    return s != nullptr && s->id == id ? s : nullptr;
  }
  void repoison() const {
    if (const Slot* s = live()) std::memset(ptr, 0xFF, s->size.load());
  }
  ~GraphAllocation() {
    Lock lock(api_mutex());
    if (Slot* s = live()) release(*s);
  }
};

// ---- Copies and memsets
// --------------------------------------------------------------------------

const char* kind_name(cudaMemcpyKind kind) {
  switch (kind) {
    case cudaMemcpyHostToHost:
      return "cudaMemcpyHostToHost";
    case cudaMemcpyHostToDevice:
      return "cudaMemcpyHostToDevice";
    case cudaMemcpyDeviceToHost:
      return "cudaMemcpyDeviceToHost";
    case cudaMemcpyDeviceToDevice:
      return "cudaMemcpyDeviceToDevice";
    case cudaMemcpyDefault:
      return "cudaMemcpyDefault";
  }
  return "?";
}

// Validates a copy and makes its work item (nullptr item and an error on failure).
cudaError_t make_copy(const char* api, void* dst, const void* src, size_t count,
                      cudaMemcpyKind kind, ItemPtr& item, bool& touches_host) {
  if (dst == nullptr || src == nullptr)
    return fail(cudaErrorInvalidValue, std::string(api) + ": a null pointer");
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return fail(cudaErrorInvalidMemcpyDirection);
  Side dst_side, src_side;
  std::string why;
  if (!classify(dst, count, dst_side, why))
    return fail(cudaErrorInvalidValue, std::string(api) + ": destination: " + why);
  if (!classify(src, count, src_side, why))
    return fail(cudaErrorInvalidValue, std::string(api) + ": source: " + why);
  const bool want_dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool want_src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind != cudaMemcpyDefault && ((dst_side == Side::kDevice) != want_dst_device ||
                                    (src_side == Side::kDevice) != want_src_device))
    return fail(cudaErrorInvalidValue, std::string(api) + ": " + kind_name(kind) + " from " +
                                           (src_side == Side::kDevice ? "device" : "host") +
                                           " memory at " + hex(src) + " to " +
                                           (dst_side == Side::kDevice ? "device" : "host") +
                                           " memory at " + hex(dst));
  touches_host = dst_side == Side::kHost || src_side == Side::kHost;
  const bool dst_device = dst_side == Side::kDevice, src_device = src_side == Side::kDevice;
  const std::string label = api;
  item = make_item(label, false, [=] {
    std::string why_now;
    if ((dst_device && !check_device_range(dst, count, why_now)) ||
        (src_device && !check_device_range(src, count, why_now))) {
      raise_fault(cudaErrorIllegalAddress, label + " ran on memory freed since: " + why_now);
      return;
    }
    std::memmove(dst, src, count);
  });
  return cudaSuccess;
}

cudaError_t make_memset(const char* api, void* dst, int value, size_t count, ItemPtr& item) {
  std::string why;
  if (dst == nullptr || !check_device_range(dst, count, why))
    return fail(cudaErrorInvalidValue,
                std::string(api) + ": " + (dst == nullptr ? "a null pointer" : why));
  const std::string label = api;
  item = make_item(label, false, [=] {
    std::string why_now;
    if (!check_device_range(dst, count, why_now)) {
      raise_fault(cudaErrorIllegalAddress, label + " ran on memory freed since: " + why_now);
      return;
    }
    std::memset(dst, value, count);
  });
  return cudaSuccess;
}

const char* generic_message(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInitializationError:
      return "initialization error";
    case cudaErrorCudartUnloading:
      return "driver shutting down";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer:
      return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection:
      return "invalid copy direction for memcpy";
    case cudaErrorNoDevice:
      return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle:
      return "invalid resource handle";
    case cudaErrorIllegalState:
      return "the operation cannot be performed in the present state";
    case cudaErrorNotReady:
      return "device not ready";
    case cudaErrorIllegalAddress:
      return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure";
    case cudaErrorNotPermitted:
      return "operation not permitted";
    case cudaErrorNotSupported:
      return "operation not supported";
    case cudaErrorStreamCaptureUnsupported:
      return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
      return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureMerge:
      return "operation would result in a merge of separate capture sequences";
    case cudaErrorStreamCaptureUnmatched:
      return "capture was not ended in the same stream as it began";
    case cudaErrorStreamCaptureUnjoined:
      return "capturing stream has unjoined work";
    case cudaErrorStreamCaptureIsolation:
      return "dependency created on uncaptured work in another stream";
    case cudaErrorStreamCaptureImplicit:
      return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorCapturedEvent:
      return "operation not permitted on an event last recorded in a capturing stream";
    case cudaErrorStreamCaptureWrongThread:
      return "attempt to terminate a thread-local capture sequence from another thread";
    case cudaErrorUnknown:
      return "unknown error";
  }
  return "unrecognized error code";
}

bool no_device() { return state().device_count == 0; }

// cudaErrorInvalidDevice unless `device` is a simulated device.
cudaError_t check_device(int device, const char* api) {
  const int count = state().device_count;
  if (device >= 0 && device < count) return cudaSuccess;
  return fail(cudaErrorInvalidDevice, std::string(api) + ": invalid device ordinal " +
                                          std::to_string(device) + " (the simulator has " +
                                          std::to_string(count) + " device(s))");
}

}  // namespace mlpx_sim::runtime_detail

// =================================================================================================
// mlpx_sim:: interface

namespace mlpx_sim {

using namespace runtime_detail;  // NOLINT

cudaError_t enqueue_launch(cudaStream_t stream, KernelLaunch launch) {
  std::string why;
  const cudaError_t valid = validate_launch(launch, why);
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  if (valid != cudaSuccess) return fail(valid, why);
  CUstream_st* s = resolve(stream);
  if (s == nullptr)
    return fail(cudaErrorInvalidResourceHandle,
                "launch of " + launch.name + ": " + hex(stream) + " is not a stream");
  // A kernel runs on the current device: its stream must belong to it.
  if (!s->legacy && s->device != t_device)
    return fail(cudaErrorInvalidResourceHandle,
                "launch of " + launch.name + " on " + stream_name(s) + " of device " +
                    std::to_string(s->device) + " while device " + std::to_string(t_device) +
                    " is current (cudaSetDevice first)");
  auto shared = std::make_shared<const KernelLaunch>(std::move(launch));
  std::string label =
      "kernel " + shared->name + " (" + shared->file + ":" + std::to_string(shared->line) + ")";
  return submit(s, make_item(std::move(label), true, [shared] {
                  std::string fault;
                  const cudaError_t e = execute(*shared, fault);
                  if (e != cudaSuccess)
                    raise_fault(e, fault.empty()
                                       ? "kernel " + shared->name + ": " + generic_message(e)
                                       : fault);
                }));
}

cudaError_t enqueue_work(cudaStream_t stream, std::string what, std::function<void()> run) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  CUstream_st* s = resolve(stream);
  if (s == nullptr)
    return fail(cudaErrorInvalidResourceHandle, what + ": " + hex(stream) + " is not a stream");
  return submit(s, make_item(std::move(what), false, std::move(run)));
}

bool check_device_range(const void* ptr, size_t bytes, std::string& why) {
  Lock lock(api_mutex());
  Side side;
  if (!classify(ptr, bytes == 0 ? 1 : bytes, side, why)) return false;
  if (side == Side::kHost) {
    why = hex(ptr) + " is not device memory";
    return false;
  }
  return true;
}

bool is_device_pointer(const void* ptr) {
  Lock lock(api_mutex());
  Slot* s = find_slot(reinterpret_cast<uintptr_t>(ptr));
  if (s == nullptr || s->state.load() != kSlotLive) return false;
  const auto p = reinterpret_cast<uintptr_t>(ptr);
  return p >= s->data.load() && p < s->data.load() + s->size.load();
}

void raise_fault(cudaError_t code, const std::string& why) {
  Lock lock(api_mutex());
  if (sticky() == cudaSuccess) {
    g_sticky.store(code);
    Errors& e = errors();
    e.detail[code] = e.interned.insert(why).first->c_str();
    std::fprintf(stderr, "mlpx sim: %s\n", why.c_str());
  }
  t_last_error = sticky();
  drop_all_work();
}

void reset_fault() {
  Lock lock(api_mutex());
  g_sticky.store(cudaSuccess);
  t_last_error = cudaSuccess;
}

void set_device_memory_limit(size_t bytes) {
  Lock lock(api_mutex());
  state().memory.limit = bytes;
}
size_t device_memory_limit() {
  Lock lock(api_mutex());
  return state().memory.limit;
}
size_t device_bytes_in_use() {
  Lock lock(api_mutex());
  return state().memory.used;
}

void set_device_count(int count) {
  Lock lock(api_mutex());
  state().device_count = std::clamp(count, 0, kMaxDevices);
}
int device_count() {
  Lock lock(api_mutex());
  return state().device_count;
}

uint64_t host_waits() {
  Lock lock(api_mutex());
  return state().host_waits;
}

DeviceAccess::DeviceAccess() {
  Lock lock(api_mutex());
  open_memory();
}
DeviceAccess::~DeviceAccess() {
  Lock lock(api_mutex());
  close_memory();
}

}  // namespace mlpx_sim

// =================================================================================================
// The CUDA runtime API

using namespace mlpx_sim::runtime_detail;  // NOLINT

extern "C" {

cudaError_t cudaGetLastError(void) {
  cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  if (e == cudaSuccess) e = sticky();
  return e;
}

cudaError_t cudaPeekAtLastError(void) {
  return t_last_error != cudaSuccess ? t_last_error : sticky();
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define MLPX_SIM_NAME(code) \
  case code:                \
    return #code;
    MLPX_SIM_NAME(cudaSuccess)
    MLPX_SIM_NAME(cudaErrorInvalidValue)
    MLPX_SIM_NAME(cudaErrorMemoryAllocation)
    MLPX_SIM_NAME(cudaErrorInitializationError)
    MLPX_SIM_NAME(cudaErrorCudartUnloading)
    MLPX_SIM_NAME(cudaErrorInvalidConfiguration)
    MLPX_SIM_NAME(cudaErrorInvalidDevicePointer)
    MLPX_SIM_NAME(cudaErrorInvalidMemcpyDirection)
    MLPX_SIM_NAME(cudaErrorNoDevice)
    MLPX_SIM_NAME(cudaErrorInvalidDevice)
    MLPX_SIM_NAME(cudaErrorInvalidResourceHandle)
    MLPX_SIM_NAME(cudaErrorIllegalState)
    MLPX_SIM_NAME(cudaErrorNotReady)
    MLPX_SIM_NAME(cudaErrorIllegalAddress)
    MLPX_SIM_NAME(cudaErrorLaunchFailure)
    MLPX_SIM_NAME(cudaErrorNotPermitted)
    MLPX_SIM_NAME(cudaErrorNotSupported)
    MLPX_SIM_NAME(cudaErrorStreamCaptureUnsupported)
    MLPX_SIM_NAME(cudaErrorStreamCaptureInvalidated)
    MLPX_SIM_NAME(cudaErrorStreamCaptureMerge)
    MLPX_SIM_NAME(cudaErrorStreamCaptureUnmatched)
    MLPX_SIM_NAME(cudaErrorStreamCaptureUnjoined)
    MLPX_SIM_NAME(cudaErrorStreamCaptureIsolation)
    MLPX_SIM_NAME(cudaErrorStreamCaptureImplicit)
    MLPX_SIM_NAME(cudaErrorCapturedEvent)
    MLPX_SIM_NAME(cudaErrorStreamCaptureWrongThread)
    MLPX_SIM_NAME(cudaErrorUnknown)
#undef MLPX_SIM_NAME
  }
  return "unrecognized error code";
}

const char* cudaGetErrorString(cudaError_t error) {
  Lock lock(api_mutex());
  const auto& detail = errors().detail;
  const auto it = detail.find(error);
  if (it != detail.end() && it->second != nullptr) return it->second;
  return generic_message(error);
}

// ---- Device ----------------------------------------------------------------------------------

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return fail(cudaErrorInvalidValue);
  Lock lock(api_mutex());
  if (no_device()) {
    *count = 0;
    return fail(cudaErrorNoDevice, "no CUDA-capable device is detected (MLPX_SIM_DEVICES=0)");
  }
  *count = state().device_count;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  Lock lock(api_mutex());
  if (no_device()) return fail(cudaErrorNoDevice);
  const cudaError_t e = check_device(device, "cudaSetDevice");
  if (e != cudaSuccess) return e;
  t_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return fail(cudaErrorInvalidValue);
  Lock lock(api_mutex());
  if (no_device()) return fail(cudaErrorNoDevice);
  *device = t_device;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  State& st = state();
  std::vector<CUstream_st*> capturing;
  for (CUstream_st* s : st.streams)
    if (s->capture) capturing.push_back(s);
  if (!capturing.empty()) {
    const std::string why = "cudaDeviceSynchronize while " + stream_name(capturing.front()) +
                            " captures; the capture is invalidated";
    for (CUstream_st* s : capturing) invalidate(s, why);
    return fail(cudaErrorStreamCaptureUnsupported, why);
  }
  ++st.host_waits;
  drain_device(t_device);
  return sync_result();
}

// ---- Memory ----------------------------------------------------------------------------------

cudaError_t cudaMalloc(void** devPtr, size_t size) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  const cudaError_t e = check_unsafe("cudaMalloc", false);
  if (e != cudaSuccess) return e;
  return allocate(devPtr, size, t_device, nullptr);
}

cudaError_t cudaFree(void* devPtr) {
  Lock lock(api_mutex());
  if (devPtr == nullptr) return sticky() != cudaSuccess ? fail_sticky() : cudaSuccess;
  const cudaError_t unsafe = check_unsafe("cudaFree", false);
  if (unsafe != cudaSuccess) return unsafe;
  Slot* s = find_live_start(devPtr);
  if (s == nullptr) {
    Slot* any = find_slot(reinterpret_cast<uintptr_t>(devPtr));
    std::string why = "cudaFree(" + hex(devPtr) + "): ";
    if (any == nullptr)
      why += "not device memory";
    else if (any->state.load() != kSlotLive)
      why += "already freed (an allocation of " + std::to_string(any->size.load()) + " bytes)";
    else
      why += "not the start of a device allocation (inside " +
             describe_offset(reinterpret_cast<uintptr_t>(devPtr), *any) + ")";
    return fail(cudaErrorInvalidValue, why);
  }
  // cudaFree waits for the device: work queued before may still use the memory.
  ++state().host_waits;
  if (sticky() == cudaSuccess) drain_device(s->device);
  release(*s);
  return sync_result();
}

cudaError_t cudaMallocAsync(void** devPtr, size_t size, cudaStream_t stream) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (s->capture) {
    if (s->capture->invalidated)
      return fail(cudaErrorStreamCaptureInvalidated,
                  "cudaMallocAsync on " + stream_name(s) +
                      ": the capture was invalidated earlier: " + s->capture->why);
    Slot* made = nullptr;
    const cudaError_t e = allocate(devPtr, size, s->device, &made);
    if (e != cudaSuccess || made == nullptr) return e;
    auto owner = std::make_shared<GraphAllocation>();
    owner->ptr = *devPtr;
    owner->id = made->id;
    s->capture->allocations[*devPtr] = owner;
    return submit(
        s, make_item("cudaMallocAsync (graph allocation)", false, [owner] { owner->repoison(); }));
  }
  if (s->legacy) {
    const cudaError_t e = check_legacy_use("cudaMallocAsync");
    if (e != cudaSuccess) return e;
  }
  return allocate(devPtr, size, s->legacy ? t_device : s->device, nullptr);
}

cudaError_t cudaFreeAsync(void* devPtr, cudaStream_t stream) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (devPtr == nullptr) return cudaSuccess;
  if (s->capture) {
    if (s->capture->invalidated)
      return fail(cudaErrorStreamCaptureInvalidated,
                  "cudaFreeAsync on " + stream_name(s) +
                      ": the capture was invalidated earlier: " + s->capture->why);
    auto it = s->capture->allocations.find(devPtr);
    if (it == s->capture->allocations.end())
      return fail(cudaErrorNotSupported,
                  "cudaFreeAsync(" + hex(devPtr) +
                      ") during stream capture of memory not allocated in the same capture: not "
                      "modelled by the simulator");
    auto owner = it->second;
    s->capture->allocations.erase(it);
    // The graph keeps the memory (its allocation node poisons it again at each replay).
    return submit(s, make_item("cudaFreeAsync (graph allocation)", false, [owner] {}));
  }
  Slot* slot = find_live_start(devPtr);
  if (slot == nullptr)
    return fail(cudaErrorInvalidValue,
                "cudaFreeAsync(" + hex(devPtr) + "): not the start of a live device allocation");
  const uint64_t id = slot->id;
  return submit(s, make_item("cudaFreeAsync", false, [devPtr, id] {
                  Slot* now = find_live_start(devPtr);
                  if (now == nullptr || now->id != id) {
                    mlpx_sim::raise_fault(
                        cudaErrorIllegalAddress,
                        "cudaFreeAsync(" + hex(devPtr) + "): the memory was freed before");
                    return;
                  }
                  release(*now);
                }));
}

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  if (free == nullptr || total == nullptr) return fail(cudaErrorInvalidValue);
  const Memory& m = state().memory;
  *total = m.limit;
  *free = m.limit > m.used ? m.limit - m.used : 0;
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (count == 0) return cudaSuccess;
  ItemPtr item;
  bool touches_host = false;
  const cudaError_t e = make_copy("cudaMemcpyAsync", dst, src, count, kind, item, touches_host);
  if (e != cudaSuccess) return e;
  return submit(s, std::move(item));
}

cudaError_t cudaMemcpyPeerAsync(void* dst, int dstDevice, const void* src, int srcDevice,
                                size_t count, cudaStream_t stream) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  cudaError_t e = check_device(dstDevice, "cudaMemcpyPeerAsync");
  if (e == cudaSuccess) e = check_device(srcDevice, "cudaMemcpyPeerAsync");
  if (e != cudaSuccess) return e;
  if (count == 0) return cudaSuccess;
  ItemPtr item;
  bool touches_host = false;
  e = make_copy("cudaMemcpyPeerAsync", dst, src, count, cudaMemcpyDeviceToDevice, item,
                touches_host);
  if (e != cudaSuccess) return e;
  const Slot* d = find_slot(reinterpret_cast<uintptr_t>(dst));
  const Slot* r = find_slot(reinterpret_cast<uintptr_t>(src));
  if (d->device != dstDevice || r->device != srcDevice)
    return fail(cudaErrorInvalidValue,
                "cudaMemcpyPeerAsync: the destination " + hex(dst) + " is memory of device " +
                    std::to_string(d->device) + " (named: " + std::to_string(dstDevice) +
                    "), the source " + hex(src) + " of device " + std::to_string(r->device) +
                    " (named: " + std::to_string(srcDevice) + ")");
  return submit(s, std::move(item));
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  const cudaError_t unsafe = check_unsafe("cudaMemcpy", true);
  if (unsafe != cudaSuccess) return unsafe;
  if (count == 0) return cudaSuccess;
  ItemPtr item;
  bool touches_host = false;
  cudaError_t e = make_copy("cudaMemcpy", dst, src, count, kind, item, touches_host);
  if (e != cudaSuccess) return e;
  State& st = state();
  uint64_t seq = 0;
  e = submit(&st.legacy, std::move(item), &seq);
  if (e != cudaSuccess) return e;
  // With host memory on either side, cudaMemcpy returns once the copy is done (after the work
  // queued before it); device to device, it does not wait.
  if (touches_host) {
    ++st.host_waits;
    Drain drain;
    run_until(&st.legacy, seq, drain);
  }
  return sync_result();
}

cudaError_t cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t stream) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (count == 0) return cudaSuccess;
  ItemPtr item;
  const cudaError_t e = make_memset("cudaMemsetAsync", devPtr, value, count, item);
  if (e != cudaSuccess) return e;
  return submit(s, std::move(item));
}

cudaError_t cudaMemset(void* devPtr, int value, size_t count) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  const cudaError_t unsafe = check_unsafe("cudaMemset", true);
  if (unsafe != cudaSuccess) return unsafe;
  if (count == 0) return cudaSuccess;
  ItemPtr item;
  const cudaError_t e = make_memset("cudaMemset", devPtr, value, count, item);
  if (e != cudaSuccess) return e;
  // On device memory cudaMemset is asynchronous to the host: queued on the legacy stream.
  return submit(&state().legacy, std::move(item));
}

// ---- Streams ---------------------------------------------------------------------------------

cudaError_t cudaStreamCreate(cudaStream_t* pStream) {
  return cudaStreamCreateWithFlags(pStream, cudaStreamDefault);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* pStream, unsigned int flags) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  if (pStream == nullptr || (flags & ~1u) != 0) return fail(cudaErrorInvalidValue);
  auto* s = new CUstream_st;
  s->device = t_device;
  s->blocking = (flags & cudaStreamNonBlocking) == 0;
  state().streams.insert(s);
  *pStream = s;
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  Lock lock(api_mutex());
  State& st = state();
  if (stream == nullptr || stream == cudaStreamLegacy || st.streams.count(stream) == 0)
    return fail(cudaErrorInvalidResourceHandle);
  st.streams.erase(stream);
  // A capture in progress is dropped with the stream that began it (its forked streams leave
  // it); a forked stream leaves the capture, whose end then finds it unjoined.
  if (stream->capture && stream->capture->origin == stream) {
    st.active_captures.erase(stream->capture->id);
    for (CUstream_st* f : stream->capture->forked) f->capture.reset();
  } else if (stream->capture) {
    Capture& c = *stream->capture;
    invalidate(stream, "a stream that joined the capture was destroyed before it ended");
    c.forked.erase(std::find(c.forked.begin(), c.forked.end(), stream));
    c.submitted.erase(stream);
    c.joined.erase(stream);
  }
  stream->capture.reset();
  // Work still queued completes later (at a synchronisation that reaches it), as on a GPU.
  if (stream->queue.empty())
    delete stream;
  else
    st.zombies.insert(stream);
  return sticky() != cudaSuccess ? fail_sticky() : cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (s->capture) {
    const std::string why = "cudaStreamSynchronize on " + stream_name(s) +
                            " while it captures; the capture is invalidated";
    invalidate(s, why);
    return fail(cudaErrorStreamCaptureUnsupported, why);
  }
  if (s->legacy) {
    const cudaError_t e = check_legacy_use("cudaStreamSynchronize");
    if (e != cudaSuccess) return e;
  }
  ++state().host_waits;
  Drain drain;
  run_until(s, UINT64_MAX, drain);
  return sync_result();
}

// ---- Events ----------------------------------------------------------------------------------

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}

// Flags are checked and otherwise ignored: no event here blocks (cudaEventBlockingSync) or
// needs its timing disabled to be cheap.
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  if (event == nullptr || (flags & ~unsigned{cudaEventDisableTiming}) != 0)
    return fail(cudaErrorInvalidValue);
  auto e = std::make_shared<CUevent_st>();
  e->device = t_device;
  state().events[e.get()] = e;
  *event = e.get();
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  Lock lock(api_mutex());
  if (state().events.erase(event) == 0) return fail(cudaErrorInvalidResourceHandle);
  return cudaSuccess;  // a record still queued keeps the event alive until it runs
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  State& st = state();
  const auto found = st.events.find(event);
  if (found == st.events.end()) return fail(cudaErrorInvalidResourceHandle);
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  std::shared_ptr<CUevent_st> e = found->second;
  if (!s->legacy && s->device != e->device)
    return fail(cudaErrorInvalidResourceHandle,
                "cudaEventRecord: an event of device " + std::to_string(e->device) + " on " +
                    stream_name(s) + " of device " + std::to_string(s->device));
  if (s->capture) {
    if (s->capture->invalidated)
      return fail(cudaErrorStreamCaptureInvalidated,
                  "cudaEventRecord on " + stream_name(s) +
                      ": the capture was invalidated earlier: " + s->capture->why);
    e->capture_id = s->capture->id;  // a captured event: an ordering point of the graph only
    e->capture_stream = s;
    e->capture_items = s->capture->body->items.size();
    e->recorded = false;
    return cudaSuccess;
  }
  const uint64_t seq = st.seq + 1;  // the number submit gives the record
  const cudaError_t r = submit(s, make_item("cudaEventRecord", false, [e, seq] {
                                 if (e->seq == seq) {
                                   e->done = true;
                                   e->when = Clock::now();
                                 }
                               }));
  if (r != cudaSuccess) return r;
  e->capture_id = 0;
  e->stream = s;
  e->seq = seq;
  e->recorded = true;
  e->done = false;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  State& st = state();
  const auto found = st.events.find(event);
  if (found == st.events.end()) return fail(cudaErrorInvalidResourceHandle);
  CUevent_st& e = *found->second;
  if (e.capture_id != 0 && st.active_captures.count(e.capture_id) != 0) {
    const std::string why =
        "cudaEventSynchronize on an event recorded in a capture in progress; the capture is "
        "invalidated";
    for (CUstream_st* s : st.streams)
      if (s->capture && s->capture->id == e.capture_id) invalidate(s, why);
    return fail(cudaErrorCapturedEvent, why);
  }
  const cudaError_t unsafe = check_unsafe("cudaEventSynchronize", false);
  if (unsafe != cudaSuccess) return unsafe;
  ++st.host_waits;
  if (e.recorded && !e.done && stream_alive(e.stream)) {
    Drain drain;
    run_until(e.stream, e.seq, drain);
    reap_zombies();
  }
  return sync_result();
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  State& st = state();
  CUstream_st* s = resolve(stream);
  const auto found = st.events.find(event);
  if (s == nullptr || found == st.events.end()) return fail(cudaErrorInvalidResourceHandle);
  if (flags != cudaEventWaitDefault) return fail(cudaErrorInvalidValue);
  const CUevent_st& e = *found->second;
  const bool captured = e.capture_id != 0 && st.active_captures.count(e.capture_id) != 0;
  if (s->capture) {
    if (s->capture->invalidated)
      return fail(cudaErrorStreamCaptureInvalidated,
                  "cudaStreamWaitEvent on " + stream_name(s) +
                      ": the capture was invalidated earlier: " + s->capture->why);
    // The graph holds its members' work in submission order, which already runs the work before
    // a record ahead of later waits on it. The origin's wait on a forked stream's record joins
    // that stream's work up to the record.
    if (captured && e.capture_id == s->capture->id) {
      Capture& c = *s->capture;
      if (s == c.origin && e.capture_stream != s) {
        size_t& joined = c.joined[e.capture_stream];
        joined = std::max(joined, e.capture_items);
      }
      return cudaSuccess;
    }
    const std::string why = "cudaStreamWaitEvent: " + stream_name(s) +
                            " captures and the event was recorded outside the capture; the "
                            "capture is invalidated";
    invalidate(s, why);
    return fail(cudaErrorStreamCaptureIsolation, why);
  }
  if (captured) {
    // A fork: s joins the capture; its work from now on is recorded into the graph.
    if (s->legacy)
      return fail(cudaErrorStreamCaptureImplicit,
                  "cudaStreamWaitEvent: the legacy default stream cannot join a capture");
    const std::shared_ptr<Capture>& c = st.active_captures.at(e.capture_id);
    if (c->invalidated)
      return fail(cudaErrorStreamCaptureInvalidated,
                  "cudaStreamWaitEvent on " + stream_name(s) +
                      ": the capture it would join was invalidated earlier: " + c->why);
    s->capture = c;
    c->forked.push_back(s);
    return cudaSuccess;
  }
  if (!e.recorded || e.done || !stream_alive(e.stream)) return cudaSuccess;
  if (s->legacy) {
    const cudaError_t legacy = check_legacy_use("cudaStreamWaitEvent");
    if (legacy != cudaSuccess) return legacy;
  }
  submit_wait(s, e.stream, e.seq);
  return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  State& st = state();
  const auto a = st.events.find(start), b = st.events.find(end);
  if (a == st.events.end() || b == st.events.end()) return fail(cudaErrorInvalidResourceHandle);
  if (ms == nullptr) return fail(cudaErrorInvalidValue);
  if (!a->second->recorded || !b->second->recorded)
    return fail(cudaErrorInvalidResourceHandle,
                "cudaEventElapsedTime: an event that was never recorded");
  if (!a->second->done || !b->second->done) return fail(cudaErrorNotReady);
  *ms = std::chrono::duration<float, std::milli>(b->second->when - a->second->when).count();
  return cudaSuccess;
}

// ---- Graphs ----------------------------------------------------------------------------------

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (s->legacy)
    return fail(cudaErrorStreamCaptureUnsupported,
                "cudaStreamBeginCapture: the legacy default stream cannot be captured");
  if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
      mode != cudaStreamCaptureModeRelaxed)
    return fail(cudaErrorInvalidValue);
  if (s->capture)
    return fail(cudaErrorIllegalState,
                "cudaStreamBeginCapture: " + stream_name(s) + " is already capturing");
  State& st = state();
  s->capture = std::make_shared<Capture>();
  s->capture->id = st.next_capture++;
  s->capture->mode = mode;
  s->capture->thread = std::this_thread::get_id();
  s->capture->origin = s;
  st.active_captures.emplace(s->capture->id, s->capture);
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* pGraph) {
  Lock lock(api_mutex());
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (pGraph == nullptr) return fail(cudaErrorInvalidValue);
  if (!s->capture)
    return fail(cudaErrorIllegalState,
                "cudaStreamEndCapture: " + stream_name(s) + " is not capturing");
  if (s->capture->mode != cudaStreamCaptureModeRelaxed &&
      s->capture->thread != std::this_thread::get_id())
    return fail(cudaErrorStreamCaptureWrongThread);
  if (s->capture->origin != s) {
    const std::string why = "cudaStreamEndCapture on " + stream_name(s) +
                            ", which joined a capture that " + stream_name(s->capture->origin) +
                            " began; the capture is invalidated";
    invalidate(s, why);
    return fail(cudaErrorStreamCaptureUnmatched, why);
  }
  std::shared_ptr<Capture> capture = std::move(s->capture);
  state().active_captures.erase(capture->id);
  for (CUstream_st* f : capture->forked) f->capture.reset();
  for (const auto& [f, submitted] : capture->submitted) {
    if (capture->invalidated || capture->joined[f] >= submitted) continue;
    capture->invalidated = true;
    capture->why = stream_name(f) +
                   " joined the capture and its last work was not joined back "
                   "(the capturing stream never waited on an event recorded "
                   "after it)";
    *pGraph = nullptr;
    return fail(cudaErrorStreamCaptureUnjoined, capture->why);
  }
  if (capture->invalidated) {
    *pGraph = nullptr;
    return fail(cudaErrorStreamCaptureInvalidated,
                "the capture on " + stream_name(s) + " was invalidated: " + capture->why);
  }
  auto* graph = new CUgraph_st{capture->body};
  state().graphs.insert(graph);
  *pGraph = graph;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus* pStatus) {
  Lock lock(api_mutex());
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (pStatus == nullptr) return fail(cudaErrorInvalidValue);
  *pStatus = !s->capture               ? cudaStreamCaptureStatusNone
             : s->capture->invalidated ? cudaStreamCaptureStatusInvalidated
                                       : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* pGraphExec, cudaGraph_t graph,
                                 unsigned long long /*flags*/) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  State& st = state();
  if (pGraphExec == nullptr || graph == nullptr || st.graphs.count(graph) == 0)
    return fail(cudaErrorInvalidValue);
  auto* exec = new CUgraphExec_st{graph->body};
  st.execs.insert(exec);
  *pGraphExec = exec;
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t graphExec, cudaStream_t stream) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  State& st = state();
  if (graphExec == nullptr) return fail(cudaErrorInvalidValue);
  if (st.execs.count(graphExec) == 0) return fail(cudaErrorInvalidResourceHandle);
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  for (const ItemPtr& item : graphExec->body->items) {
    const cudaError_t e = submit(s, item);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  Lock lock(api_mutex());
  if (graph == nullptr) return fail(cudaErrorInvalidValue);
  if (state().graphs.erase(graph) == 0) return fail(cudaErrorInvalidResourceHandle);
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t graphExec) {
  Lock lock(api_mutex());
  if (graphExec == nullptr) return fail(cudaErrorInvalidValue);
  if (state().execs.erase(graphExec) == 0) return fail(cudaErrorInvalidResourceHandle);
  delete graphExec;
  return cudaSuccess;
}

}  // extern "C"
