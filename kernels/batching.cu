#include <thrust/device_ptr.h>
#include <thrust/execution_policy.h>
#include <thrust/sort.h>

#include "kernels/batching.h"
#include "kernels/check.h"
#include "kernels/device_counters.h"
#include "kernels/launch.cuh"
#include "math/batching.h"

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

void random_permutation(int32_t* out, int64_t n, uint64_t seed, uint64_t random_stream,
                        Device device) {
  const cudaStream_t stream = stream_of(device);
  if (n <= 0) return;
  // The sort keys, freed (stream-ordered) however this returns: Thrust throws on errors.
  struct Keys {
    uint64_t* ptr = nullptr;
    cudaStream_t stream;
    ~Keys() {
      if (ptr != nullptr) MLPX_CUDA_CHECK_NOTHROW(cudaFreeAsync(ptr, stream));
    }
  } keys{nullptr, stream};
  MLPX_CUDA_CHECK(
      cudaMallocAsync(reinterpret_cast<void**>(&keys.ptr), sizeof(uint64_t) * n, stream));
  launch_elementwise(shuffle_keys_kernel, n, stream, keys.ptr, out, seed, random_stream);
  // Stable: equal keys keep row order, as the CPU's sort of (key, row) pairs does. Thrust with
  // `par` allocates its temporary storage and waits for the stream: a host wait.
  note_host_wait();
  thrust::stable_sort_by_key(thrust::cuda::par.on(stream), thrust::device_pointer_cast(keys.ptr),
                             thrust::device_pointer_cast(keys.ptr + n),
                             thrust::device_pointer_cast(out));
  MLPX_CUDA_CHECK_LAUNCH();
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

__global__ void commit_batch_loss_kernel(float* loss, float* batch_losses, int32_t* position) {
  batch_losses[*position] = *loss;
  *loss = 0.0f;
  *position += 1;
}

void commit_batch_loss(float* loss, float* batch_losses, int32_t* position, Device device) {
  const cudaStream_t stream = stream_of(device);
  MLPX_LAUNCH(commit_batch_loss_kernel, 1, 1, 0, stream)(loss, batch_losses, position);
  MLPX_CUDA_CHECK_LAUNCH();
}

}  // namespace mlpx::cuda
