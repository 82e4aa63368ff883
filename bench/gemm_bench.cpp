// mlpx::gemm on the Linear shapes of the default model (784-256-128-10) as a training step
// calls it: forward y = x W^T, input gradient dx = dy W, weight gradient dW = dy^T x, at
// batch 128, 1024 and 54000 (the full Fashion-MNIST training split), plus a square reference
// (the device's GEMM rate that the train_step suite compares against). Counters: FLOP/s
// (2 M N K per call) and bytes_per_second (A, B read once, C written once). CPU through
// OpenBLAS (real time); GPU through cuBLAS in true fp32, timed with CUDA events around the call.
// The *Bf16 cases: square GEMMs in precision bf16 (the rounding of both inputs included): on
// the CPU through oneDNN's bf16 matmul where the CPU has one, else emulated (label says which).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "bench_util.h"
#include "mlpx/device.h"
#include "mlpx/gemm.h"
#include "mlpx/tensor.h"

namespace {

using mlpx::Device;
using mlpx::Tensor;

constexpr int64_t kLayers[3][2] = {{784, 256}, {256, 128}, {128, 10}};  // {in, out}
const char* const kOps[] = {"forward", "dx", "dW", "square"};

Tensor random_tensor(int64_t rows, int64_t cols, uint64_t seed, Device device) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (auto& x : v) x = dist(gen);
  return Tensor::from_vector(v, {rows, cols}, device);
}

// One call's operands: op 0 forward, 1 dx, 2 dW (layer `layer` at batch `batch`), 3 square
// `batch` x `batch` x `batch`.
struct Problem {
  Tensor a, b, c;
  bool ta = false, tb = false;
  int64_t m = 0, n = 0, k = 0;

  mlpx::Precision precision = mlpx::Precision::kFp32;

  Problem(int64_t op, int64_t layer, int64_t batch, Device device,
          mlpx::Precision precision_ = mlpx::Precision::kFp32)
      : precision(precision_) {
    const int64_t in = kLayers[layer][0], out = kLayers[layer][1];
    switch (op) {
      case 0:  // y [B, out] = x [B, in] * W^T, W [out, in]
        a = random_tensor(batch, in, 1, device);
        b = random_tensor(out, in, 2, device);
        c = Tensor({batch, out}, mlpx::DType::kFloat32, device);
        tb = true;
        m = batch, n = out, k = in;
        break;
      case 1:  // dx [B, in] = dy [B, out] * W [out, in]
        a = random_tensor(batch, out, 1, device);
        b = random_tensor(out, in, 2, device);
        c = Tensor({batch, in}, mlpx::DType::kFloat32, device);
        m = batch, n = in, k = out;
        break;
      case 2:  // dW [out, in] = dy^T [out, B] * x [B, in]
        a = random_tensor(batch, out, 1, device);
        b = random_tensor(batch, in, 2, device);
        c = Tensor({out, in}, mlpx::DType::kFloat32, device);
        ta = true;
        m = out, n = in, k = batch;
        break;
      default:
        a = random_tensor(batch, batch, 1, device);
        b = random_tensor(batch, batch, 2, device);
        c = Tensor({batch, batch}, mlpx::DType::kFloat32, device);
        m = n = k = batch;
        break;
    }
  }
  void run() { mlpx::gemm(a, ta, b, tb, c, 1.0, 0.0, precision); }
  double flops() const { return 2.0 * static_cast<double>(m) * n * k; }
  int64_t bytes() const { return 4 * (m * k + k * n + m * n); }
};

void report(benchmark::State& state, const Problem& p) {
  state.counters["FLOP/s"] = benchmark::Counter(p.flops() * static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
  state.SetBytesProcessed(state.iterations() * p.bytes());
  state.SetLabel(kOps[state.range(0)]);
}

void gemm_cpu(benchmark::State& state, mlpx::Precision precision) {
  Problem p(state.range(0), state.range(1), state.range(2), Device::cpu(), precision);
  p.run();  // warm-up: OpenBLAS starts its threads on the first call
  for (auto _ : state) {
    p.run();
    benchmark::DoNotOptimize(p.c.raw_data());
    benchmark::ClobberMemory();
  }
  report(state, p);
  if (precision == mlpx::Precision::kBf16) state.SetLabel(mlpx::cpu_bf16_engine());
}

void gemm_gpu(benchmark::State& state, mlpx::Precision precision) {
  if (!mlpx::cuda_available()) {
    state.SkipWithError("no usable CUDA device");
    return;
  }
#if MLPX_WITH_CUDA
  const Device gpu = Device::cuda();
  Problem p(state.range(0), state.range(1), state.range(2), gpu, precision);
  // The untimed first run lets cuBLAS pick its kernel and allocate its workspace.
  mlpx::bench::time_gpu_iterations(state, gpu, [&] { p.run(); });
  report(state, p);
#endif
}

void BM_GemmCpu(benchmark::State& state) { gemm_cpu(state, mlpx::Precision::kFp32); }
void BM_GemmCpuBf16(benchmark::State& state) { gemm_cpu(state, mlpx::Precision::kBf16); }
void BM_GemmGpu(benchmark::State& state) { gemm_gpu(state, mlpx::Precision::kFp32); }
void BM_GemmGpuBf16(benchmark::State& state) { gemm_gpu(state, mlpx::Precision::kBf16); }

// {op, layer, batch}: the three ops of the three layers at batch 128, 1024 and 54000, then
// the square reference (layer ignored; batch = the side).
void linear_shapes(benchmark::internal::Benchmark* b) {
  for (int64_t batch : {128, 1024, 54000}) {
    for (int64_t layer = 0; layer < 3; ++layer) {
      for (int64_t op = 0; op < 3; ++op) b->Args({op, layer, batch});
    }
  }
}

BENCHMARK(BM_GemmCpu)
    ->ArgNames({"op", "layer", "batch"})
    ->Apply(linear_shapes)
    ->Args({3, 0, 1024})
    ->Args({3, 0, 2048})
    ->UseRealTime()  // OpenBLAS runs threads of its own: rates per wall-clock second
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GemmGpu)
    ->ArgNames({"op", "layer", "batch"})
    ->Apply(linear_shapes)
    ->Args({3, 0, 4096})
    ->Args({3, 0, 8192})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GemmCpuBf16)
    ->ArgNames({"op", "layer", "batch"})
    ->Args({3, 0, 1024})
    ->Args({3, 0, 2048})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GemmGpuBf16)
    ->ArgNames({"op", "layer", "batch"})
    ->Args({3, 0, 4096})
    ->Args({3, 0, 8192})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
