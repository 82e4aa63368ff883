#include "kernels/nccl.h"

#include <nccl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "kernels/check.h"
#include "kernels/runtime.h"
#include "mlpx/error.h"

namespace mlpx::cuda {

namespace {

static_assert(sizeof(ncclUniqueId) == kNcclIdBytes, "NCCL's unique id changed size");

// Throws CudaError naming the call and NCCL's reasons: its error string and, where the
// communicator has one, its last message (which names the peer or the transport that failed).
void check_nccl(ncclResult_t status, const char* call, ncclComm_t comm = nullptr) {
  if (status == ncclSuccess) return;
  std::string detail = ncclGetErrorString(status);
  if (const char* last = ncclGetLastError(comm); last != nullptr && *last != '\0') {
    detail += std::string(" (") + last + ")";
  }
  throw CudaError(::mlpx::detail::concat("NCCL ", call, ": ", detail));
}

ncclDataType_t nccl_type(const Tensor& buffer, const char* op) {
  switch (buffer.dtype()) {
    case DType::kFloat32:
      return ncclFloat32;
    case DType::kFloat64:
      return ncclFloat64;
    default:
      throw ShapeError(::mlpx::detail::concat(op, ": expected a float32 or float64 buffer, found ",
                                              dtype_name(buffer.dtype())));
  }
}

char* element(const Tensor& buffer, int64_t index) {
  return static_cast<char*>(buffer.raw_data()) +
         static_cast<size_t>(index) * dtype_size(buffer.dtype());
}

}  // namespace

// The watchdog (dist.timeout_s), as PyTorch's NCCL watchdog: a thread of the communicator's
// own wakes every 100 ms and aborts the communicator (ncclCommAbort, which ends its kernels on
// this GPU, so that no host wait on the device hangs) when NCCL reports an asynchronous error
// (ncclCommGetAsyncError: a peer's connection lost, a network error) or when a collective
// enqueued outside a CUDA graph capture has not completed timeout seconds after it was enqueued
// (an event recorded after it, queried). The next collective then throws the watchdog's
// message. NCCL does not say which ranks did not arrive: the message says so, and the ranks'
// host collectives (the per-step stop agreement, under src/dist's own watchdog) name them.
// Collectives replayed from a CUDA graph are watched through the asynchronous error only. A
// one-rank communicator (and so the simulator's) has no watchdog. Unproven: this machine has no
// GPU; it compiles, and has never run against a stalled peer.
struct NcclWatchdog {
  using Clock = std::chrono::steady_clock;
  struct Pending {
    cudaEvent_t done = nullptr;
    Clock::time_point enqueued;
    const char* op = "";
  };
  std::mutex mutex;  // guards everything below and every use of the communicator
  std::condition_variable wake;
  std::deque<Pending> pending;
  std::vector<cudaEvent_t> spare;
  double timeout_s = 600.0;
  bool stopping = false;
  std::string failure;  // set once the communicator was aborted
  std::thread thread;
};

struct NcclCommunicator::Impl {
  ncclComm_t comm = nullptr;
  int rank = 0, size = 1;
  Device device;
  // start_all_reduce_sum's stream, and the events of its fork from the device's stream and of
  // the join back.
  cudaStream_t side = nullptr;
  cudaEvent_t forked = nullptr, joined = nullptr;
  bool started = false;  // a sum started since the last wait_started
  NcclWatchdog watch;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  // Waits for the work queued on both streams, then releases what a constructor that failed
  // half way through had made too.
  ~Impl() {
    if (watch.thread.joinable()) {
      {
        const std::lock_guard<std::mutex> lock(watch.mutex);
        watch.stopping = true;
      }
      watch.wake.notify_all();
      watch.thread.join();
    }
    if (side == nullptr) return;
    DeviceGuard guard(device.index, /*fatal=*/false);
    MLPX_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(context(device.index).stream));
    MLPX_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(side));
    for (const NcclWatchdog::Pending& p : watch.pending) cudaEventDestroy(p.done);
    for (cudaEvent_t event : watch.spare) cudaEventDestroy(event);
    if (comm != nullptr) ncclCommDestroy(comm);  // null once the watchdog aborted it
    if (joined != nullptr) MLPX_CUDA_CHECK_NOTHROW(cudaEventDestroy(joined));
    if (forked != nullptr) MLPX_CUDA_CHECK_NOTHROW(cudaEventDestroy(forked));
    MLPX_CUDA_CHECK_NOTHROW(cudaStreamDestroy(side));
  }

  // The buffer's checks, then the device's stream (made current).
  cudaStream_t stream_for(const Tensor& buffer, const char* op) const {
    MLPX_CHECK(buffer.defined() && buffer.device() == device, ShapeError, op,
               ": expected a buffer on ", device.str(), ", found ",
               buffer.defined() ? buffer.device().str() : std::string("none"));
    return stream_of(device);
  }

  // The shard bounds: size + 1 offsets from 0 to `total`, never decreasing.
  void check_bounds(const std::vector<int64_t>& bounds, int64_t total, const char* op) const {
    MLPX_CHECK(bounds.size() == static_cast<size_t>(size) + 1 && bounds.front() == 0 &&
                   bounds.back() == total,
               ShapeError, op, ": expected ", size + 1, " shard bounds from 0 to ", total,
               ", found ", bounds.size());
    for (int r = 0; r < size; ++r) {
      MLPX_CHECK(bounds[r] <= bounds[r + 1], ShapeError, op,
                 ": expected non-decreasing shard bounds, found ", bounds[r], " then ",
                 bounds[r + 1]);
    }
  }

  // Before a collective: the watchdog's message once it has aborted the communicator, else
  // its lock, held while the collective is enqueued (the watchdog never aborts it meanwhile).
  std::unique_lock<std::mutex> check_watchdog() {
    std::unique_lock<std::mutex> lock(watch.mutex);
    if (!watch.failure.empty()) throw CudaError(watch.failure);
    return lock;
  }

  // After a collective `op` enqueued on `stream` (the lock still held): an event the watchdog
  // queries. Not while the stream is captured into a CUDA graph (the event would be a node of
  // the graph).
  void watch_enqueued(const char* op, cudaStream_t stream,
                      const std::unique_lock<std::mutex>& /*held*/) {
    if (watch.timeout_s <= 0 || size == 1) return;
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    MLPX_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
    if (capture != cudaStreamCaptureStatusNone) return;
    cudaEvent_t event = nullptr;
    if (watch.spare.empty()) {
      MLPX_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    } else {
      event = watch.spare.back();
      watch.spare.pop_back();
    }
    MLPX_CUDA_CHECK(cudaEventRecord(event, stream));
    watch.pending.push_back({event, NcclWatchdog::Clock::now(), op});
  }

  // The watchdog's thread (see NcclWatchdog).
  void run_watchdog() {
    cudaSetDevice(device.index);
    std::unique_lock<std::mutex> lock(watch.mutex);
    while (!watch.stopping && watch.failure.empty()) {
      watch.wake.wait_for(lock, std::chrono::milliseconds(100));
      if (watch.stopping) break;
      ncclResult_t async = ncclSuccess;
      std::string why;
      if (ncclCommGetAsyncError(comm, &async) == ncclSuccess && async != ncclSuccess &&
          async != ncclInProgress) {
        why = std::string("NCCL reported an asynchronous error: ") + ncclGetErrorString(async);
        if (const char* last = ncclGetLastError(comm); last != nullptr && *last != '\0') {
          why += std::string(" (") + last + ")";
        }
      }
      while (why.empty() && !watch.pending.empty()) {
        const NcclWatchdog::Pending& oldest = watch.pending.front();
        if (cudaEventQuery(oldest.done) == cudaSuccess) {
          watch.spare.push_back(oldest.done);
          watch.pending.pop_front();
          continue;
        }
        const double waited =
            std::chrono::duration<double>(NcclWatchdog::Clock::now() - oldest.enqueued).count();
        if (watch.timeout_s > 0 && waited > watch.timeout_s) {
          why = ::mlpx::detail::concat(
              "NCCL ", oldest.op, " did not complete within dist.timeout_s = ", watch.timeout_s,
              " s; NCCL does not say which ranks did not arrive (the other ranks' messages, or "
              "their host collectives' watchdog, name them)");
        }
        break;
      }
      if (why.empty()) continue;
      ncclCommAbort(comm);
      comm = nullptr;
      watch.failure = ::mlpx::detail::concat(why, "; rank ", rank, " of ", size,
                                             " aborted its NCCL communicator on ", device.str());
    }
  }

  bool equal_shards(const std::vector<int64_t>& bounds) const {
    for (int r = 0; r < size; ++r) {
      if (bounds[r + 1] - bounds[r] != bounds[1]) return false;
    }
    return true;
  }
};

