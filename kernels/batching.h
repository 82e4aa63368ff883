// Launchers of the shuffling and gathering kernels (kernels/batching.cu). Internal.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace mlpx::cuda {
// out[0..n) on the device = the permutation of mlpx/math/batching.h (Thrust stable sort).
void random_permutation(int32_t* out, int64_t n, uint64_t seed, uint64_t random_stream,
                        cudaStream_t stream);
void identity_indices(int32_t* out, int64_t n, cudaStream_t stream);
// dst[i, :] = src[indices[i], :], rows of `width` elements of T (float or int32).
template <typename T>
void gather_rows(const T* src, const int32_t* indices, T* dst, int64_t rows, int64_t width,
                 cudaStream_t stream);
}  // namespace mlpx::cuda
