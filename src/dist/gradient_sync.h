// Everything a training step does across the ranks of a data-parallel job, decided once and kept
// beside the step: the trainer calls it at fixed points and knows nothing of ranks, MPI or NCCL.
// The choice (train.collectives, the device, the ranks):
//   - one rank alone (no communicator, or one of size 1): nothing to sum; every call below is a
//     no-op, except that a one-rank NCCL communicator still runs (train.collectives "nccl"), so
//     that the NCCL path can be tested on one GPU;
//   - NCCL on the model's GPU (dist::DeviceCommunicator): enqueued on the device's stream, so the
//     step stays one CUDA graph; the all-reduce goes in buckets of whole layers, each started as
//     soon as the backward pass has enqueued its layers (train.bucket_mb);
//   - MPI (dist::Communicator): on a CPU model's buffers directly, on a GPU model's through host
//     copies (the step then waits for the device and is not captured).
// With train.shard_optimizer (ZeRO stage 1) the summed gradients arrive as this rank's shard
// only, the optimizer updates that shard of the parameters, and the shards are gathered into
// every rank's parameters. Internal (src/train/trainer.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.h"
#include "dist/device_communicator.h"
#include "mlpx/config.h"
#include "mlpx/device.h"
#include "mlpx/tensor.h"

namespace mlpx::dist {

// The part of a model's flat parameters [0, num_params) whose optimizer state this rank keeps:
// its shard with train.shard_optimizer on N > 1 ranks (shard_of), else all of them. Known before
// any GradientSync exists, so that the optimizer can be built first.
Shard optimizer_shard(const TrainConfig& train, int64_t num_params, const Communicator* ranks);

class GradientSync {
 public:
  // The gradients of a model on `device` (its parameters float32 or float64 `dtype`, layer i's
  // gradients elements [layer_first[i], layer_first[i + 1]) of the flat buffer: layers + 1
  // offsets, the total last), trained in global batches of `batch_size` rows over `ranks`
  // (nullptr: alone; it must outlive this object). A collective when it starts NCCL: every rank
  // builds its GradientSync at the same point. ValueError for train.collectives "nccl" off a
  // GPU, a batch smaller than the ranks, train.shard_optimizer with on_nonfinite "skip", or
  // fewer parameters than ranks to shard; ShapeError for an integer model on several ranks.
  GradientSync(const TrainConfig& train, Communicator* ranks, Device device, DType dtype,
               const std::vector<int64_t>& layer_first, int64_t batch_size);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // N > 1 ranks share every batch.
  bool data_parallel() const;
  // The gradients are summed by NCCL on the model's GPU.
  bool on_device() const { return device_ranks_ != nullptr; }
  // The optimizer state is sharded over the ranks (see optimizer_shard()).
  bool sharded() const;
  // Whether a CUDA graph may capture the step: MPI's collectives are host calls, NCCL's run on
  // the device's stream.
  bool allows_capture() const { return !data_parallel() || on_device(); }
  // This rank's part of the flat parameters whose optimizer state it keeps.
  Shard optimizer_shard() const { return {shard_first_, shard_count_}; }
  // The most rows this rank runs in one step: ceil(batch / N).
  int64_t local_capacity() const { return local_capacity_; }
  // This rank's rows of a batch of `rows` rows: [floor(rows r / N), floor(rows (r + 1) / N));
  // all of them alone.
  Shard share_of(int64_t rows) const;

  // The epoch's shuffle `global` (int32 [n], every rank the same) cut into this rank's rows of
  // every batch of `batch_size` rows, back to back, on `global`'s device; `global` itself alone.
  Tensor local_order(const Tensor& global) const;

  // The hook to hand the backward pass (Sequential::backward's after_layer): with NCCL buckets,
  // starts each bucket's all-reduce of `grads` as soon as its layers are done; empty otherwise.
  // `grads` must outlive the step.
  std::function<void(size_t layer)> after_layer(Tensor& grads);
  // After the backward pass: `grads` <- their sum over the ranks (the buckets started by
  // after_layer() joined back into the device's stream). Nothing alone without NCCL.
  void sum_gradients(Tensor& grads);
  // `buffer` (a few statistics: synchronised batch norms') <- its sum over the ranks, by the
  // collective that sums the gradients; nothing alone. Every rank calls it at the same point.
  void sum_statistics(Tensor& buffer);
  // Sharded step: `update(params_shard, grad_shard)` runs the optimizer on this rank's shard of
  // `params` with its shard of the summed `grads`, then every rank's shard is gathered into
  // every rank's `params`.
  void sharded_update(
      Tensor& params, const Tensor& grads,
      const std::function<void(Tensor& params_shard, const Tensor& grad_shard)>& update);

  // The optimizer's state, flat buffers by name as this rank keeps them, made whole ([num_params]
  // each): sharded, the ranks' shards gathered (a collective; the buffers are then on the CPU),
  // else `state` itself.
  std::vector<std::pair<std::string, Tensor>> whole_state(
      const std::vector<std::pair<std::string, Tensor>>& state, int64_t num_params);
  // This rank's part of a whole optimizer-state buffer: its shard when sharded, else `whole`.
  Tensor state_part(const Tensor& whole) const;

  // The epoch's read-back summed over the ranks: each slot of `batch_losses` holds this rank's
  // share of its batch's mean, `correct` its count of correct rows. Nothing alone.
  void sum_epoch(std::vector<double>& batch_losses, double& correct);

 private:
  Communicator* ranks_;
  std::unique_ptr<DeviceCommunicator> device_ranks_;  // NCCL (train.collectives)
  std::vector<GradientBucket> buckets_;               // with NCCL, last layer's first
  bool shard_optimizer_;
  int64_t shard_first_ = 0, shard_count_ = 0;
  int64_t batch_size_;
  int64_t local_capacity_;
  bool started_ = false;  // this step's buckets were started by after_layer()
  // A GPU model's buffers on the host for MPI: the gradients, and with train.shard_optimizer
  // this rank's reduced gradient shard and the parameters; on the model's device, that shard.
  Tensor host_grads_, host_grad_shard_, host_params_, grad_shard_;
};

}  // namespace mlpx::dist
