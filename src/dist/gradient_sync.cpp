#include "dist/gradient_sync.h"

#include <algorithm>

#include "mlpx/error.h"

namespace mlpx::dist {

namespace {

// Whether the gradients go through NCCL on the model's GPU (train.collectives).
bool uses_nccl(const TrainConfig& train, Device device, const Communicator* ranks) {
  switch (train.collectives) {
    case Collectives::kNccl:
      MLPX_CHECK(device.is_cuda(), ValueError,
                 "training: train.collectives \"nccl\" expects a model on a CUDA device, found "
                 "it on ",
                 device.str());
      return true;
    case Collectives::kHost:
      return false;
    case Collectives::kAuto:
      break;
  }
  return device.is_cuda() && ranks != nullptr && ranks->size() > 1 && built_with_nccl();
}

}  // namespace

Shard optimizer_shard(const TrainConfig& train, int64_t num_params, const Communicator* ranks) {
  if (!train.shard_optimizer || ranks == nullptr || ranks->size() == 1) return {0, num_params};
  return shard_of(num_params, ranks->rank(), ranks->size());
}

GradientSync::GradientSync(const TrainConfig& train, Communicator* ranks, Device device,
                           DType dtype, const std::vector<int64_t>& layer_first, int64_t batch_size)
    : ranks_(ranks),
      shard_optimizer_(train.shard_optimizer),
      batch_size_(batch_size),
      local_capacity_(batch_size) {
  const int64_t num_params = layer_first.back();
  const Shard shard = dist::optimizer_shard(train, num_params, ranks);
  shard_first_ = shard.first;
  shard_count_ = shard.count;
  if (uses_nccl(train, device, ranks_)) {
    device_ranks_ =
        std::make_unique<DeviceCommunicator>(ranks_ != nullptr ? *ranks_ : single_rank(), device);
    buckets_ = gradient_buckets(layer_first, static_cast<int64_t>(dtype_size(dtype)),
                                train.bucket_mb * 1e6);
  }
  // Host copies for MPI, where NCCL does not carry a CUDA model's buffers.
  const bool host_copies = device.is_cuda() && !device_ranks_;
  if (data_parallel()) {
    const int64_t n_ranks = ranks_->size();
    MLPX_CHECK(batch_size_ >= n_ranks, ValueError, "training: expected a batch of at least ",
               n_ranks, " rows (one per rank), found train.batch_size ", batch_size_);
    MLPX_CHECK(dtype == DType::kFloat32 || dtype == DType::kFloat64, ShapeError,
               "training: expected a float model for the all-reduce, found ", dtype_name(dtype));
    // No rank's share of a batch exceeds ceil(b / N) <= ceil(B / N).
    local_capacity_ = (batch_size_ + n_ranks - 1) / n_ranks;
    if (host_copies) host_grads_ = Tensor({num_params}, dtype);
  }
  if (sharded()) {
    MLPX_CHECK(train.on_nonfinite == NonFinitePolicy::kStop, ValueError,
               "training: train.shard_optimizer expects train.on_nonfinite 'stop', found 'skip'");
    MLPX_CHECK(shard_count_ > 0, ValueError,
               "training: expected at least one parameter per rank "
               "to shard the optimizer, found ",
               num_params, " for ", ranks_->size(), " ranks");
    grad_shard_ = Tensor({shard_count_}, dtype, device);
    if (host_copies) {
      host_grad_shard_ = Tensor({shard_count_}, dtype);
      host_params_ = Tensor({num_params}, dtype);
    }
  }
}

GradientSync::~GradientSync() = default;

bool GradientSync::data_parallel() const { return ranks_ != nullptr && ranks_->size() > 1; }

bool GradientSync::sharded() const {
  return shard_optimizer_ && (data_parallel() || device_ranks_ != nullptr);
}

Shard GradientSync::share_of(int64_t rows) const {
  if (!data_parallel()) return {0, rows};
  return shard_of(rows, ranks_->rank(), ranks_->size());
}

Tensor GradientSync::local_order(const Tensor& global) const {
  if (!data_parallel()) return global;
  // Every rank drew the same global order; this rank keeps its share of each batch, back to
  // back, so that batch p starts at p times its full-batch share, as gather_batch reads.
  const int64_t n = global.numel();
  const std::vector<int32_t> all = global.to_vector<int32_t>();
  std::vector<int32_t> local;
  local.reserve(static_cast<size_t>(((n + batch_size_ - 1) / batch_size_) * local_capacity_));
  for (int64_t first = 0; first < n; first += batch_size_) {
    const Shard share = share_of(std::min(batch_size_, n - first));
    local.insert(local.end(), all.begin() + first + share.first,
                 all.begin() + first + share.first + share.count);
  }
  return Tensor::from_vector(local, {static_cast<int64_t>(local.size())}).to(global.device());
}

std::function<void(size_t layer)> GradientSync::after_layer(Tensor& grads) {
  // NCCL on several buckets: each bucket's all-reduce starts as soon as its layers' backward is
  // enqueued, and sum_gradients() waits for them after the whole backward.
  if (device_ranks_ == nullptr || sharded() || buckets_.size() <= 1) return nullptr;
  started_ = true;
  return [this, &grads](size_t layer) {
    for (const GradientBucket& bucket : buckets_) {
      if (bucket.after_layer != layer) continue;
      Tensor part = grads.flat_view(bucket.first, {bucket.count});
      device_ranks_->start_all_reduce_sum(part);
    }
  };
}

void GradientSync::sum_gradients(Tensor& grads) {
  if (started_) {
    device_ranks_->wait_started();
    started_ = false;
    return;
  }
  if (device_ranks_) {
    device_ranks_->all_reduce_sum(grads);
    return;
  }
  if (!data_parallel()) return;
  if (!grads.device().is_cuda()) {
    ranks_->all_reduce_sum(grads);
    return;
  }
  host_grads_.copy_from(grads);  // waits for the backward pass
  ranks_->all_reduce_sum(host_grads_);
  grads.copy_from(host_grads_);
}

void GradientSync::sum_statistics(Tensor& buffer) {
  if (device_ranks_) {
    device_ranks_->all_reduce_sum(buffer);
  } else if (data_parallel()) {
    if (!buffer.device().is_cuda()) {
      ranks_->all_reduce_sum(buffer);
      return;
    }
    Tensor host = buffer.to(Device::cpu());  // waits for the device
    ranks_->all_reduce_sum(host);
    buffer.copy_from(host);
  }
}

// ZeRO stage 1: by NCCL on the device, else by MPI (a CUDA model's buffers through host copies).
void GradientSync::sharded_update(
    Tensor& params, const Tensor& grads,
    const std::function<void(Tensor& params_shard, const Tensor& grad_shard)>& update) {
  Tensor params_shard = params.flat_view(shard_first_, {shard_count_});
  if (device_ranks_) {
    device_ranks_->reduce_scatter_sum(grads, grad_shard_);
    update(params_shard, grad_shard_);
    device_ranks_->all_gather_shards(params);
    return;
  }
  const bool cuda = params.device().is_cuda();
  if (cuda) {
    host_grads_.copy_from(grads);
    ranks_->reduce_scatter_sum(host_grads_, host_grad_shard_);
    grad_shard_.copy_from(host_grad_shard_);
  } else {
    ranks_->reduce_scatter_sum(grads, grad_shard_);
  }
  update(params_shard, grad_shard_);
  if (cuda) {
    host_params_.copy_from(params);
    ranks_->all_gather_shards(host_params_);
    params.copy_from(host_params_);
  } else {
    ranks_->all_gather_shards(params);
  }
}

std::vector<std::pair<std::string, Tensor>> GradientSync::whole_state(
    const std::vector<std::pair<std::string, Tensor>>& state, int64_t num_params) {
  // One rank's one shard is the whole state.
  if (!sharded() || shard_count_ == num_params) return state;
  std::vector<std::pair<std::string, Tensor>> whole;
  for (const auto& [name, shard] : state) {
    Tensor full = Tensor::zeros({num_params}, shard.dtype());
    Tensor mine = full.flat_view(shard_first_, {shard_count_});
    mine.copy_from(shard);
    ranks_->all_gather_shards(full);
    whole.emplace_back(name, full);
  }
  return whole;
}

Tensor GradientSync::state_part(const Tensor& whole) const {
  return sharded() ? whole.flat_view(shard_first_, {shard_count_}) : whole;
}

void GradientSync::sum_epoch(std::vector<double>& batch_losses, double& correct) {
  if (!data_parallel()) return;
  // Each slot holds this rank's share of its batch's mean: their sum is the batch's mean.
  Tensor shares = Tensor::from_vector(batch_losses, {static_cast<int64_t>(batch_losses.size())});
  ranks_->all_reduce_sum(shares);
  batch_losses = shares.to_vector<double>();
  correct = ranks_->all_reduce_sum(correct);
}

}  // namespace mlpx::dist
