// NCCL, the CUDA toolkit's collective library, on device buffers: the data-parallel
// collectives of ranks whose model lives on a GPU (src/dist wraps them in its
// DeviceCommunicator). Every call is enqueued on the device's stream, the one every mlpx launch
// uses: it runs in order with the step's kernels, never waits on the host, and can be captured
// in the step's CUDA graph. No CUDA or NCCL type appears here, so src/dist includes it in every
// build; without NCCL (a CPU-only build, or a CUDA build that found no NCCL) kernels/nccl_stub.cpp
// stands in and throws. Internal.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mlpx/device.h"
#include "mlpx/tensor.h"

namespace mlpx::cuda {

// NCCL_UNIQUE_ID_BYTES: the opaque id one rank makes and every rank joins with.
inline constexpr size_t kNcclIdBytes = 128;
using NcclId = std::array<char, kNcclIdBytes>;

// Whether kernels/nccl.cpp (not the stub) is linked in.
bool nccl_built();
// The NCCL linked in, "2.28.9" (ncclGetVersion); the stub throws.
std::string nccl_version();
// A new communicator id (ncclGetUniqueId). One rank makes it and sends it to the others.
NcclId nccl_unique_id();

class NcclCommunicator {
 public:
  // Joins communicator `id` as rank `rank` of `size`, on `device` (ncclCommInitRank): every
  // rank of the job calls it with the same id, each with its own GPU. Blocks until all have.
  NcclCommunicator(const NcclId& id, int rank, int size, Device device);
  ~NcclCommunicator();  // waits for the work queued on the device, then destroys the communicator
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const;
  int size() const;
  Device device() const;
  // The watchdog's limit (dist.timeout_s; 600 until set, 0: none): kernels/nccl.cpp says what
  // it watches. Once it fires, every collective throws CudaError with its message.
  void set_timeout(double seconds);

  // buffer (float32/float64, on device(), contiguous) <- the elementwise sum over the ranks,
  // in place.
  void all_reduce_sum(Tensor& buffer);
  // The same sum, overlapped: enqueued on the communicator's own stream after the work queued
  // so far on the device's stream, which goes on meanwhile (the fork of a CUDA graph, when
  // captured). Nothing queued later on the device's stream may touch `buffer` before
  // wait_started(), which makes the device's stream wait for every sum started so far.
  void start_all_reduce_sum(Tensor& buffer);
  void wait_started();
  // The flat buffers of M elements are cut into one contiguous shard per rank: rank r's is
  // elements [bounds[r], bounds[r + 1]) (bounds: size() + 1 offsets, 0 first and M last).
  // reduce_scatter_sum: shard (this rank's shard's count) <- this rank's shard of the sum over
  // the ranks of `full`. all_gather_shards: full <- every rank's shard of its own `full`, in
  // place. Equal shards use ncclReduceScatter / ncclAllGather; unequal ones (M not a multiple of
  // the ranks) a group of one ncclReduce / ncclBroadcast per shard.
  void reduce_scatter_sum(const Tensor& full, Tensor& shard, const std::vector<int64_t>& bounds);
  void all_gather_shards(Tensor& full, const std::vector<int64_t>& bounds);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlpx::cuda
