// The counters of device work (mlpx_sim/counters.h, sim/README.md "Counters").
#include <cstdlib>
#include <cstring>

#include "runtime_internal.h"

namespace mlpx_sim::counters_detail {

__attribute__((tls_model("initial-exec"))) thread_local bool t_counting_accesses = false;

namespace {

using runtime_detail::api_mutex;
using runtime_detail::Lock;

// -1: not decided yet (the environment decides at the first query).
std::atomic<int> g_counting{-1};
std::atomic<int> g_gemm_arithmetic{-1};

// Under the runtime's lock.
std::vector<WorkRecord> g_records;
WorkRecord* g_open = nullptr;  // the record of the work running now, if any

// The device allocations a running kernel touched lately: a kernel reads and writes a few
// buffers, so most accesses hit here and skip the allocation map. Cleared with every piece of
// work (allocations change only between them).
struct Span {
  uintptr_t begin = 0, end = 0;
};
constexpr int kRecentSpans = 8;
Span g_recent[kRecentSpans];
int g_next_recent = 0;

bool from_environment(std::atomic<int>& flag, const char* name, bool fallback) {
  int state = flag.load();
  if (state < 0) {
    const char* text = std::getenv(name);
    const int value = text == nullptr || *text == '\0' ? (fallback ? 1 : 0)
                      : std::strcmp(text, "0") == 0    ? 0
                                                       : 1;
    flag.compare_exchange_strong(state, value);
    state = flag.load();
  }
  return state == 1;
}

bool in_device_memory(uintptr_t address) {
  for (const Span& s : g_recent) {
    if (address - s.begin < s.end - s.begin) return true;
  }
  Lock lock(api_mutex());
  const runtime_detail::Slot* slot = runtime_detail::find_slot(address);
  if (slot == nullptr || slot->state.load() != runtime_detail::kSlotLive) return false;
  const uintptr_t begin = slot->data.load(), end = begin + slot->size.load();
  if (address < begin || address >= end) return false;
  g_recent[g_next_recent] = Span{begin, end};
  g_next_recent = (g_next_recent + 1) % kRecentSpans;
  return true;
}

}  // namespace

bool begin_work(const std::string& label, cudaGraphNodeType node_type) {
  if (!counting()) return false;
  WorkRecord record;
  switch (node_type) {
    case cudaGraphNodeTypeKernel:
      record.kind = WorkKind::kKernel;
      break;
    case cudaGraphNodeTypeMemcpy:
      record.kind = WorkKind::kCopy;
      break;
    case cudaGraphNodeTypeMemset:
      record.kind = WorkKind::kMemset;
      break;
    default:
      return false;
  }
  record.label = label;
  g_records.push_back(std::move(record));
  g_open = &g_records.back();
  for (Span& s : g_recent) s = Span{};
  t_counting_accesses = true;
  return true;
}

void end_work() {
  t_counting_accesses = false;
  g_open = nullptr;
}

void count_access(const void* address, unsigned size, bool write) {
  if (g_open == nullptr || !in_device_memory(reinterpret_cast<uintptr_t>(address))) return;
  (write ? g_open->bytes_written : g_open->bytes_read) += size;
}

}  // namespace mlpx_sim::counters_detail

namespace mlpx_sim::runtime_detail {

void count_host_wait(const char* api) {
  ++state().host_waits;
  static const bool trace = [] {
    const char* text = std::getenv("MLPX_SIM_TRACE_WAITS");
    return text != nullptr && std::strcmp(text, "1") == 0;
  }();
  if (trace) std::fprintf(stderr, "mlpx sim: host wait: %s\n", api);
}

}  // namespace mlpx_sim::runtime_detail

namespace mlpx_sim {

using counters_detail::g_open;
using counters_detail::g_records;
using runtime_detail::api_mutex;
using runtime_detail::Lock;

void set_counting(bool on) { counters_detail::g_counting = on ? 1 : 0; }
bool counting() {
  return counters_detail::from_environment(counters_detail::g_counting, "MLPX_SIM_COUNT", false);
}

uint64_t work_records() {
  Lock lock(api_mutex());
  return g_records.size();
}

std::vector<WorkRecord> work_records_between(uint64_t from, uint64_t to) {
  Lock lock(api_mutex());
  to = std::min<uint64_t>(to, g_records.size());
  from = std::min(from, to);
  return {g_records.begin() + static_cast<std::ptrdiff_t>(from),
          g_records.begin() + static_cast<std::ptrdiff_t>(to)};
}

void clear_work_records() {
  Lock lock(api_mutex());
  g_records.clear();
  g_open = nullptr;
}

cudaError_t enqueue_mark(cudaStream_t stream, uint64_t* mark) {
  using namespace runtime_detail;  // NOLINT
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  CUstream_st* s = resolve(stream);
  if (s == nullptr) return fail(cudaErrorInvalidResourceHandle);
  if (mark == nullptr) return fail(cudaErrorInvalidValue);
  if (s->capture)
    return fail(cudaErrorStreamCaptureUnsupported, "enqueue_mark: the stream is capturing");
  return submit(s, make_item("counter mark", false, [mark] { *mark = g_records.size(); }));
}

void count_device_bytes(uint64_t read, uint64_t written) {
  Lock lock(api_mutex());
  if (g_open == nullptr) return;
  g_open->bytes_read += read;
  g_open->bytes_written += written;
}

void count_gemm(uint64_t flops, const char* precision) {
  Lock lock(api_mutex());
  if (g_open == nullptr) return;
  g_open->kind = WorkKind::kGemm;
  g_open->flops += flops;
  g_open->precision = precision;
}

void set_gemm_arithmetic(bool on) { counters_detail::g_gemm_arithmetic = on ? 1 : 0; }
bool gemm_arithmetic() {
  return counters_detail::from_environment(counters_detail::g_gemm_arithmetic,
                                           "MLPX_SIM_GEMM_ARITHMETIC", true);
}

}  // namespace mlpx_sim
