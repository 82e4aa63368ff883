// evaluate() on a CUDA device: the batches' temporaries (predict's per-layer outputs) are
// allocated and freed in stream order, so the host never waits for the device inside the
// loop. Counted by the GPU simulator (MLPX_CUDA=SIM), which sees every call that waits.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "mlpx/dataset.h"
#include "mlpx/model.h"
#include "mlpx/training.h"
#include "test_util.h"

#if defined(MLPX_SIM)
#include "mlpx_sim/runtime.h"
#endif

namespace mlpx {
namespace {

TEST(EvaluateCuda, HostWaitsDoNotGrowWithTheNumberOfBatches) {
  MLPX_REQUIRE_CUDA();
#if !defined(MLPX_SIM)
  GTEST_SKIP() << "counts the GPU simulator's host waits (a build with MLPX_CUDA=SIM)";
#else
  const Device gpu = Device::cuda(0);
  const int64_t rows = 64, inputs = 8;
  Sequential model(inputs,
                   {{16, Activation::kRelu}, {16, Activation::kTanh}, {3, Activation::kIdentity}},
                   DType::kFloat32, gpu);
  model.init(Init::kHeNormal, 0, 5);
  Dataset data;
  data.name = "test";
  data.x = Tensor::from_vector(test::random_values<float>(rows * inputs, 7), {rows, inputs}, gpu);
  std::vector<int32_t> labels(rows);
  for (int64_t i = 0; i < rows; ++i) labels[i] = static_cast<int32_t>(i % 3);
  data.labels = Tensor::from_vector(labels, {rows}, gpu);

  const auto waits_of = [&](int64_t batch, Evaluation& out) {
    const uint64_t before = mlpx_sim::host_waits();
    out = evaluate(model, Loss::kCrossEntropy, data, batch);
    return mlpx_sim::host_waits() - before;
  };
  Evaluation whole, batched;
  waits_of(rows, whole);  // the first use creates the device's context
  const uint64_t one_batch = waits_of(rows, whole);
  const uint64_t sixteen_batches = waits_of(4, batched);
  EXPECT_EQ(sixteen_batches, one_batch) << "evaluate waited for the device " << sixteen_batches
                                        << " times over 16 batches, " << one_batch << " over one";
  EXPECT_NEAR(batched.loss, whole.loss, 1e-5);
  EXPECT_EQ(batched.accuracy, whole.accuracy);
#endif
}

}  // namespace
}  // namespace mlpx
