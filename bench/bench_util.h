// What the GPU benchmarks share: timing on the device's stream with CUDA events, for
// Google Benchmark's UseManualTime. Compiled only with the CUDA backend.
#pragma once

#if MLPX_WITH_CUDA
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include "kernels/runtime.h"
#include "mlpx/device.h"

namespace mlpx::bench {

// Seconds of one run of body() on `device`'s stream, between two CUDA events.
template <typename Body>
double gpu_seconds(Device device, Body body) {
  cudaStream_t stream = cuda::stream_of(device);
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start, stream);
  body();
  cudaEventRecord(stop, stream);
  cudaEventSynchronize(stop);
  float ms = 0.0f;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return static_cast<double>(ms) * 1e-3;
}

// Runs body() once untimed (module loads, cuBLAS's choice of kernel), then sets each
// benchmark iteration's time to body()'s time on the device; waits for the device at the end.
template <typename Body>
void time_gpu_iterations(benchmark::State& state, Device device, Body body) {
  body();
  synchronize(device);
  for (auto _ : state) state.SetIterationTime(gpu_seconds(device, body));
  synchronize(device);
}

}  // namespace mlpx::bench
#endif
