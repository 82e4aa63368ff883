// Loss throughput (value and gradient in one pass): bytes moved per second, counting each
// input read once and each output written once (output and target or labels in; row_loss
// and grad out). Includes cross_entropy on [8192 x 1000]. CPU at modest sizes; GPU at 64 MB
// per tensor and more, timed with CUDA events around the launch on mlpx's stream.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "mlpx/device.h"
#include "mlpx/loss.h"
#include "mlpx/tensor.h"

namespace {

using mlpx::Device;
using mlpx::DType;
using mlpx::Loss;
using mlpx::Tensor;

const Loss kAll[] = {Loss::kCrossEntropy, Loss::kMse, Loss::kSse, Loss::kKlDiv, Loss::kBce};

std::vector<float> random_values(int64_t n, uint64_t seed, float lo, float hi) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(gen);
  return v;
}

struct Case {
  Tensor output, target, row_loss, grad;
  Case(Loss loss, int64_t rows, int64_t cols, Device device)
      : output(
            Tensor::from_vector(random_values(rows * cols, 1, -6.0f, 6.0f), {rows, cols}, device)),
        row_loss({rows}, DType::kFloat32, device),
        grad({rows, cols}, DType::kFloat32, device) {
    if (mlpx::loss_uses_class_labels(loss)) {
      std::mt19937_64 gen(2);
      std::uniform_int_distribution<int32_t> label(0, static_cast<int32_t>(cols - 1));
      std::vector<int32_t> labels(static_cast<size_t>(rows));
      for (auto& l : labels) l = label(gen);
      target = Tensor::from_vector(labels, {rows}, device);
    } else {
      std::vector<float> t = random_values(rows * cols, 3, 0.0f, 1.0f);
      if (loss == Loss::kKlDiv) {  // probability rows
        for (int64_t r = 0; r < rows; ++r) {
          double sum = 0;
          for (int64_t c = 0; c < cols; ++c) sum += t[r * cols + c];
          for (int64_t c = 0; c < cols; ++c) t[r * cols + c] /= static_cast<float>(sum);
        }
      }
      target = Tensor::from_vector(t, {rows, cols}, device);
    }
  }
  void run(Loss loss) { mlpx::loss_forward_backward(loss, output, target, row_loss, &grad); }
};

// output and grad: rows x cols floats each; target: as many floats, or rows int32 labels;
// row_loss: rows floats.
int64_t bytes_moved(Loss loss, int64_t rows, int64_t cols) {
  const int64_t matrix = rows * cols * static_cast<int64_t>(sizeof(float));
  const int64_t vector = rows * static_cast<int64_t>(sizeof(float));
  const int64_t target = mlpx::loss_uses_class_labels(loss) ? vector : matrix;
  return 2 * matrix + target + vector;
}

void BM_LossCpu(benchmark::State& state, Loss loss) {
  const int64_t rows = state.range(0), cols = state.range(1);
  Case c(loss, rows, cols, Device::cpu());
  for (auto _ : state) {
    c.run(loss);
    benchmark::DoNotOptimize(c.grad.raw_data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * bytes_moved(loss, rows, cols));
  state.SetItemsProcessed(state.iterations() * rows * cols);
}

void BM_LossGpu(benchmark::State& state, Loss loss) {
  if (!mlpx::cuda_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
#if MLPX_WITH_CUDA
  const int64_t rows = state.range(0), cols = state.range(1);
  const Device gpu = Device::cuda();
  Case c(loss, rows, cols, gpu);
  mlpx::bench::time_gpu_iterations(state, gpu, [&] { c.run(loss); });
  state.SetBytesProcessed(state.iterations() * bytes_moved(loss, rows, cols));
  state.SetItemsProcessed(state.iterations() * rows * cols);
#endif
}

void register_all() {
  for (Loss loss : kAll) {
    const std::string name = mlpx::loss_name(loss);
    auto* cpu = benchmark::RegisterBenchmark(("BM_LossCpu/" + name).c_str(), BM_LossCpu, loss)
                    ->ArgNames({"rows", "cols"})
                    ->Args({128, 10})
                    ->Args({1024, 1000});
    auto* gpu = benchmark::RegisterBenchmark(("BM_LossGpu/" + name).c_str(), BM_LossGpu, loss)
                    ->ArgNames({"rows", "cols"})
                    ->Args({128, 10})      // a Fashion-MNIST batch: launch-bound
                    ->Args({8192, 1000})   // 32 MB of logits
                    ->Args({16384, 1024})  // 64 MB per tensor
                    ->Args({65536, 1024})  // 256 MB per tensor
                    ->Args({2048, 32768})  // wide rows: the block-per-row kernel
                    ->UseManualTime()
                    ->Unit(benchmark::kMicrosecond);
    if (loss == Loss::kCrossEntropy) cpu->Args({8192, 1000});
    (void)gpu;
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
