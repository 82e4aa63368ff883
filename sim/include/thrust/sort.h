// The simulator's stand-in for <thrust/sort.h>: thrust::stable_sort_by_key with a CUDA policy
// (thrust::cuda::par, par.on(stream)), as stream work: a std::stable_sort of (key, value) pairs
// by key when the stream runs. As real Thrust does, the call allocates its temporary storage
// with cudaMalloc (so it fails while the stream captures: cudaErrorStreamCaptureUnsupported),
// synchronises the stream before it returns, frees the storage with cudaFree, and throws
// thrust::system_error on a CUDA error.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "cuda_runtime_api.h"
#include "mlpx_sim/runtime.h"
#include "thrust/device_ptr.h"
#include "thrust/execution_policy.h"
#include "thrust/system_error.h"

namespace thrust {
namespace sim_detail {

template <typename Key, typename Value, typename Compare>
void stable_sort_by_key(cudaStream_t stream, Key* keys, std::ptrdiff_t n, Value* values,
                        Compare comp) {
  if (n <= 0) return;
  const char* const where = "stable_sort_by_key";
  const size_t count = static_cast<size_t>(n);
  void* temp = nullptr;  // what the real sort would use (for the memory accounting)
  cudaError_t e = cudaMalloc(&temp, count * (sizeof(Key) + sizeof(Value)));
  if (e != cudaSuccess) throw system_error(e, std::string(where) + ": failed on 1st step");
  e = mlpx_sim::enqueue_work(stream, "thrust::stable_sort_by_key", [=] {
    std::string why;
    if (!mlpx_sim::check_device_range(keys, count * sizeof(Key), why)) {
      mlpx_sim::raise_fault(cudaErrorIllegalAddress, "thrust::stable_sort_by_key: keys: " + why);
      return;
    }
    if (!mlpx_sim::check_device_range(values, count * sizeof(Value), why)) {
      mlpx_sim::raise_fault(cudaErrorIllegalAddress, "thrust::stable_sort_by_key: values: " + why);
      return;
    }
    std::vector<std::pair<Key, Value>> pairs(count);
    for (size_t i = 0; i < count; ++i) pairs[i] = {keys[i], values[i]};
    std::stable_sort(pairs.begin(), pairs.end(),
                     [&comp](const std::pair<Key, Value>& a, const std::pair<Key, Value>& b) {
                       return comp(a.first, b.first);
                     });
    for (size_t i = 0; i < count; ++i) {
      keys[i] = pairs[i].first;
      values[i] = pairs[i].second;
    }
  });
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
  const cudaError_t freed = cudaFree(temp);
  if (e == cudaSuccess) e = freed;
  if (e != cudaSuccess) throw system_error(e, std::string(where) + ": failed to synchronize");
}

}  // namespace sim_detail

template <typename Policy, typename KeyIterator, typename ValueIterator, typename Compare>
void stable_sort_by_key(const Policy& policy, KeyIterator keys_first, KeyIterator keys_last,
                        ValueIterator values_first, Compare comp) {
  sim_detail::stable_sort_by_key(cuda_cub::stream_of(policy), raw_pointer_cast(keys_first),
                                 keys_last - keys_first, raw_pointer_cast(values_first), comp);
}

template <typename Policy, typename KeyIterator, typename ValueIterator>
void stable_sort_by_key(const Policy& policy, KeyIterator keys_first, KeyIterator keys_last,
                        ValueIterator values_first) {
  stable_sort_by_key(policy, keys_first, keys_last, values_first, std::less<>());
}

}  // namespace thrust
