#include "kernels/device_counters.h"

#include <atomic>

#include "kernels/check.h"
#include "kernels/runtime.h"

#if MLPX_SIM
#include "mlpx_sim/counters.h"
#include "mlpx_sim/runtime.h"
#endif

namespace mlpx::cuda {

namespace {
std::atomic<uint64_t> g_host_waits{0};
}  // namespace

void note_host_wait() { g_host_waits.fetch_add(1, std::memory_order_relaxed); }

#if MLPX_SIM

uint64_t host_waits() { return mlpx_sim::host_waits(); }

bool counts_device_work() { return true; }

void set_device_work_counting(bool on) { mlpx_sim::set_counting(on); }

std::shared_ptr<uint64_t> mark_device_work(Device device) {
  auto mark = std::make_shared<uint64_t>(0);
  // The stream work writes through the pointer: the caller keeps the mark until a
  // synchronisation has run it.
  MLPX_CUDA_CHECK(mlpx_sim::enqueue_mark(stream_of(device), mark.get()));
  return mark;
}

std::vector<DeviceWork> device_work_between(uint64_t from, uint64_t to) {
  std::vector<DeviceWork> out;
  for (const mlpx_sim::WorkRecord& r : mlpx_sim::work_records_between(from, to)) {
    DeviceWork w;
    w.name = r.label;
    w.kind = r.kind == mlpx_sim::WorkKind::kGemm     ? DeviceWork::Kind::kGemm
             : r.kind == mlpx_sim::WorkKind::kCopy   ? DeviceWork::Kind::kCopy
             : r.kind == mlpx_sim::WorkKind::kMemset ? DeviceWork::Kind::kMemset
                                                     : DeviceWork::Kind::kKernel;
    w.bytes_read = static_cast<double>(r.bytes_read);
    w.bytes_written = static_cast<double>(r.bytes_written);
    w.flops = static_cast<double>(r.flops);
    w.precision = r.precision;
    out.push_back(std::move(w));
  }
  return out;
}

#else

uint64_t host_waits() { return g_host_waits.load(std::memory_order_relaxed); }

bool counts_device_work() { return false; }

void set_device_work_counting(bool) {}

std::shared_ptr<uint64_t> mark_device_work(Device) { return std::make_shared<uint64_t>(0); }

std::vector<DeviceWork> device_work_between(uint64_t, uint64_t) { return {}; }

#endif

}  // namespace mlpx::cuda
