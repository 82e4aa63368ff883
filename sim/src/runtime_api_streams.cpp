// The simulator's CUDA runtime API for streams, events and graphs (runtime.cpp has the rest;
// runtime_internal.h the machinery).
#include "runtime_internal.h"

using namespace mlpx_sim::runtime_detail;  // NOLINT

extern "C" {

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
  count_host_wait("cudaStreamSynchronize");
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
  count_host_wait("cudaEventSynchronize");
  if (e.recorded && !e.done && stream_alive(e.stream)) {
    Drain drain;
    run_until(e.stream, e.seq, drain);
    reap_zombies();
  }
  return sync_result();
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  Lock lock(api_mutex());
  if (sticky() != cudaSuccess) return fail_sticky();
  State& st = state();
  const auto found = st.events.find(event);
  if (found == st.events.end()) return fail(cudaErrorInvalidResourceHandle);
  const CUevent_st& e = *found->second;
  return e.recorded && !e.done ? cudaErrorNotReady : cudaSuccess;
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
