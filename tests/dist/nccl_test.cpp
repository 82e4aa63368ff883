// NCCL collectives (train.collectives "nccl"): the device communicator's calls on device
// buffers, and training through them. One rank runs wherever a CUDA device is (the GPU
// simulator included, whose NCCL forms one-rank communicators); the multi-rank cases need one
// real GPU per rank of the machine and skip elsewhere.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "dist/communicator.h"
#include "dist/device_communicator.h"
#include "mlpx/error.h"
#include "mlpx/training.h"
#include "test_util.h"
#include "train/data_parallel.h"

#if defined(MLPX_SIM)
#include "mlpx_sim/runtime.h"
#endif

#define MLPX_REQUIRE_NCCL()                                                     \
  do {                                                                          \
    MLPX_REQUIRE_CUDA();                                                        \
    if (!::mlpx::dist::built_with_nccl()) GTEST_SKIP() << "built without NCCL"; \
  } while (0)

// The one-rank cases run in a plain process; under mpirun every rank would repeat them alone.
#define MLPX_REQUIRE_ONE_RANK()                                                         \
  do {                                                                                  \
    if (::mlpx::dist::world().size() > 1) GTEST_SKIP() << "a one-rank case, run alone"; \
  } while (0)

namespace mlpx {
namespace {

constexpr int64_t kRows = 610, kBatch = 30, kEpochs = 2;

Dataset make_data(Device device, int64_t rows = kRows) {
  SyntheticConfig synthetic;
  synthetic.features = 8;
  synthetic.classes = 4;
  return make_synthetic(synthetic, rows, /*seed=*/5, /*part=*/0).to(device);
}

// train.bucket_mb small enough for one bucket per layer: every layer's all-reduce overlaps.
constexpr double kBucketPerLayer = 1e-9;

TrainerOptions options_for(Collectives collectives, bool shard, double bucket_mb = 25.0) {
  TrainerOptions options;
  options.seed = 3;
  options.optimizer.type = OptimizerType::kAdam;
  options.optimizer.lr = 1e-3;
  options.train.batch_size = kBatch;
  options.train.epochs = kEpochs;
  options.train.shard_optimizer = shard;
  options.train.collectives = collectives;
  options.train.bucket_mb = bucket_mb;
  return options;
}

struct Trained {
  std::vector<float> params, state;
  int64_t replays = 0;
  bool on_device = false;
};

Trained train(Device device, Collectives collectives, bool shard, dist::Communicator* ranks,
              double bucket_mb = 25.0) {
  Sequential model(8, {{16, Activation::kTanh}, {4, Activation::kIdentity}}, DType::kFloat32,
                   device);
  model.init(Init::kLecunNormal, 0.0, 7);
  const TrainerOptions options = options_for(collectives, shard, bucket_mb);
  Trainer trainer = data_parallel_trainer(options, model, make_data(device), ranks);
  for (int64_t e = 0; e < kEpochs; ++e) trainer.run_epoch(options.optimizer.lr);
  Trained out;
  out.params = model.params().to_vector<float>();
  for (const auto& [name, buffer] : trainer.optimizer_state()) {
    const std::vector<float> values = buffer.to_vector<float>();
    out.state.insert(out.state.end(), values.begin(), values.end());
  }
  out.replays = trainer.graph_replays();
  out.on_device = trainer.reduces_on_device();
  return out;
}

TEST(NcclOneRank, CollectivesOnADeviceBuffer) {
  MLPX_REQUIRE_NCCL();
  MLPX_REQUIRE_ONE_RANK();
  const Device gpu = Device::cuda(0);
  dist::DeviceCommunicator nccl(dist::single_rank(), gpu);
  EXPECT_EQ(nccl.rank(), 0);
  EXPECT_EQ(nccl.size(), 1);
  const std::vector<float> values = test::random_values<float>(37, 1);
  Tensor buffer = Tensor::from_vector(values, {37}, gpu);
  nccl.all_reduce_sum(buffer);  // one rank: the sum is the buffer
  EXPECT_EQ(buffer.to_vector<float>(), values);
  Tensor shard = Tensor::zeros({37}, DType::kFloat32, gpu);
  nccl.reduce_scatter_sum(buffer, shard);  // one rank's shard is the whole buffer
  EXPECT_EQ(shard.to_vector<float>(), values);
  nccl.all_gather_shards(shard);
  EXPECT_EQ(shard.to_vector<float>(), values);
  const std::vector<double> wide = {1.5, -2.25};
  Tensor buffer64 = Tensor::from_vector(wide, {2}, gpu);
  nccl.all_reduce_sum(buffer64);
  EXPECT_EQ(buffer64.to_vector<double>(), wide);
}

TEST(NcclOneRank, RejectsBuffersItCannotCarry) {
  MLPX_REQUIRE_NCCL();
  MLPX_REQUIRE_ONE_RANK();
  const Device gpu = Device::cuda(0);
  dist::DeviceCommunicator nccl(dist::single_rank(), gpu);
  Tensor on_host = Tensor::zeros({4}, DType::kFloat32);
  EXPECT_THROW(nccl.all_reduce_sum(on_host), ShapeError);
  Tensor ints = Tensor::zeros({4}, DType::kInt32, gpu);
  EXPECT_THROW(nccl.all_reduce_sum(ints), ShapeError);
  Tensor full = Tensor::zeros({8}, DType::kFloat32, gpu),
         small = Tensor::zeros({3}, DType::kFloat32, gpu);
  EXPECT_THROW(nccl.reduce_scatter_sum(full, small), ShapeError);
  EXPECT_THROW(dist::DeviceCommunicator(dist::single_rank(), Device::cpu()), ValueError);
}

// One rank through NCCL trains as one rank without it, bit for bit (a one-rank sum is the
// buffer), with the step still replayed from a CUDA graph: after the backward pass, in one
// bucket per layer on a second stream (forked and joined inside the graph), and sharded (one
// shard: the whole buffer) through the reduce-scatter and all-gather.
TEST(NcclOneRank, TrainsAsTheHostPathDoesInsideTheGraph) {
  MLPX_REQUIRE_NCCL();
  MLPX_REQUIRE_ONE_RANK();
  const Device gpu = Device::cuda(0);
  const Trained host = train(gpu, Collectives::kHost, false, nullptr);
  EXPECT_FALSE(host.on_device);
  struct Variant {
    const char* name;
    bool shard;
    double bucket_mb;
  };
  for (const Variant v :
       {Variant{"one bucket", false, 25.0}, Variant{"a bucket per layer", false, kBucketPerLayer},
        Variant{"sharded", true, 25.0}}) {
    const Trained nccl = train(gpu, Collectives::kNccl, v.shard, nullptr, v.bucket_mb);
    EXPECT_TRUE(nccl.on_device);
    EXPECT_EQ(nccl.params, host.params) << v.name;
    EXPECT_EQ(nccl.state, host.state) << v.name;
    // Every epoch's full-size steps but the first are replays: 20 - 1 per epoch.
    EXPECT_EQ(nccl.replays, kEpochs * (kRows / kBatch - 1)) << v.name;
  }
}

#if defined(MLPX_SIM)
// The all-reduce adds no host wait to a step: an epoch of 20 steps waits as often as one of 5.
TEST(NcclOneRank, StepsDoNotWaitOnTheHost) {
  MLPX_REQUIRE_ONE_RANK();
  const Device gpu = Device::cuda(0);
  for (const bool graph : {true, false}) {
    const auto waits_of_epoch = [&](int64_t batch, double bucket_mb) {
      Sequential model(8, {{16, Activation::kTanh}, {4, Activation::kIdentity}}, DType::kFloat32,
                       gpu);
      model.init(Init::kLecunNormal, 0.0, 7);
      TrainerOptions options = options_for(Collectives::kNccl, false, bucket_mb);
      options.train.batch_size = batch;
      options.train.cuda_graph = graph;
      Trainer trainer(options, model, make_data(gpu, 600));
      trainer.run_epoch(1e-3);  // creates what the first epoch creates
      const uint64_t before = mlpx_sim::host_waits();
      trainer.run_epoch(1e-3);
      return mlpx_sim::host_waits() - before;
    };
    for (const double bucket_mb : {25.0, kBucketPerLayer}) {
      EXPECT_EQ(waits_of_epoch(30, bucket_mb), waits_of_epoch(120, bucket_mb))
          << (graph ? "graph" : "plain launches") << ", bucket_mb " << bucket_mb;
    }
  }
}
#endif

// Buckets gather whole layers, last layer first, and tile the flat buffer.
TEST(GradientBuckets, GatherWholeLayersFromTheLastAndTileTheBuffer) {
  // Layers of 40, 20, 30 and 10 elements (float32: 160, 80, 120 and 40 bytes).
  const std::vector<int64_t> first = {0, 40, 60, 90, 100};
  const auto as_tuples = [](const std::vector<dist::GradientBucket>& buckets) {
    std::vector<std::vector<int64_t>> out;
    for (const auto& b : buckets) {
      out.push_back({static_cast<int64_t>(b.after_layer), b.first, b.count});
    }
    return out;
  };
  // At least 100 bytes: layers 3 + 2 (160 bytes), then 1 + 0 (what is left).
  EXPECT_EQ(as_tuples(dist::gradient_buckets(first, 4, 100)),
            (std::vector<std::vector<int64_t>>{{2, 60, 40}, {0, 0, 60}}));
  // Tiny buckets: one per layer.
  EXPECT_EQ(as_tuples(dist::gradient_buckets(first, 4, 1)),
            (std::vector<std::vector<int64_t>>{{3, 90, 10}, {2, 60, 30}, {1, 40, 20}, {0, 0, 40}}));
  // 0, or more than the whole buffer: one bucket, started once the whole backward is enqueued.
  for (const double bytes : {0.0, 1e9}) {
    EXPECT_EQ(as_tuples(dist::gradient_buckets(first, 4, bytes)),
              (std::vector<std::vector<int64_t>>{{0, 0, 100}}));
  }
}

TEST(NcclCollectives, NcclOnACpuModelIsAnError) {
  MLPX_REQUIRE_ONE_RANK();
  Sequential model(8, {{4, Activation::kIdentity}});
  model.init(Init::kLecunNormal, 0.0, 7);
  try {
    Trainer trainer(options_for(Collectives::kNccl, false), model, make_data(Device::cpu()));
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("train.collectives \"nccl\" expects a model on a CUDA"),
              std::string::npos)
        << e.what();
  }
}

// N ranks on N GPUs of one machine, NCCL between them: the equivalence against one
// process with the same global batch. Needs a real GPU per local rank.
TEST(NcclRanks, TrainsAsOneProcessDoes) {
  MLPX_REQUIRE_NCCL();
  dist::Communicator& ranks = dist::world();
#if defined(MLPX_SIM)
  GTEST_SKIP() << "the simulator's NCCL forms one-rank communicators only";
#endif
  if (ranks.size() == 1) GTEST_SKIP() << "one rank (run under mpirun with one rank per GPU)";
  if (cuda_device_count() < ranks.local_size()) {
    GTEST_SKIP() << ranks.local_size() << " ranks on this machine, " << cuda_device_count()
                 << " GPU(s)";
  }
  const Device gpu = Device::cuda(ranks.local_rank());
  const Trained alone = train(gpu, Collectives::kHost, false, nullptr);
  for (const bool shard : {false, true}) {
    const Trained ranked = train(gpu, Collectives::kNccl, shard, &ranks);
    EXPECT_TRUE(ranked.on_device);
    EXPECT_TRUE(test::all_close(ranked.params, alone.params, 1e-7, 1e-5));
    EXPECT_EQ(train(gpu, Collectives::kNccl, shard, &ranks).params, ranked.params)
        << "a repeat differs";
  }
}

}  // namespace
}  // namespace mlpx
