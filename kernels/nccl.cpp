#include "kernels/nccl.h"

#include <nccl.h>

#include <cstring>
#include <string>

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

struct NcclCommunicator::Impl {
  ncclComm_t comm = nullptr;
  int rank = 0, size = 1;
  Device device;
  // start_all_reduce_sum's stream, and the events of its fork from the device's stream and of
  // the join back.
  cudaStream_t side = nullptr;
  cudaEvent_t forked = nullptr, joined = nullptr;
  bool started = false;  // a sum started since the last wait_started

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  // Waits for the work queued on both streams, then releases what a constructor that failed
  // half way through had made too.
  ~Impl() {
    if (side == nullptr) return;
    DeviceGuard guard(device.index, /*fatal=*/false);
    MLPX_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(context(device.index).stream));
    MLPX_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(side));
    if (comm != nullptr) ncclCommDestroy(comm);
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
}

NcclCommunicator::~NcclCommunicator() = default;

int NcclCommunicator::rank() const { return impl_->rank; }
int NcclCommunicator::size() const { return impl_->size; }
Device NcclCommunicator::device() const { return impl_->device; }

void NcclCommunicator::all_reduce_sum(Tensor& buffer) {
  const ncclDataType_t type = nccl_type(buffer, "all_reduce_sum");
  cudaStream_t stream = impl_->stream_for(buffer, "all_reduce_sum");
  check_nccl(ncclAllReduce(buffer.raw_data(), buffer.raw_data(), buffer.numel(), type, ncclSum,
                           impl_->comm, stream),
             "ncclAllReduce", impl_->comm);
}

void NcclCommunicator::start_all_reduce_sum(Tensor& buffer) {
  const ncclDataType_t type = nccl_type(buffer, "start_all_reduce_sum");
  cudaStream_t stream = impl_->stream_for(buffer, "start_all_reduce_sum");
  MLPX_CUDA_CHECK(cudaEventRecord(impl_->forked, stream));
  MLPX_CUDA_CHECK(cudaStreamWaitEvent(impl_->side, impl_->forked, 0));
  check_nccl(ncclAllReduce(buffer.raw_data(), buffer.raw_data(), buffer.numel(), type, ncclSum,
                           impl_->comm, impl_->side),
             "ncclAllReduce", impl_->comm);
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
  if (impl_->equal_shards(bounds)) {
    check_nccl(ncclReduceScatter(full.raw_data(), shard.raw_data(), shard.numel(), type, ncclSum,
                                 impl_->comm, stream),
               "ncclReduceScatter", impl_->comm);
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
}

void NcclCommunicator::all_gather_shards(Tensor& full, const std::vector<int64_t>& bounds) {
  const ncclDataType_t type = nccl_type(full, "all_gather_shards");
  cudaStream_t stream = impl_->stream_for(full, "all_gather_shards");
  impl_->check_bounds(bounds, full.numel(), "all_gather_shards");
  const int me = impl_->rank;
  if (impl_->equal_shards(bounds)) {
    // In place: this rank's send buffer is its own shard of the receive buffer.
    check_nccl(ncclAllGather(element(full, bounds[me]), full.raw_data(), bounds[1], type,
                             impl_->comm, stream),
               "ncclAllGather", impl_->comm);
    return;
  }
  check_nccl(ncclGroupStart(), "ncclGroupStart");
  for (int r = 0; r < impl_->size; ++r) {
    check_nccl(ncclBroadcast(element(full, bounds[r]), element(full, bounds[r]),
                             bounds[r + 1] - bounds[r], type, r, impl_->comm, stream),
               "ncclBroadcast", impl_->comm);
  }
  check_nccl(ncclGroupEnd(), "ncclGroupEnd", impl_->comm);
}

}  // namespace mlpx::cuda
