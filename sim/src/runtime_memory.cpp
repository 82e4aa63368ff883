// The simulator runtime's configuration (environment variables), its lock and error state, and
// device memory: the allocations, their slots and the lookup of an address (runtime_internal.h).
#include "runtime_internal.h"

namespace mlpx_sim::runtime_detail {

// ---- Configuration ---------------------------------------------------------------------------

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

Errors& errors() {
  static auto* e = new Errors;
  return *e;
}
std::atomic<int> g_sticky{cudaSuccess};
thread_local cudaError_t t_last_error = cudaSuccess;

cudaError_t sticky() { return static_cast<cudaError_t>(g_sticky.load()); }

// Sets `code` as the thread's last error, with `why` as its detailed message ("" = CUDA's text).
cudaError_t fail(cudaError_t code, const std::string& why) {
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

// ---- Stream work, streams, captures ------------------------------------------------------------

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

}  // namespace mlpx_sim::runtime_detail
