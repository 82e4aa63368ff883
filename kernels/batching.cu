#include <cub/device/device_radix_sort.cuh>

#include "core/backend.h"
#include "kernels/batching.h"
#include "kernels/check.h"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"
#include "math/batching.h"
#include "mlpx/error.h"

namespace mlpx::cuda {

__global__ void shuffle_keys_kernel(int64_t n, uint64_t* keys, int32_t* rows, uint64_t seed,
                                    uint64_t random_stream) {
  MLPX_GRID_STRIDE(i, n) {
    keys[i] = math::permutation_key(seed, random_stream, static_cast<uint64_t>(i));
    rows[i] = static_cast<int32_t>(i);
  }
}

__global__ void identity_indices_kernel(int64_t n, int32_t* out) {
  MLPX_GRID_STRIDE(i, n) { out[i] = static_cast<int32_t>(i); }
}

namespace {

constexpr size_t kWorkspaceAlign = 256;

size_t align_up(size_t bytes) {
  return (bytes + kWorkspaceAlign - 1) / kWorkspaceAlign * kWorkspaceAlign;
}

// CUB's temporary storage for sorting n (key, row) pairs (a host-side size query).
size_t sort_temp_bytes(int64_t n) {
  size_t bytes = 0;
  MLPX_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      nullptr, bytes, static_cast<const uint64_t*>(nullptr), static_cast<uint64_t*>(nullptr),
      static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr), static_cast<int>(n)));
  return bytes;
}

}  // namespace

size_t permutation_workspace_bytes(int64_t n) {
  if (n <= 0) return 0;
  const auto count = static_cast<size_t>(n);
  return 2 * align_up(sizeof(uint64_t) * count) + align_up(sizeof(int32_t) * count) +
         align_up(sort_temp_bytes(n));
}

void random_permutation(int32_t* out, int64_t n, uint64_t seed, uint64_t random_stream,
                        void* workspace, size_t workspace_bytes, Device device) {
  const cudaStream_t stream = stream_of(device);
  if (n <= 0) return;
  MLPX_CHECK(workspace_bytes >= permutation_workspace_bytes(n), ValueError,
             "random_permutation: expected a workspace of ", permutation_workspace_bytes(n),
             " bytes for ", n, " rows, found ", workspace_bytes);
  const auto count = static_cast<size_t>(n);
  auto* base = static_cast<unsigned char*>(workspace);
  auto* keys = reinterpret_cast<uint64_t*>(base);
  auto* sorted_keys = reinterpret_cast<uint64_t*>(base + align_up(sizeof(uint64_t) * count));
  auto* rows = reinterpret_cast<int32_t*>(base + 2 * align_up(sizeof(uint64_t) * count));
  void* temp = base + 2 * align_up(sizeof(uint64_t) * count) + align_up(sizeof(int32_t) * count);
  size_t temp_bytes = sort_temp_bytes(n);
  launch_elementwise(shuffle_keys_kernel, n, stream, keys, rows, seed, random_stream);
  // An LSD radix sort is stable: rows with equal keys stay in row order, as the CPU's sort of
  // (key, row) pairs orders them. The storage is the caller's: no allocation, no host wait.
  MLPX_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys, sorted_keys, rows, out,
                                                  static_cast<int>(n), 0, 64, stream));
  MLPX_CUDA_CHECK_LAUNCH();
}

void random_permutation(int32_t* out, int64_t n, uint64_t seed, uint64_t random_stream,
                        Device device) {
  if (n <= 0) return;
  // A workspace of its own, stream-ordered: allocated and freed in the stream's order.
  const size_t bytes = permutation_workspace_bytes(n);
  void* workspace = allocate(bytes, device.index);
  try {
    random_permutation(out, n, seed, random_stream, workspace, bytes, device);
  } catch (...) {
    deallocate(workspace, device.index);
    throw;
  }
  deallocate(workspace, device.index);
}

void identity_indices(int32_t* out, int64_t n, Device device) {
  const cudaStream_t stream = stream_of(device);
  launch_elementwise(identity_indices_kernel, n, stream, out);
}