bool nccl_built() { return true; }

std::string nccl_version() {
  int version = 0;
  check_nccl(ncclGetVersion(&version), "ncclGetVersion");
  // NCCL_VERSION(X, Y, Z) is X * 10000 + Y * 100 + Z since 2.9.
  return std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." +
         std::to_string(version % 100);
}

NcclId nccl_unique_id() {
  ncclUniqueId id;
  check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  NcclId bytes;
  std::memcpy(bytes.data(), id.internal, kNcclIdBytes);
  return bytes;
}

NcclCommunicator::NcclCommunicator(const NcclId& id, int rank, int size, Device device)
    : impl_(std::make_unique<Impl>()) {
  MLPX_CHECK(device.is_cuda(), ValueError, "NCCL: expected a CUDA device, found ", device.str());
  MLPX_CHECK(size >= 1 && rank >= 0 && rank < size, ValueError, "NCCL: expected a rank in [0, ",
             size, "), found ", rank);
  impl_->rank = rank;
  impl_->size = size;
  impl_->device = device;
  ncclUniqueId unique;
  std::memcpy(unique.internal, id.data(), kNcclIdBytes);
  stream_of(device);  // creates the device's context and makes the device current
  DeviceGuard guard(device.index);
  MLPX_CUDA_CHECK(cudaStreamCreateWithFlags(&impl_->side, cudaStreamNonBlocking));
  MLPX_CUDA_CHECK(cudaEventCreateWithFlags(&impl_->forked, cudaEventDisableTiming));
  MLPX_CUDA_CHECK(cudaEventCreateWithFlags(&impl_->joined, cudaEventDisableTiming));
  check_nccl(ncclCommInitRank(&impl_->comm, size, unique, rank), "ncclCommInitRank");
  // One rank waits for no one: no watchdog (nor its events).
  if (size > 1) impl_->watch.thread = std::thread([impl = impl_.get()] { impl->run_watchdog(); });
}

