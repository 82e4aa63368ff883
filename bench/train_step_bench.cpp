// One training step (forward, cross-entropy loss and its gradient, backward, Adam update) of
// an MLP 784-W-W-10 (ReLU, W = 128 .. 4096; W = 0 is the default model 784-256-128-10) over
// batch sizes. items_per_second = samples/s. Counters: gemm_flops_per_s (2 B (3 sum(in*out) -
// 784 W0) per step: forward, dx and dW GEMMs of every layer but the first layer's dx, which the
// backward skips) and gemm_fraction = that / the device's
// measured GEMM rate (a large square mlpx::gemm, measured once per process): how close the
// whole step comes to running only its GEMMs at full speed.
// Also the step's memory-bound helpers not covered by the other suites (row gather, bias
// add, bias-gradient row sums): bytes_per_second.
// CPU: OpenBLAS (real time, since it runs threads of its own); GPU: CUDA events.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "bench_util.h"
#include "mlpx/device.h"
#include "mlpx/gemm.h"
#include "mlpx/linear.h"
#include "mlpx/loss.h"
#include "mlpx/model.h"
#include "mlpx/optimizer.h"
#include "mlpx/tensor.h"
#include "ops/batching.h"
#if MLPX_WITH_CUDA
using mlpx::bench::gpu_seconds;
#endif

namespace {

using mlpx::Device;
using mlpx::DType;
using mlpx::Tensor;

Tensor random_tensor(int64_t rows, int64_t cols, uint64_t seed, Device device) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (auto& x : v) x = dist(gen);
  return Tensor::from_vector(v, {rows, cols}, device);
}

// The device's float32 GEMM rate in FLOP/s: the best of a few square products through
// mlpx::gemm (OpenBLAS sgemm 2048^3 on the CPU, cuBLAS fp32 8192^3 on the GPU).
double measured_gemm_rate(Device device) {
  static std::map<bool, double> cache;
  const auto hit = cache.find(device.is_cuda());
  if (hit != cache.end()) return hit->second;
  const int64_t n = device.is_cuda() ? 8192 : 2048;
  const Tensor a = random_tensor(n, n, 1, device), b = random_tensor(n, n, 2, device);
  Tensor c({n, n}, DType::kFloat32, device);
  mlpx::gemm(a, false, b, false, c);  // warm-up
  mlpx::synchronize(device);
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    double s = 0;
#if MLPX_WITH_CUDA
    if (device.is_cuda()) s = gpu_seconds(device, [&] { mlpx::gemm(a, false, b, false, c); });
#endif
    if (device.is_cpu()) {
      const auto t0 = std::chrono::steady_clock::now();
      mlpx::gemm(a, false, b, false, c);
      s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    best = std::min(best, s);
  }
  return cache[device.is_cuda()] = 2.0 * n * n * n / best;
}

std::vector<mlpx::LayerSpec> layers_of(int64_t width) {
  if (width == 0) {
    return {{256, mlpx::Activation::kRelu},
            {128, mlpx::Activation::kRelu},
            {10, mlpx::Activation::kIdentity}};
  }
  return {{width, mlpx::Activation::kRelu},
          {width, mlpx::Activation::kRelu},
          {10, mlpx::Activation::kIdentity}};
}

// Everything one step touches, allocated once; run() is the step the Trainer takes.
struct Step {
  mlpx::Sequential model;
  mlpx::Optimizer optimizer;
  Tensor x, labels, row_loss, grad;
  double gemm_flops = 0;  // per step

  Step(int64_t width, int64_t batch, Device device)
      : model(784, layers_of(width), DType::kFloat32, device),
        optimizer(mlpx::OptimizerConfig{}, model.num_params(), DType::kFloat32, device) {
    model.init(mlpx::Init::kHeNormal, 0.0, 0);
    x = random_tensor(batch, 784, 3, device);
    std::vector<int32_t> l(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; ++i) l[i] = static_cast<int32_t>(i % 10);
    labels = Tensor::from_vector(l, {batch}, device);
    row_loss = Tensor({batch}, DType::kFloat32, device);
    grad = Tensor({batch, 10}, DType::kFloat32, device);
    int64_t in = 784;
    double gemms = 2.0;  // the first layer: forward and dW (no dx of the input)
    for (const auto& layer : layers_of(width)) {
      gemm_flops += 2.0 * gemms * static_cast<double>(batch * in * layer.units);
      in = layer.units;
      gemms = 3.0;
    }
  }
  void run() {
    const Tensor out = model.forward(x);
    mlpx::loss_forward_backward(mlpx::Loss::kCrossEntropy, out, labels, row_loss, &grad);
    model.backward(grad);
    optimizer.step(model.params(), model.grads(), 1e-3);
  }
};

