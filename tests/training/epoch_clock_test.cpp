// An epoch's time (and so its samples/s) must cover the device's work: with CUDA graphs off
// nothing else waits for the device before the epoch reads its clock, and kernels still queued
// then would make the GPU look faster than it is. On the GPU simulator (MLPX_CUDA=SIM) work
// queued on a stream runs when the stream is drained, so a one-second item queued on the
// trainer's stream after the last step shows whether the epoch waited for it.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "mlpx/config.h"
#include "mlpx/model.h"
#include "mlpx/training.h"
#include "test_util.h"

#if defined(MLPX_SIM)
#include "kernels/runtime.h"
#include "mlpx_sim/runtime.h"
#endif

namespace mlpx {
namespace {

constexpr double kQueuedSeconds = 1.0;  // the device work queued after the epoch's last step

TEST(EpochClockCuda, EpochTimeCoversTheWorkQueuedOnTheDevice) {
  MLPX_REQUIRE_CUDA();
#if !defined(MLPX_SIM)
  GTEST_SKIP() << "queues work through the GPU simulator's runtime (a build with MLPX_CUDA=SIM)";
#else
  Config c = Config::from_json(R"({
    "device": "cuda",
    "model": {"layers": [{"units": 8, "activation": "relu"}, {"units": 3, "activation": "identity"}]},
    "train": {"batch_size": 16, "cuda_graph": false}
  })");
  const Device gpu = Device::cuda(0);
  const int64_t rows = 64, inputs = 4;
  Dataset train;
  train.name = "train";
  train.x = Tensor::from_vector(test::random_values<float>(rows * inputs, 3), {rows, inputs}, gpu);
  std::vector<int32_t> labels(rows);
  for (int64_t i = 0; i < rows; ++i) labels[i] = static_cast<int32_t>(i % 3);
  train.labels = Tensor::from_vector(labels, {rows}, gpu);
  Sequential model(inputs, {{8, Activation::kRelu}, {3, Activation::kIdentity}}, DType::kFloat32,
                   gpu);
  model.init(Init::kHeNormal, 0, 1);
  Trainer trainer(c, model, train);

  bool queued = false;
  const EpochMetrics m = trainer.run_epoch(1e-3, [&](const BatchProgress& p) {
    if (p.batch == p.batches) {
      // After the last step: device work that takes kQueuedSeconds, on the trainer's stream.
      EXPECT_EQ(
          mlpx_sim::enqueue_work(
              cuda::stream_of(gpu), "the test's one-second item",
              [] { std::this_thread::sleep_for(std::chrono::duration<double>(kQueuedSeconds)); }),
          cudaSuccess);
      queued = true;
    }
    return true;
  });
  ASSERT_TRUE(queued);
  ASSERT_EQ(m.samples, rows);
  // samples / seconds: the epoch's seconds include the queued second only if the epoch
  // synchronised before reading its clock (a bound the sleep guarantees, not a speed).
  EXPECT_LE(m.samples_per_s, static_cast<double>(rows) / kQueuedSeconds)
      << "the epoch read its clock before the device had finished its work";
#endif
}

}  // namespace
}  // namespace mlpx
