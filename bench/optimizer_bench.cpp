// Optimizer step throughput: bytes moved per second (each step reads and writes every buffer
// once: adam 28 bytes per float32 parameter). CPU at modest sizes; GPU at 64 MB and more,
// timed with CUDA events around the step on mlpx's stream.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "bench_util.h"
#include "mlpx/device.h"
#include "mlpx/optimizer.h"
#include "mlpx/tensor.h"

namespace {

using mlpx::Device;
using mlpx::DType;
using mlpx::Optimizer;
using mlpx::OptimizerConfig;
using mlpx::OptimizerType;
using mlpx::Tensor;

// Bench variants: 0 sgd, 1 sgd+momentum, 2 adagrad, 3 rmsprop, 4 adam, 5 adamw.
OptimizerConfig config_of(int64_t variant) {
  OptimizerConfig c;
  switch (variant) {
    case 0:
      c.type = OptimizerType::kSgd;
      c.lr = 0.01;
      break;
    case 1:
      c.type = OptimizerType::kSgd;
      c.lr = 0.01;
      c.momentum = 0.9;
      break;
    case 2:
      c.type = OptimizerType::kAdagrad;
      break;
    case 3:
      c.type = OptimizerType::kRmsprop;
      break;
    case 4:
      c.type = OptimizerType::kAdam;
      break;
    default:
      c.type = OptimizerType::kAdamW;
      c.weight_decay = 0.01;
      break;
  }
  return c;
}

const char* label_of(int64_t variant) {
  static const char* const kLabels[] = {"sgd",     "sgd_momentum", "adagrad",
                                        "rmsprop", "adam",         "adamw"};
  return kLabels[variant];
}

// Bytes one step moves per parameter: p read + write, g read, each state buffer read + write.
int64_t bytes_per_param(const OptimizerConfig& c, size_t element_bytes) {
  int64_t state_buffers = 0;
  switch (c.type) {
    case OptimizerType::kSgd:
      state_buffers = c.momentum > 0 ? 1 : 0;
      break;
    case OptimizerType::kAdagrad:
    case OptimizerType::kRmsprop:
      state_buffers = 1;
      break;
    case OptimizerType::kAdam:
    case OptimizerType::kAdamW:
      state_buffers = 2;
      break;
  }
  return static_cast<int64_t>(element_bytes) * (3 + 2 * state_buffers);
}

void BM_OptimizerStepCpu(benchmark::State& state) {
  const OptimizerConfig config = config_of(state.range(0));
  const int64_t n = state.range(1);
  Tensor params = Tensor::zeros({n}, DType::kFloat32);
  const Tensor grads = Tensor::from_vector(std::vector<float>(static_cast<size_t>(n), 1e-3f), {n});
  Optimizer optimizer(config, n, DType::kFloat32, Device::cpu());
  for (auto _ : state) {
    optimizer.step(params, grads, config.lr);
    benchmark::DoNotOptimize(params.raw_data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(label_of(state.range(0)));
  state.SetBytesProcessed(state.iterations() * n * bytes_per_param(config, sizeof(float)));
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_OptimizerStepGpu(benchmark::State& state) {
  if (!mlpx::cuda_available()) {
    state.SkipWithError("no usable CUDA device");
    return;
  }
#if MLPX_WITH_CUDA
  const OptimizerConfig config = config_of(state.range(0));
  const int64_t n = state.range(1);
  const Device gpu = Device::cuda();
  Tensor params = Tensor::zeros({n}, DType::kFloat32, gpu);
  const Tensor grads = Tensor::zeros({n}, DType::kFloat32, gpu);
  Optimizer optimizer(config, n, DType::kFloat32, gpu);
  mlpx::bench::time_gpu_iterations(state, gpu, [&] { optimizer.step(params, grads, config.lr); });
  state.SetLabel(label_of(state.range(0)));
  state.SetBytesProcessed(state.iterations() * n * bytes_per_param(config, sizeof(float)));
  state.SetItemsProcessed(state.iterations() * n);
#endif
}

// Variants x sizes: CPU 64 Ki, the default model's 235146 (784-256-128-10: the whole
// optimizer step of a batch-1 training step) and 1 Mi parameters; GPU 16 Mi (64 MB per buffer)
// and 64 Mi.
BENCHMARK(BM_OptimizerStepCpu)
    ->ArgNames({"opt", "n"})
    ->ArgsProduct({{0, 1, 2, 3, 4, 5}, {1 << 16, 235146, 1 << 20}})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_OptimizerStepGpu)
    ->ArgNames({"opt", "n"})
    ->ArgsProduct({{0, 1, 2, 3, 4, 5}, {1 << 24, 1 << 26}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
