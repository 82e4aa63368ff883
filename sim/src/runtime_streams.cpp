// The simulator runtime's stream work: streams, submission and draining, captures, graph
// allocations, copies and memsets, error messages and device checks (runtime_internal.h).
#include "runtime_internal.h"

namespace mlpx_sim::runtime_detail {

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
cudaError_t submit(CUstream_st* s, ItemPtr item, uint64_t* seq_out) {
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

ItemPtr make_item(std::string label, bool kernel, std::function<void()> run,
                  cudaGraphNodeType node_type) {
  auto item = std::make_shared<Item>();
  item->label = std::move(label);
  item->kernel = kernel;
  item->node_type =
      kernel && node_type == cudaGraphNodeTypeEmpty ? cudaGraphNodeTypeKernel : node_type;
  item->run = std::move(run);
  return item;
}

void drop_all_work() {
  for_each_stream([](CUstream_st* s) { s->queue.clear(); });
}

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
  item = make_item(
      label, false,
      [=] {
        std::string why_now;
        if ((dst_device && !check_device_range(dst, count, why_now)) ||
            (src_device && !check_device_range(src, count, why_now))) {
          raise_fault(cudaErrorIllegalAddress, label + " ran on memory freed since: " + why_now);
          return;
        }
        std::memmove(dst, src, count);
        count_device_bytes(src_device ? count : 0, dst_device ? count : 0);
      },
      cudaGraphNodeTypeMemcpy);
  return cudaSuccess;
}

cudaError_t make_memset(const char* api, void* dst, int value, size_t count, ItemPtr& item) {
  std::string why;
  if (dst == nullptr || !check_device_range(dst, count, why))
    return fail(cudaErrorInvalidValue,
                std::string(api) + ": " + (dst == nullptr ? "a null pointer" : why));
  const std::string label = api;
  item = make_item(
      label, false,
      [=] {
        std::string why_now;
        if (!check_device_range(dst, count, why_now)) {
          raise_fault(cudaErrorIllegalAddress, label + " ran on memory freed since: " + why_now);
          return;
        }
        std::memset(dst, value, count);
        count_device_bytes(0, count);
      },
      cudaGraphNodeTypeMemset);
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
