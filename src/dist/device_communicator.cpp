#include "dist/device_communicator.h"

#include <cstring>

#include "kernels/nccl.h"
#include "mlpx/error.h"

namespace mlpx::dist {

namespace {

// NCCL's id travels as int32 elements, a dtype every Communicator can broadcast.
static_assert(cuda::kNcclIdBytes % sizeof(int32_t) == 0);

cuda::NcclId shared_id(Communicator& ranks) {
  Tensor carrier =
      Tensor::zeros({static_cast<int64_t>(cuda::kNcclIdBytes / sizeof(int32_t))}, DType::kInt32);
  if (ranks.rank() == 0) {
    const cuda::NcclId id = cuda::nccl_unique_id();
    std::memcpy(carrier.raw_data(), id.data(), cuda::kNcclIdBytes);
  }
  ranks.broadcast(carrier, 0);
  cuda::NcclId id;
  std::memcpy(id.data(), carrier.raw_data(), cuda::kNcclIdBytes);
  return id;
}

}  // namespace

DeviceCommunicator::DeviceCommunicator(Communicator& ranks, Device device) {
  MLPX_CHECK(device.is_cuda(), ValueError,
             "NCCL collectives: expected the model on a CUDA device, found it on ", device.str());
  // Every rank runs the same build, so all of them stop here alike, before any waits on another.
  MLPX_CHECK(cuda::nccl_built(), CudaError,
             "NCCL collectives: expected a build with NCCL, found one without it (configure with "
             "the CUDA toolkit's NCCL, or set train.collectives \"host\")");
  nccl_ = std::make_unique<cuda::NcclCommunicator>(shared_id(ranks), ranks.rank(), ranks.size(),
                                                   device);
  nccl_->set_timeout(ranks.timeout());
}

DeviceCommunicator::~DeviceCommunicator() = default;

int DeviceCommunicator::rank() const { return nccl_->rank(); }
int DeviceCommunicator::size() const { return nccl_->size(); }
Device DeviceCommunicator::device() const { return nccl_->device(); }

std::vector<int64_t> DeviceCommunicator::shard_bounds(int64_t total) const {
  std::vector<int64_t> bounds;
  for (int r = 0; r < size(); ++r) bounds.push_back(shard_of(total, r, size()).first);
  bounds.push_back(total);
  return bounds;
}

void DeviceCommunicator::all_reduce_sum(Tensor& buffer) { nccl_->all_reduce_sum(buffer); }

void DeviceCommunicator::reduce_scatter_sum(const Tensor& full, Tensor& shard) {
  nccl_->reduce_scatter_sum(full, shard, shard_bounds(full.numel()));
}

void DeviceCommunicator::all_gather_shards(Tensor& full) {
  nccl_->all_gather_shards(full, shard_bounds(full.numel()));
}

void DeviceCommunicator::start_all_reduce_sum(Tensor& buffer) {
  nccl_->start_all_reduce_sum(buffer);
}

void DeviceCommunicator::wait_started() { nccl_->wait_started(); }

std::vector<GradientBucket> gradient_buckets(const std::vector<int64_t>& layer_first,
                                             int64_t element_bytes, double bucket_bytes) {
  MLPX_CHECK(layer_first.size() >= 2, ValueError,
             "gradient buckets: expected the offsets of at least one layer, found ",
             layer_first.size(), " offsets");
  std::vector<GradientBucket> buckets;
  int64_t end = layer_first.back();
  for (size_t i = layer_first.size() - 1; i-- > 0;) {
    const double bytes = static_cast<double>((end - layer_first[i]) * element_bytes);
    if (i == 0 || (bucket_bytes > 0 && bytes >= bucket_bytes)) {
      buckets.push_back({i, layer_first[i], end - layer_first[i]});
      end = layer_first[i];
    }
  }
  return buckets;
}

bool built_with_nccl() { return cuda::nccl_built(); }

}  // namespace mlpx::dist
