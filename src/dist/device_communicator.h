// Collectives on the buffers of one GPU, enqueued on the device's stream (the one every mlpx
// launch uses), so that a data-parallel step that calls them never waits on the host and can be
// captured whole in a CUDA graph: NCCL (kernels/nccl.h). The ranks are a Communicator's: its
// host collectives carry NCCL's start-up id, then every gradient goes device to device.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "dist/communicator.h"
#include "mlpx/device.h"
#include "mlpx/tensor.h"

namespace mlpx::cuda {
class NcclCommunicator;
}

namespace mlpx::dist {

class DeviceCommunicator {
 public:
  // Collective over `ranks` (every rank calls it, each with its own CUDA device): rank 0 makes
  // NCCL's id and broadcasts it through `ranks`, then every rank joins. One rank alone (a
  // SingleRank) forms a communicator of one. CudaError without NCCL in the build.
  DeviceCommunicator(Communicator& ranks, Device device);
  ~DeviceCommunicator();
  DeviceCommunicator(const DeviceCommunicator&) = delete;
  DeviceCommunicator& operator=(const DeviceCommunicator&) = delete;

  int rank() const;
  int size() const;
  Device device() const;

  // As Communicator's collectives of the same names (the same shards: shard_of), on float32 or
  // float64 buffers on device(), enqueued on its stream: nothing waits.
  void all_reduce_sum(Tensor& buffer);
  void reduce_scatter_sum(const Tensor& full, Tensor& shard);
  void all_gather_shards(Tensor& full);
  // The all-reduce overlapped with later work on the device's stream: started on a stream of
  // the communicator's own, and waited for by the device's stream at wait_started(). Nothing
  // enqueued in between may touch a started buffer.
  void start_all_reduce_sum(Tensor& buffer);
  void wait_started();

 private:
  std::vector<int64_t> shard_bounds(int64_t total) const;

  std::unique_ptr<cuda::NcclCommunicator> nccl_;
};

// A run of a flat gradient buffer all-reduced by one call, elements [first, first + count),
// started as soon as layer `after_layer`'s backward is enqueued.
struct GradientBucket {
  size_t after_layer = 0;
  int64_t first = 0, count = 0;
};
// The buckets of a model whose layer i's gradients are elements [layer_first[i],
// layer_first[i + 1]) of the flat buffer (layer_first: layers + 1 offsets, the total last), in
// the order the backward pass completes them: last layer first. Each bucket gathers whole
// layers until it holds at least `bucket_bytes` (elements of `element_bytes`), the last one
// what is left at layer 0; bucket_bytes 0 is one bucket of everything. They tile the buffer.
std::vector<GradientBucket> gradient_buckets(const std::vector<int64_t>& layer_first,
                                             int64_t element_bytes, double bucket_bytes);

// Whether this build has NCCL (kernels/nccl.cpp; the simulator build's answers one rank).
bool built_with_nccl();

}  // namespace mlpx::dist
