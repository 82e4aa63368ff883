// The simulator's stand-in for <cub/device/device_radix_sort.cuh>: cub::DeviceRadixSort::SortPairs
// with caller-provided temporary storage, as CUB's: a first call with d_temp_storage == nullptr
// only sets temp_storage_bytes; the second enqueues the sort as stream work (a stable sort of
// (key, value) pairs by the key's bits [begin_bit, end_bit) when the stream runs, as an LSD
// radix sort orders them: stable, unsigned). It allocates nothing and never waits for the
// device, so it may be captured in a graph. Keys, values and the temporary storage must be
// device memory of the sizes given (a sticky cudaErrorIllegalAddress when the sort runs
// otherwise); a temporary storage smaller than asked for is cudaErrorInvalidValue at the call.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda_runtime_api.h"
#include "mlpx_sim/counters.h"
#include "mlpx_sim/runtime.h"

namespace cub {

struct DeviceRadixSort {
  // What the stand-in asks for: about what CUB's onesweep sort asks for (a key and a value
  // buffer of num_items each, plus histograms), so that memory accounting stays realistic.
  template <typename KeyT, typename ValueT>
  static size_t temp_bytes_for(size_t n) {
    return 4096 + n * (sizeof(KeyT) + sizeof(ValueT));
  }

  template <typename KeyT, typename ValueT, typename NumItemsT>
  static cudaError_t SortPairs(void* d_temp_storage, size_t& temp_storage_bytes,
                               const KeyT* d_keys_in, KeyT* d_keys_out, const ValueT* d_values_in,
                               ValueT* d_values_out, NumItemsT num_items, int begin_bit = 0,
                               int end_bit = sizeof(KeyT) * 8, cudaStream_t stream = 0) {
    static_assert(std::is_integral<KeyT>::value && std::is_unsigned<KeyT>::value,
                  "the stand-in sorts unsigned integer keys");
    const size_t n = num_items > 0 ? static_cast<size_t>(num_items) : 0;
    const size_t needed = temp_bytes_for<KeyT, ValueT>(n);
    if (d_temp_storage == nullptr) {
      temp_storage_bytes = needed;
      return cudaSuccess;
    }
    if (temp_storage_bytes < needed || begin_bit < 0 ||
        end_bit > static_cast<int>(sizeof(KeyT) * 8) || begin_bit >= end_bit)
      return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    const int bits = end_bit - begin_bit;
    const KeyT mask = bits >= static_cast<int>(sizeof(KeyT) * 8)
                          ? static_cast<KeyT>(~KeyT{0})
                          : static_cast<KeyT>((KeyT{1} << bits) - 1);
    return mlpx_sim::enqueue_work(stream, "cub::DeviceRadixSort::SortPairs", [=] {
      std::string why;
      const std::pair<const void*, size_t> spans[] = {{d_keys_in, n * sizeof(KeyT)},
                                                      {d_keys_out, n * sizeof(KeyT)},
                                                      {d_values_in, n * sizeof(ValueT)},
                                                      {d_values_out, n * sizeof(ValueT)},
                                                      {d_temp_storage, needed}};
      const char* names[] = {"keys in", "keys out", "values in", "values out", "temporary storage"};
      for (int i = 0; i < 5; ++i) {
        if (!mlpx_sim::check_device_range(spans[i].first, spans[i].second, why)) {
          mlpx_sim::raise_fault(
              cudaErrorIllegalAddress,
              std::string("cub::DeviceRadixSort::SortPairs: ") + names[i] + ": " + why);
          return;
        }
      }
      std::vector<std::pair<KeyT, ValueT>> pairs(n);
      for (size_t i = 0; i < n; ++i) pairs[i] = {d_keys_in[i], d_values_in[i]};
      std::stable_sort(pairs.begin(), pairs.end(), [&](const auto& a, const auto& b) {
        return static_cast<KeyT>((a.first >> begin_bit) & mask) <
               static_cast<KeyT>((b.first >> begin_bit) & mask);
      });
      for (size_t i = 0; i < n; ++i) {
        d_keys_out[i] = pairs[i].first;
        d_values_out[i] = pairs[i].second;
      }
      // Each key and value read and written once (the real sort makes a few passes).
      mlpx_sim::count_device_bytes(n * (sizeof(KeyT) + sizeof(ValueT)),
                                   n * (sizeof(KeyT) + sizeof(ValueT)));
    });
  }
};

}  // namespace cub