// One thread per element of the batch: consecutive threads read consecutive elements of a
// row, so both the reads and the writes coalesce.
template <typename T>
__global__ void gather_rows_kernel(int64_t n, const T* src, const int32_t* indices, T* dst,
                                   int64_t width) {
  MLPX_GRID_STRIDE(i, n) {
    const int64_t row = i / width, col = i - row * width;
    dst[i] = src[static_cast<int64_t>(indices[row]) * width + col];
  }
}

template <typename T>
void gather_rows(const T* src, const int32_t* indices, T* dst, int64_t rows, int64_t width,
                 Device device) {
  const cudaStream_t stream = stream_of(device);
  launch_elementwise(gather_rows_kernel<T>, rows * width, stream, src, indices, dst, width);
}

template void gather_rows(const float*, const int32_t*, float*, int64_t, int64_t, Device);
template void gather_rows(const int32_t*, const int32_t*, int32_t*, int64_t, int64_t, Device);

// gather_rows_kernel with the index list starting at order + *position * stride: every
// thread reads the same position word (one cached broadcast).
template <typename T>
__global__ void gather_batch_kernel(int64_t n, const T* src, const int32_t* order,
                                    const int32_t* position, int64_t stride, T* dst,
                                    int64_t width) {
  const int32_t* indices = order + static_cast<int64_t>(*position) * stride;
  MLPX_GRID_STRIDE(i, n) {
    const int64_t row = i / width, col = i - row * width;
    dst[i] = src[static_cast<int64_t>(indices[row]) * width + col];
  }
}

template <typename T>
void gather_batch(const T* src, const int32_t* order, const int32_t* position, int64_t stride,
                  T* dst, int64_t rows, int64_t width, Device device) {
  const cudaStream_t stream = stream_of(device);
  launch_elementwise(gather_batch_kernel<T>, rows * width, stream, src, order, position, stride,
                     dst, width);
}

template void gather_batch(const float*, const int32_t*, const int32_t*, int64_t, float*, int64_t,
                           int64_t, Device);
template void gather_batch(const int32_t*, const int32_t*, const int32_t*, int64_t, int32_t*,
                           int64_t, int64_t, Device);

__global__ void commit_batch_loss_kernel(float* loss, float* batch_losses, int32_t* position,
                                         int32_t* run_step) {
  batch_losses[*position] = *loss;
  *loss = 0.0f;
  *position += 1;
  if (run_step != nullptr) *run_step += 1;
}

void commit_batch_loss(float* loss, float* batch_losses, int32_t* position, int32_t* run_step,
                       Device device) {
  const cudaStream_t stream = stream_of(device);
  MLPX_LAUNCH(commit_batch_loss_kernel, 1, 1, 0, stream)(loss, batch_losses, position, run_step);
  MLPX_CUDA_CHECK_LAUNCH();
}

// accumulate_sum_kernel's block (kernels/loss.cu): its thread count fixes the sum's order.
constexpr int kLossSumThreads = 1024;

__global__ void __launch_bounds__(kLossSumThreads)
    sum_and_commit_batch_loss_kernel(const float* row_loss, int64_t n, double scale, float* loss,
                                     float* batch_losses, int32_t* position, int32_t* run_step) {
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kLossSumThreads) {
    sum += static_cast<double>(row_loss[i]);
  }
  sum = group_reduce<kLossSumThreads>(sum, SumOp{});
  if (threadIdx.x == 0) {
    batch_losses[*position] = static_cast<float>(static_cast<double>(*loss) + scale * sum);
    *loss = 0.0f;
    *position += 1;
    if (run_step != nullptr) *run_step += 1;
  }
}

void sum_and_commit_batch_loss(const float* row_loss, int64_t n, double scale, float* loss,
                               float* batch_losses, int32_t* position, int32_t* run_step,
                               Device device) {
  const cudaStream_t stream = stream_of(device);
  MLPX_LAUNCH(sum_and_commit_batch_loss_kernel, 1, kLossSumThreads, 0, stream)
  (row_loss, n, scale, loss, batch_losses, position, run_step);
  MLPX_CUDA_CHECK_LAUNCH();
}

}  // namespace mlpx::cuda
