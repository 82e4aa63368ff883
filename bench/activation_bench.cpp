// Activation throughput, forward and backward: bytes moved per second, counting each input
// read once and each output written once (forward: x in, y out; backward: dy and x or y in,
// dx out). CPU at modest sizes; GPU at 64 MB per tensor and more, timed with CUDA events
// around the launch on mlpx's stream.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "mlpx/activation.h"
#include "mlpx/device.h"
#include "mlpx/tensor.h"

namespace {

using mlpx::Activation;
using mlpx::Device;
using mlpx::DType;
using mlpx::Tensor;

const Activation kAll[] = {Activation::kIdentity, Activation::kSigmoid,   Activation::kTanh,
                           Activation::kRelu,     Activation::kLeakyRelu, Activation::kElu,
                           Activation::kSoftmax};

Tensor random_tensor(int64_t rows, int64_t cols, uint64_t seed, Device device) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (auto& x : v) x = dist(gen);
  return Tensor::from_vector(v, {rows, cols}, device);
}

// Tensors one call reads or writes: forward x and y; backward dy, dx and x or y (identity
// reads dy only).
int64_t tensors_moved(Activation a, bool backward) {
  if (!backward) return 2;
  return a == Activation::kIdentity ? 2 : 3;
}

struct Case {
  Tensor x, y, dy, dx;
  Case(int64_t rows, int64_t cols, Device device)
      : x(random_tensor(rows, cols, 1, device)),
        y({rows, cols}, DType::kFloat32, device),
        dy(random_tensor(rows, cols, 2, device)),
        dx({rows, cols}, DType::kFloat32, device) {}
  void run(Activation a, bool backward) {
    if (backward) {
      mlpx::activation_backward(a, x, y, dy, dx);
    } else {
      mlpx::activation_forward(a, x, y);
    }
  }
};

void set_counters(benchmark::State& state, Activation a, bool backward, int64_t rows,
                  int64_t cols) {
  state.SetBytesProcessed(state.iterations() * tensors_moved(a, backward) * rows * cols *
                          static_cast<int64_t>(sizeof(float)));
  state.SetItemsProcessed(state.iterations() * rows * cols);
}

void BM_ActivationCpu(benchmark::State& state, Activation a, bool backward) {
  const int64_t rows = state.range(0), cols = state.range(1);
  Case c(rows, cols, Device::cpu());
  mlpx::activation_forward(a, c.x, c.y);
  for (auto _ : state) {
    c.run(a, backward);
    benchmark::DoNotOptimize(c.y.raw_data());
    benchmark::DoNotOptimize(c.dx.raw_data());
    benchmark::ClobberMemory();
  }
  set_counters(state, a, backward, rows, cols);
}

void BM_ActivationGpu(benchmark::State& state, Activation a, bool backward) {
  if (!mlpx::cuda_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
#if MLPX_WITH_CUDA
  const int64_t rows = state.range(0), cols = state.range(1);
  const Device gpu = Device::cuda();
  Case c(rows, cols, gpu);
  mlpx::activation_forward(a, c.x, c.y);
  mlpx::bench::time_gpu_iterations(state, gpu, [&] { c.run(a, backward); });
  set_counters(state, a, backward, rows, cols);
#endif
}

void register_all() {
  for (Activation a : kAll) {
    for (bool backward : {false, true}) {
      const std::string name = mlpx::activation_name(a) + (backward ? "_backward" : "_forward");
      // CPU: small layer outputs and a 4 MB tensor.
      benchmark::RegisterBenchmark(("BM_ActivationCpu/" + name).c_str(), BM_ActivationCpu, a,
                                   backward)
          ->ArgNames({"rows", "cols"})
          ->Args({128, 256})
          ->Args({1024, 1024});
      // GPU: launch-bound size, then 64 MB and 256 MB per tensor (and wide softmax rows).
      benchmark::RegisterBenchmark(("BM_ActivationGpu/" + name).c_str(), BM_ActivationGpu, a,
                                   backward)
          ->ArgNames({"rows", "cols"})
          ->Args({128, 256})
          ->Args({16384, 1024})
          ->Args({65536, 1024})
          ->Args({512, 32768})
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