void NcclCommunicator::set_timeout(double seconds) {
  const std::lock_guard<std::mutex> lock(impl_->watch.mutex);
  impl_->watch.timeout_s = seconds;
}

NcclCommunicator::~NcclCommunicator() = default;

int NcclCommunicator::rank() const { return impl_->rank; }
int NcclCommunicator::size() const { return impl_->size; }
Device NcclCommunicator::device() const { return impl_->device; }

void NcclCommunicator::all_reduce_sum(Tensor& buffer) {
  const ncclDataType_t type = nccl_type(buffer, "all_reduce_sum");
  cudaStream_t stream = impl_->stream_for(buffer, "all_reduce_sum");
  const std::unique_lock<std::mutex> lock = impl_->check_watchdog();
  check_nccl(ncclAllReduce(buffer.raw_data(), buffer.raw_data(), buffer.numel(), type, ncclSum,
                           impl_->comm, stream),
             "ncclAllReduce", impl_->comm);
  impl_->watch_enqueued("all_reduce_sum", stream, lock);
}

void NcclCommunicator::start_all_reduce_sum(Tensor& buffer) {
  const ncclDataType_t type = nccl_type(buffer, "start_all_reduce_sum");
  cudaStream_t stream = impl_->stream_for(buffer, "start_all_reduce_sum");
  MLPX_CUDA_CHECK(cudaEventRecord(impl_->forked, stream));
  MLPX_CUDA_CHECK(cudaStreamWaitEvent(impl_->side, impl_->forked, 0));
  const std::unique_lock<std::mutex> lock = impl_->check_watchdog();
  check_nccl(ncclAllReduce(buffer.raw_data(), buffer.raw_data(), buffer.numel(), type, ncclSum,
                           impl_->comm, impl_->side),
             "ncclAllReduce", impl_->comm);
  impl_->watch_enqueued("all_reduce_sum (overlapped)", impl_->side, lock);
  impl_->started = true;
}

