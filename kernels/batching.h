// Launchers of the shuffling and gathering kernels (kernels/batching.cu). Internal.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mlpx/device.h"

namespace mlpx::cuda {
// Bytes of device memory random_permutation's workspace needs for n rows: the keys, the
// sorted keys, the rows in order and CUB's temporary storage.
size_t permutation_workspace_bytes(int64_t n);
// out[0..n) on the device = the permutation of mlpx/math/batching.h: a Philox key per row and a
// stable radix sort (CUB) of (key, row) in `workspace` (permutation_workspace_bytes(n) bytes of
// device memory). Allocates nothing and waits for nothing: capturable in a graph.
void random_permutation(int32_t* out, int64_t n, uint64_t seed, uint64_t random_stream,
                        void* workspace, size_t workspace_bytes, Device device);
// The same with a workspace of its own (allocated and freed in the stream's order).
void random_permutation(int32_t* out, int64_t n, uint64_t seed, uint64_t random_stream,
                        Device device);
void identity_indices(int32_t* out, int64_t n, Device device);
// dst[i, :] = src[indices[i], :], rows of `width` elements of T (float or int32).
template <typename T>
void gather_rows(const T* src, const int32_t* indices, T* dst, int64_t rows, int64_t width,
                 Device device);
// dst[i, :] = src[order[*position * stride + i], :] for i < rows: the batch at a position
// held on the device (read by the kernel, so a replayed graph gathers the next batch).
template <typename T>
void gather_batch(const T* src, const int32_t* order, const int32_t* position, int64_t stride,
                  T* dst, int64_t rows, int64_t width, Device device);
// batch_losses[*position] = *loss; *loss = 0; *position += 1; and *run_step += 1 unless
// run_step is null (one thread).
void commit_batch_loss(float* loss, float* batch_losses, int32_t* position, int32_t* run_step,
                       Device device);
// accumulate_sum(row_loss, n, loss, scale) (kernels/loss.h: the same double sum in the same
// order, so the same bits) then commit_batch_loss, in one launch of one block.
void sum_and_commit_batch_loss(const float* row_loss, int64_t n, double scale, float* loss,
                               float* batch_losses, int32_t* position, int32_t* run_step,
                               Device device);
}  // namespace mlpx::cuda
