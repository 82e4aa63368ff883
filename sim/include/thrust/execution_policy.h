// The simulator's stand-in for <thrust/execution_policy.h>: thrust::cuda::par and
// thrust::cuda::par.on(stream), the policies mlpx passes to Thrust algorithms.
#pragma once

#include "cuda_runtime_api.h"

namespace thrust {
namespace cuda_cub {

// par.on(stream): the algorithm's work goes on `stream`.
struct execute_on_stream {
  cudaStream_t stream = nullptr;
};

// par: the legacy default stream. Like real Thrust's par, algorithms synchronise the stream
// before they return (par_nosync is not modelled).
struct par_t {
  constexpr par_t() = default;
  execute_on_stream on(cudaStream_t stream) const { return execute_on_stream{stream}; }
};

inline constexpr par_t par{};

inline cudaStream_t stream_of(const par_t&) { return nullptr; }
inline cudaStream_t stream_of(const execute_on_stream& policy) { return policy.stream; }

}  // namespace cuda_cub

namespace cuda = cuda_cub;

}  // namespace thrust