void NcclCommunicator::wait_started() {
  if (!impl_->started) return;
  cudaStream_t stream = stream_of(impl_->device);
  MLPX_CUDA_CHECK(cudaEventRecord(impl_->joined, impl_->side));
  MLPX_CUDA_CHECK(cudaStreamWaitEvent(stream, impl_->joined, 0));
  impl_->started = false;
}

void NcclCommunicator::reduce_scatter_sum(const Tensor& full, Tensor& shard,
                                          const std::vector<int64_t>& bounds) {
  const ncclDataType_t type = nccl_type(full, "reduce_scatter_sum");
  cudaStream_t stream = impl_->stream_for(full, "reduce_scatter_sum");
  impl_->stream_for(shard, "reduce_scatter_sum");
  impl_->check_bounds(bounds, full.numel(), "reduce_scatter_sum");
  const int me = impl_->rank;
  MLPX_CHECK(shard.dtype() == full.dtype() && shard.numel() == bounds[me + 1] - bounds[me],
             ShapeError, "reduce_scatter_sum: expected a ", dtype_name(full.dtype()), " shard of ",
             bounds[me + 1] - bounds[me], " elements, found ", shard.describe());
  const std::unique_lock<std::mutex> lock = impl_->check_watchdog();
  if (impl_->equal_shards(bounds)) {
    check_nccl(ncclReduceScatter(full.raw_data(), shard.raw_data(), shard.numel(), type, ncclSum,
                                 impl_->comm, stream),
               "ncclReduceScatter", impl_->comm);
    impl_->watch_enqueued("reduce_scatter_sum", stream, lock);
    return;
  }
  // NCCL's reduce-scatter takes equal counts; ours differ by one. One reduce per shard, each
  // to its owner, grouped so that NCCL runs them as one operation.
  check_nccl(ncclGroupStart(), "ncclGroupStart");
  for (int r = 0; r < impl_->size; ++r) {
    // Only the root's receive buffer is written; the others pass their own send buffer.
    void* receive = r == me ? shard.raw_data() : element(full, bounds[r]);
    check_nccl(ncclReduce(element(full, bounds[r]), receive, bounds[r + 1] - bounds[r], type,
                          ncclSum, r, impl_->comm, stream),
               "ncclReduce", impl_->comm);
  }
  check_nccl(ncclGroupEnd(), "ncclGroupEnd", impl_->comm);
  impl_->watch_enqueued("reduce_scatter_sum", stream, lock);
}

void NcclCommunicator::all_gather_shards(Tensor& full, const std::vector<int64_t>& bounds) {
  const ncclDataType_t type = nccl_type(full, "all_gather_shards");
  cudaStream_t stream = impl_->stream_for(full, "all_gather_shards");
  impl_->check_bounds(bounds, full.numel(), "all_gather_shards");
  const int me = impl_->rank;
  const std::unique_lock<std::mutex> lock = impl_->check_watchdog();
  if (impl_->equal_shards(bounds)) {
    // In place: this rank's send buffer is its own shard of the receive buffer.
    check_nccl(ncclAllGather(element(full, bounds[me]), full.raw_data(), bounds[1], type,
                             impl_->comm, stream),
               "ncclAllGather", impl_->comm);
    impl_->watch_enqueued("all_gather_shards", stream, lock);
    return;
  }
  check_nccl(ncclGroupStart(), "ncclGroupStart");
  for (int r = 0; r < impl_->size; ++r) {
    check_nccl(ncclBroadcast(element(full, bounds[r]), element(full, bounds[r]),
                             bounds[r + 1] - bounds[r], type, r, impl_->comm, stream),
               "ncclBroadcast", impl_->comm);
  }
  check_nccl(ncclGroupEnd(), "ncclGroupEnd", impl_->comm);
  impl_->watch_enqueued("all_gather_shards", stream, lock);
}

}  // namespace mlpx::cuda