// seconds: the summed time of the timed steps (the fraction is a plain ratio, not a rate).
void report_step(benchmark::State& state, const Step& step, Device device, double seconds) {
  const int64_t batch = state.range(1);
  const double rate = measured_gemm_rate(device);
  const auto iters = static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["gemm_flops_per_s"] =
      benchmark::Counter(step.gemm_flops * iters, benchmark::Counter::kIsRate);
  state.counters["gemm_fraction"] = step.gemm_flops * iters / std::max(seconds, 1e-12) / rate;
  state.counters["device_gemm_flops_per_s"] = rate;
}

void BM_TrainStepCpu(benchmark::State& state) {
  const Device cpu = Device::cpu();
  measured_gemm_rate(cpu);  // outside the timed loop
  Step step(state.range(0), state.range(1), cpu);
  step.run();
  step.run();
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    step.run();
    benchmark::ClobberMemory();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  report_step(state, step, cpu, seconds);
}

void BM_TrainStepGpu(benchmark::State& state) {
  if (!mlpx::cuda_available()) {
    state.SkipWithError("no usable CUDA device");
    return;
  }
#if MLPX_WITH_CUDA
  const Device gpu = Device::cuda();
  measured_gemm_rate(gpu);
  Step step(state.range(0), state.range(1), gpu);
  step.run();
  step.run();
  mlpx::synchronize(gpu);
  double seconds = 0;
  for (auto _ : state) {
    const double s = gpu_seconds(gpu, [&] { step.run(); });
    state.SetIterationTime(s);
    seconds += s;
  }
  mlpx::synchronize(gpu);
  report_step(state, step, gpu, seconds);
#endif
}

// {width, batch}. The CPU matrix runs in about a minute on two cores. Batch 1 (plain SGD's
// batch) on the default model only: its step is the optimizer and per-call overheads.
BENCHMARK(BM_TrainStepCpu)
    ->ArgNames({"width", "batch"})
    ->Args({0, 1})
    ->ArgsProduct({{0, 128, 512, 1024, 4096}, {32, 128, 1024}})
    ->UseRealTime()
    ->MinTime(0.2)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TrainStepGpu)
    ->ArgNames({"width", "batch"})
    ->ArgsProduct({{0, 128, 512, 1024, 4096}, {32, 128, 1024}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// Memory-bound pieces, op 0 gather_rows (B rows of 784 from a 54000-row set: read + write),
// 1 add_bias on [B, 256] (read + write y), 2 sum_rows of [B, 256] (read once).
struct Piece {
  Tensor src, indices, dst, bias, sums;
  int64_t op, batch;
  Piece(int64_t op_, int64_t batch_, Device device) : op(op_), batch(batch_) {
    if (op == 0) {
      src = random_tensor(54000, 784, 1, device);
      indices = mlpx::random_permutation(54000, 0, 1, device).rows(0, batch);
      dst = Tensor({batch, 784}, DType::kFloat32, device);
    } else {
      dst = random_tensor(batch, 256, 1, device);
      bias = random_tensor(1, 256, 2, device).view({256});
      sums = Tensor({256}, DType::kFloat32, device);
    }
  }
  void run() {
    if (op == 0) {
      mlpx::gather_rows(src, indices, dst);
    } else if (op == 1) {
      mlpx::add_bias(dst, bias);
    } else {
      mlpx::sum_rows(dst, sums);
    }
  }
  int64_t bytes() const {
    if (op == 0) return batch * 784 * 4 * 2 + batch * 4;
    return batch * 256 * 4 * (op == 1 ? 2 : 1);
  }
};

const char* const kPieces[] = {"gather_rows", "add_bias", "sum_rows"};

void BM_StepPieceCpu(benchmark::State& state) {
  Piece p(state.range(0), state.range(1), Device::cpu());
  p.run();
  for (auto _ : state) {
    p.run();
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * p.bytes());
  state.SetLabel(kPieces[state.range(0)]);
}

void BM_StepPieceGpu(benchmark::State& state) {
  if (!mlpx::cuda_available()) {
    state.SkipWithError("no usable CUDA device");
    return;
  }
#if MLPX_WITH_CUDA
  const Device gpu = Device::cuda();
  Piece p(state.range(0), state.range(1), gpu);
  p.run();
  mlpx::synchronize(gpu);
  for (auto _ : state) state.SetIterationTime(gpu_seconds(gpu, [&] { p.run(); }));
  state.SetBytesProcessed(state.iterations() * p.bytes());
  state.SetLabel(kPieces[state.range(0)]);
#endif
}

BENCHMARK(BM_StepPieceCpu)
    ->ArgNames({"op", "batch"})
    ->ArgsProduct({{0, 1, 2}, {128, 1024, 8192}})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_StepPieceGpu)
    ->ArgNames({"op", "batch"})
    ->ArgsProduct({{0, 1, 2}, {1024, 54000}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
