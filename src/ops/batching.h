// Mini-batches: a shuffled order of the rows per epoch, and the gather that copies a batch's
// rows together. On the GPU both run on the device, so the data set never leaves it.
// Internal: the trainer's step plumbing.
#pragma once

#include <cstdint>

#include "mlpx/tensor.h"

namespace mlpx {

// int32 [n] on `device`: a permutation of [0, n) that depends only on (seed, stream), the
// same on every backend (see src/math/batching.h). Epoch e shuffles with stream
// math::kStreamShuffle + e.
Tensor random_permutation(int64_t n, uint64_t seed, uint64_t stream, Device device);

// The same permutation into `out` (int32 [n]), drawn with `workspace`
// (permutation_workspace(n, out's device), kept between draws): on the GPU no allocation and
// no host wait, so that a trainer shuffles every epoch without either.
Tensor permutation_workspace(int64_t n, Device device);  // int32 [bytes / 4]; empty on the CPU
void random_permutation_into(Tensor& out, Tensor& workspace, uint64_t seed, uint64_t stream);

// int32 [n] on `device`: 0, 1, ..., n-1.
Tensor identity_indices(int64_t n, Device device);

// dst[i] = src[indices[i]] row by row. src: [N, D] or [N] (float32, float64 or int32);
// indices: int32 [B], values in [0, N) (checked on the CPU; on the GPU the caller must
// guarantee it, as random_permutation does); dst: [B, D] or [B], src's dtype; one device.
void gather_rows(const Tensor& src, const Tensor& indices, Tensor& dst);

// The batch at a position that lives on the device, so that one captured training step
// (a CUDA graph) gathers a different batch on every replay: dst[i] = src[order[position[0] *
// stride + i]] for i < dst.rows(). src: [N, D] or [N] (float32, float64 or int32); order:
// int32 [M] rows of src; position: int32 [1], read when the gather runs; dst: src's dtype,
// one device. The CPU checks the ranges; on the GPU the caller guarantees them.
void gather_batch(const Tensor& src, const Tensor& order, const Tensor& position, int64_t stride,
                  Tensor& dst);

// The end of a training step whose position lives on the device:
// batch_losses[position[0]] = loss[0]; loss[0] = 0; position[0] += 1; and run_step[0] += 1 when
// given (the run's step counter on the device, which dropout's masks read).
// loss: [1]; batch_losses: [M], loss's dtype; position, run_step: int32 [1]; one device.
void commit_batch_loss(Tensor& loss, Tensor& batch_losses, Tensor& position,
                       Tensor* run_step = nullptr);

// accumulate_sum(row_loss, loss, scale) (mlpx/loss.h) then commit_batch_loss(loss, ...): one
// kernel on a GPU, the same sum in the same order, the same bits. row_loss: [N], loss's dtype
// and device.
void sum_and_commit_batch_loss(const Tensor& row_loss, double scale, Tensor& loss,
                               Tensor& batch_losses, Tensor& position, Tensor* run_step = nullptr);

}  // namespace mlpx
