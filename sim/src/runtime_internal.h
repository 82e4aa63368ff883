// The simulator's CUDA runtime, inside: what its parts share. sim/src/runtime.cpp (the CUDA
// runtime API: errors, devices, memory), runtime_api_streams.cpp (streams, events, graphs),
// runtime_sim.cpp (the mlpx_sim:: interface: launches, faults, limits), runtime_memory.cpp
// (configuration, the lock and the error state, device memory and its slots),
// runtime_segv.cpp (the SIGSEGV handler and the leak check) and runtime_streams.cpp (stream work,
// captures, graph allocations, copies and memsets). Internal to the simulator.
// See sim/README.md ("The runtime") for the model:
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
#pragma once

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

#include "counters_internal.h"
#include "cuda_runtime_api.h"
#include "mlpx_sim/counters.h"
#include "mlpx_sim/launch.h"
#include "mlpx_sim/runtime.h"

namespace mlpx_sim::runtime_detail {

using Clock = std::chrono::steady_clock;

constexpr size_t kDefaultMemoryLimit = size_t{141} << 30;  // an H200's 141 GiB
constexpr size_t kDefaultAlignment = 16;    // the largest alignment a device type needs (float4)
constexpr size_t kChargeGranularity = 256;  // what cudaMemGetInfo counts per allocation
constexpr size_t kCheckedLead = 256;        // canary bytes before an allocation checked per kernel
constexpr size_t kMaxSlots = size_t{1} << 20;
constexpr size_t kQuarantineCount = 1024;              // freed allocations kept PROT_NONE
constexpr size_t kQuarantineBytes = size_t{64} << 30;  // (address space only)
constexpr size_t kHostCheckBytes = size_t{64} << 20;   // from here, check the host can back it
constexpr int kMaxDevices = 8;

using Lock = std::lock_guard<std::recursive_mutex>;

struct Errors {
  std::set<std::string> interned;     // the detailed messages, stable storage
  std::map<int, const char*> detail;  // code -> last detailed message (nullptr: generic)
};

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

struct Item {
  std::string label;  // "kernel name (file:line)", "cudaMemcpyAsync", ...
  bool kernel = false;
  // What a graph holds it as (cudaGraphNodeGetType); cudaGraphNodeTypeEmpty: no node.
  cudaGraphNodeType node_type = cudaGraphNodeTypeEmpty;
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

// Where a pointer range of a copy lies: host memory, or inside one live device allocation.
enum class Side { kHost, kDevice };

struct State;
class Drain;

// ---- Configuration (runtime_memory.cpp)
size_t page_size();
size_t round_up(size_t n, size_t to);
// "8G", "512M", "64K", "123" (bytes); binary units.
size_t parse_bytes(const char* text, size_t fallback);
size_t env_alignment();
size_t host_available_bytes();
std::string hex(uintptr_t v);
std::string hex(const void* p);
// MLPX_SIM_DEVICES: how many devices (0 to kMaxDevices); 1 when unset or unreadable.
int env_device_count();

// ---- The lock and the error state (runtime_memory.cpp)
std::recursive_mutex& api_mutex();
Errors& errors();
extern std::atomic<int> g_sticky;
extern thread_local cudaError_t t_last_error;
extern thread_local int t_device;  // the calling thread's current device (cudaSetDevice)
cudaError_t sticky();
// Sets `code` as the thread's last error, with `why` as its detailed message ("" = CUDA's text).
cudaError_t fail(cudaError_t code, const std::string& why = {});
cudaError_t fail_sticky();
State& state();

// ---- Device memory (runtime_memory.cpp)
void fill_canary(uintptr_t from, uintptr_t to);
// The first address in [from, to) whose canary was overwritten, or 0.
uintptr_t first_bad_canary(uintptr_t from, uintptr_t to);
// For the signal handler.
extern std::atomic<Slot*> g_slots;
extern std::atomic<size_t> g_high_water;
extern std::atomic<const char*> g_running;  // the label of the device work running now
Slot* slot_array();
Slot* find_slot(uintptr_t p);
Slot* find_live_start(const void* p);
void protect(const Slot& s, bool open);
void open_memory();
void close_memory();
std::string describe_offset(uintptr_t a, const Slot& s);
[[noreturn]] void die(const std::string& message);
void check_redzones(const char* label);
cudaError_t allocate(void** out, size_t size, int device, Slot** made);
void evict_quarantine();
void release(Slot& s);
bool classify(const void* ptr, size_t bytes, Side& side, std::string& why);

// Counts a host wait (mlpx_sim::host_waits) by `api`; with MLPX_SIM_TRACE_WAITS=1 in the
// environment also prints "mlpx sim: host wait: <api>" to stderr, to find where waits come from.
void count_host_wait(const char* api);

// ---- The SIGSEGV handler (runtime_segv.cpp)
void install_segv_handler();

// ---- Streams (runtime_streams.cpp)
CUstream_st* resolve(cudaStream_t handle);
std::string stream_name(const CUstream_st* s);
const char* mode_name(cudaStreamCaptureMode mode);
void invalidate(CUstream_st* s, const std::string& why);
cudaError_t check_legacy_use(const char* api);
cudaError_t check_unsafe(const char* api, bool uses_legacy);
// Queues `item` on s, or records it while s captures. *seq_out: the queued work's number.
cudaError_t submit(CUstream_st* s, ItemPtr item, uint64_t* seq_out = nullptr);
void submit_wait(CUstream_st* s, CUstream_st* on, uint64_t on_seq);
// node_type: as Item::node_type; by default a kernel node for a kernel launch, else no node.
ItemPtr make_item(std::string label, bool kernel, std::function<void()> run,
                  cudaGraphNodeType node_type = cudaGraphNodeTypeEmpty);
void drop_all_work();
bool stream_alive(const CUstream_st* s);
void run_until(CUstream_st* s, uint64_t seq, Drain& drain);
void reap_zombies();
void drain_device(int device);
cudaError_t sync_result();

// ---- Copies and memsets, messages, devices (runtime_streams.cpp)
const char* kind_name(cudaMemcpyKind kind);
cudaError_t make_copy(const char* api, void* dst, const void* src, size_t count,
                      cudaMemcpyKind kind, ItemPtr& item, bool& touches_host);
cudaError_t make_memset(const char* api, void* dst, int value, size_t count, ItemPtr& item);
const char* generic_message(cudaError_t e);
bool no_device();
// cudaErrorInvalidDevice unless `device` is a simulated device.
cudaError_t check_device(int device, const char* api);

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

template <typename F>
void for_each_live(F f) {
  Memory& m = state().memory;
  for (const auto& entry : m.by_start) {
    Slot& s = m.slots[entry.second];
    if (s.state.load() == kSlotLive) f(s);
  }
}

template <typename F>
void for_each_stream(F f) {
  State& st = state();
  f(&st.legacy);
  for (CUstream_st* s : st.streams) f(s);
  for (CUstream_st* s : st.zombies) f(s);
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
    const bool counted = counters_detail::begin_work(w.item->label, w.item->node_type);
    w.item->run();
    if (counted) counters_detail::end_work();
    if (w.item->kernel && sticky() == cudaSuccess) check_redzones(w.item->label.c_str());
    g_running.store(previous);
  }

 private:
  bool opened_ = false;
};

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

}  // namespace mlpx_sim::runtime_detail
