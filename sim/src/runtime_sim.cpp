// The simulator runtime's own interface (mlpx_sim/runtime.h, enqueue_launch of
// mlpx_sim/launch.h): launches, faults, limits, counters (runtime_internal.h).
#include "runtime_internal.h"

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
  // On a GPU such work (a cuBLAS GEMM, a collective, a sort) is kernels: a kernel node.
  return submit(s, make_item(std::move(what), false, std::move(run), cudaGraphNodeTypeKernel));
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
