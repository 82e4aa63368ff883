// Data-parallel training: N ranks with a global batch B train as one process with batch B
// does, up to the order of the gradient sum. Run alone (N = 1) by ctest, and under mpirun with
// 2 and 3 ranks (dist_mpi_np2, dist_mpi_np3 in tests/CMakeLists.txt).
#include "train/data_parallel.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "mlpx/checkpoint.h"
#include "mlpx/schedule.h"
#include "mlpx/training.h"
#include "test_util.h"

namespace mlpx {
namespace {

namespace fs = std::filesystem;

// 610 rows and batch 30: 20 full batches and a last one of 10 rows, which 3 ranks split 3/3/4
// (and 2 ranks 5/5); 10 epochs are 210 steps.
constexpr int64_t kRows = 610, kBatch = 30, kEpochs = 10;

Dataset make_data(DType dtype) {
  SyntheticConfig synthetic;
  synthetic.features = 8;
  synthetic.classes = 4;
  Dataset data = make_synthetic(synthetic, kRows, /*seed=*/5, /*part=*/0);
  if (dtype == DType::kFloat64) {
    const std::vector<float> x = data.x.to_vector<float>();
    data.x = Tensor::from_vector(std::vector<double>(x.begin(), x.end()), data.x.shape());
  }
  return data;
}

Sequential make_model(DType dtype) {
  Sequential model(8, {{16, Activation::kTanh}, {4, Activation::kIdentity}}, dtype);
  model.init(Init::kLecunNormal, 0.0, 7);
  return model;
}

TrainerOptions options_for(OptimizerType type, bool shard = false) {
  TrainerOptions options;
  options.seed = 3;
  options.loss = Loss::kCrossEntropy;
  options.optimizer.type = type;
  options.optimizer.lr = type == OptimizerType::kSgd ? 0.05 : 1e-3;
  options.optimizer.momentum = type == OptimizerType::kSgd ? 0.9 : 0.0;
  options.train.batch_size = kBatch;
  options.train.epochs = kEpochs;
  options.train.shard_optimizer = shard;
  return options;
}

std::vector<double> as_doubles(const Tensor& t) {
  if (t.dtype() == DType::kFloat64) return t.to_vector<double>();
  const std::vector<float> f = t.to_vector<float>();
  return {f.begin(), f.end()};
}

// The parameters after kEpochs epochs, alone (ranks nullptr) or as this process's rank; the
// optimizer's whole state (gathered when sharded) goes to `state` when given.
std::vector<double> train(DType dtype, OptimizerType type, dist::Communicator* ranks,
                          bool shard = false, std::vector<double>* state = nullptr) {
  Sequential model = make_model(dtype);
  const TrainerOptions options = options_for(type, shard);
  Trainer trainer = data_parallel_trainer(options, model, make_data(dtype), ranks);
  for (int64_t e = 0; e < kEpochs; ++e) trainer.run_epoch(options.optimizer.lr);
  EXPECT_EQ(trainer.optimizer().steps(), 210);
  if (state != nullptr) {
    state->clear();
    for (const auto& [name, buffer] : trainer.optimizer_state()) {
      EXPECT_EQ(buffer.numel(), model.num_params()) << name;
      const std::vector<double> values = as_doubles(buffer);
      state->insert(state->end(), values.begin(), values.end());
    }
  }
  if (dtype == DType::kFloat64) return model.params().to_vector<double>();
  const std::vector<float> p = model.params().to_vector<float>();
  return {p.begin(), p.end()};
}

uint64_t hash_of(const std::vector<double>& values) {
  uint64_t h = 1469598103934665603ull;
  const auto* bytes = reinterpret_cast<const unsigned char*>(values.data());
  for (size_t i = 0; i < values.size() * sizeof(double); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  return h;
}

// Every rank holds the same bits: the all-gathered hashes are one value.
void expect_same_on_every_rank(const std::vector<double>& values) {
  const std::vector<uint64_t> hashes = dist::world().all_gather(hash_of(values));
  for (size_t r = 1; r < hashes.size(); ++r) EXPECT_EQ(hashes[r], hashes[0]) << "rank " << r;
}

// |a - b| <= rtol * max(|b|, the parameters' largest magnitude / 100): relative to each value,
// with a floor for the few near zero.
::testing::AssertionResult close_to(const std::vector<double>& a, const std::vector<double>& b,
                                    double rtol) {
  double largest = 0;
  for (double v : b) largest = std::max(largest, std::abs(v));
  return test::all_close(a, b, rtol * largest / 100.0, rtol);
}

// Optimizer state: running sums of gradients, whose small entries carry the rounding of the
// large ones, so the bound is rtol relative to the state's largest magnitude.
::testing::AssertionResult state_close_to(const std::vector<double>& a,
                                          const std::vector<double>& b, double rtol) {
  double largest = 0;
  for (double v : b) largest = std::max(largest, std::abs(v));
  return test::all_close(a, b, rtol * largest, rtol);
}

struct Case {
  DType dtype;
  OptimizerType optimizer;
  double rtol;  // the issue's bound: 1e-5 in float32, 1e-12 in float64
  bool shard;   // train.shard_optimizer (ZeRO-1)
};

class DataParallel : public ::testing::TestWithParam<Case> {};

TEST_P(DataParallel, EqualsOneProcessWithTheSameGlobalBatch) {
  const Case c = GetParam();
  std::vector<double> alone_state, ranked_state;
  const std::vector<double> alone = train(c.dtype, c.optimizer, nullptr, false, &alone_state);
  const std::vector<double> ranked =
      train(c.dtype, c.optimizer, &dist::world(), c.shard, &ranked_state);
  EXPECT_TRUE(close_to(ranked, alone, c.rtol)) << dist::world().size() << " ranks";
  // The optimizer's whole state (what a checkpoint holds) matches too, sharded or not.
  EXPECT_TRUE(state_close_to(ranked_state, alone_state, c.rtol)) << "optimizer state";
  expect_same_on_every_rank(ranked);
  // A repeat of the same N-rank run gives the same bits.
  EXPECT_EQ(train(c.dtype, c.optimizer, &dist::world(), c.shard), ranked);
}

INSTANTIATE_TEST_SUITE_P(
    Optimizers, DataParallel,
    ::testing::Values(Case{DType::kFloat32, OptimizerType::kAdam, 1e-5, false},
                      Case{DType::kFloat32, OptimizerType::kSgd, 1e-5, false},
                      Case{DType::kFloat64, OptimizerType::kAdam, 1e-12, false},
                      Case{DType::kFloat64, OptimizerType::kSgd, 1e-12, false},
                      Case{DType::kFloat32, OptimizerType::kAdam, 1e-5, true},
                      Case{DType::kFloat32, OptimizerType::kSgd, 1e-5, true},
                      Case{DType::kFloat64, OptimizerType::kAdam, 1e-12, true},
                      Case{DType::kFloat64, OptimizerType::kSgd, 1e-12, true}),
    [](const ::testing::TestParamInfo<Case>& info) {
      return std::string(info.param.dtype == DType::kFloat64 ? "Float64" : "Float32") +
             (info.param.optimizer == OptimizerType::kSgd ? "SgdMomentum" : "Adam") +
             (info.param.shard ? "Sharded" : "");
    });

// The training knobs over the ranks: clipping takes the norm of the summed gradient, each rank
// accumulates the summed gradients of the group, label smoothing, decay of the weights only and
// a onecycle rate: N ranks equal one process (float64, 3 epochs).
TEST(DataParallelKnobs, ClipAccumulateSmoothingDecayAndOneCycleEqualOneProcess) {
  auto run = [](dist::Communicator* ranks) {
    Sequential model = make_model(DType::kFloat64);
    TrainerOptions options = options_for(OptimizerType::kAdamW);
    options.label_smoothing = 0.1;
    options.optimizer.weight_decay = 0.05;
    options.optimizer.decay = Decay::kWeights;
    options.train.clip_grad_norm = 0.05;
    options.train.accumulate_steps = 4;
    Trainer trainer = data_parallel_trainer(options, model, make_data(DType::kFloat64), ranks);
    ScheduleConfig schedule;
    schedule.type = ScheduleType::kOneCycle;
    trainer.set_one_cycle(one_cycle_plan(schedule, 1e-2, 3 * trainer.steps_per_epoch()));
    std::vector<double> norms;
    for (int e = 0; e < 3; ++e) norms.push_back(trainer.run_epoch(1e-2).grad_norm);
    EXPECT_EQ(trainer.optimizer().steps(), 3 * 6);  // 21 batches an epoch, groups of 4
    std::vector<double> out = model.params().to_vector<double>();
    out.insert(out.end(), norms.begin(), norms.end());
    return out;
  };
  const std::vector<double> alone = run(nullptr);
  const std::vector<double> ranked = run(&dist::world());
  EXPECT_TRUE(close_to(ranked, alone, 1e-12)) << dist::world().size() << " ranks";
  expect_same_on_every_rank(ranked);
}

// Sharded, each rank keeps 1/N of the optimizer state.
TEST(DataParallelSharding, OptimizerStatePerRankIsItsShard) {
  dist::Communicator& ranks = dist::world();
  Sequential model = make_model(DType::kFloat32);
  Trainer trainer = data_parallel_trainer(options_for(OptimizerType::kAdam, true), model,
                                          make_data(DType::kFloat32), &ranks);
  const dist::Shard mine = dist::shard_of(model.num_params(), ranks.rank(), ranks.size());
  for (const auto& [name, buffer] : trainer.optimizer().state()) {
    EXPECT_EQ(buffer.numel(), mine.count) << name << " of " << model.num_params();
  }
  EXPECT_EQ(ranks.all_reduce_sum(static_cast<double>(mine.count)),
            static_cast<double>(model.num_params()));
}

// reduce_scatter_sum and all_gather_shards on values whose sums are exact.
TEST(DataParallelSharding, ShardCollectivesAreExact) {
  dist::Communicator& ranks = dist::world();
  const int64_t total = 11;
  const int r = ranks.rank(), n = ranks.size();
  std::vector<double> values(total);
  for (int64_t i = 0; i < total; ++i) values[i] = static_cast<double>(i * 10 + r);
  Tensor full = Tensor::from_vector(values, {total});
  const dist::Shard mine = dist::shard_of(total, r, n);
  Tensor shard({mine.count}, DType::kFloat64);
  ranks.reduce_scatter_sum(full, shard);
  const double rank_sum = n * (n - 1) / 2.0;
  const std::vector<double> reduced = shard.to_vector<double>();
  for (int64_t i = 0; i < mine.count; ++i) {
    EXPECT_EQ(reduced[i], static_cast<double>(mine.first + i) * 10 * n + rank_sum);
  }
  // Each rank writes -(index) into its shard of `full`; the gather gives everyone all of them.
  for (int64_t i = 0; i < mine.count; ++i) {
    full.data<double>()[mine.first + i] = -static_cast<double>(mine.first + i);
  }
  ranks.all_gather_shards(full);
  const std::vector<double> gathered = full.to_vector<double>();
  for (int64_t i = 0; i < total; ++i) EXPECT_EQ(gathered[i], -static_cast<double>(i));
}

// Batch norm (a Linear without a bias, then the norm) on N ranks. With train.sync_batchnorm the
// statistics are the whole batch's: 2 epochs equal one process's (rtol 1e-5), parameters and
// running statistics. Without it each rank normalizes its own rows of the batch (DDP without
// SyncBatchNorm): after one step on 30 unshuffled rows, rank r's running mean is
// momentum * the mean of z = x W^T over its rows [floor(30 r / N), floor(30 (r + 1) / N)).
std::vector<LayerSpec> batch_norm_layers() {
  LayerSpec hidden(16, Activation::kTanh);
  hidden.norm = Norm::kBatch;
  hidden.bias = false;
  return {hidden, {4, Activation::kIdentity}};
}

std::vector<double> train_batch_norm(dist::Communicator* ranks, bool sync, int64_t rows, int epochs,
                                     Sequential* out = nullptr) {
  Sequential model(8, batch_norm_layers());
  model.init(Init::kXavierNormal, 0.0, 7);
  TrainerOptions options = options_for(OptimizerType::kAdam);
  options.train.sync_batchnorm = sync;
  options.train.shuffle = rows == kRows;  // one unshuffled batch: the ranks' rows are known
  Dataset data = make_data(DType::kFloat32);
  data.x = data.x.rows(0, rows).clone();
  data.labels = data.labels.rows(0, rows).clone();
  Trainer trainer = data_parallel_trainer(options, model, data, ranks);
  for (int e = 0; e < epochs; ++e) trainer.run_epoch(options.optimizer.lr);
  std::vector<double> values = as_doubles(model.params());
  const std::vector<double> buffers = as_doubles(model.buffers());
  values.insert(values.end(), buffers.begin(), buffers.end());
  if (out != nullptr) *out = model;
  return values;
}

TEST(DataParallelBatchNorm, SynchronisedEqualsOneProcess) {
  const std::vector<double> alone = train_batch_norm(nullptr, true, kRows, 2);
  const std::vector<double> ranked = train_batch_norm(&dist::world(), true, kRows, 2);
  EXPECT_TRUE(close_to(ranked, alone, 1e-5)) << dist::world().size() << " ranks";
  expect_same_on_every_rank(ranked);
  // 32 rows: a last batch of 2 rows, which leaves rank 0 of 3 none; it still joins the sums.
  const std::vector<double> short_alone = train_batch_norm(nullptr, true, 32, 2);
  const std::vector<double> short_ranked = train_batch_norm(&dist::world(), true, 32, 2);
  EXPECT_TRUE(close_to(short_ranked, short_alone, 1e-5)) << dist::world().size() << " ranks";
  expect_same_on_every_rank(short_ranked);
}

TEST(DataParallelBatchNorm, UnsynchronisedRanksUseTheirOwnRows) {
  dist::Communicator& ranks = dist::world();
  const int64_t rows = kBatch;
  for (bool sync : {false, true}) {
    SCOPED_TRACE(sync ? "sync_batchnorm" : "per rank");
    Sequential initial(8, batch_norm_layers());
    initial.init(Init::kXavierNormal, 0.0, 7);
    Sequential trained(8, batch_norm_layers());  // the trained model (its own storage)
    train_batch_norm(&ranks, sync, rows, 1, &trained);
    // z = x W^T over this rank's rows (all of them when synchronised), from the initial weights.
    const int n = ranks.size(), r = ranks.rank();
    const int64_t first = sync ? 0 : rows * r / n, last = sync ? rows : rows * (r + 1) / n;
    const std::vector<float> x = make_data(DType::kFloat32).x.to_vector<float>();
    const std::vector<float> w = initial.weight(0).to_vector<float>();
    std::vector<double> expected(16, 0.0);
    for (int64_t row = first; row < last; ++row) {
      for (int64_t u = 0; u < 16; ++u) {
        double z = 0;
        for (int64_t k = 0; k < 8; ++k) z += double(x[row * 8 + k]) * w[u * 8 + k];
        expected[u] += 0.1 * z / static_cast<double>(last - first);
      }
    }
    const std::vector<double> running_mean = as_doubles(trained.buffers().rows(0, 16));
    EXPECT_TRUE(test::all_close(running_mean, expected, 1e-6, 1e-5));
    EXPECT_EQ(trained.buffers().to_vector<float>()[32], 1.0f);  // num_batches_tracked
  }
}

// A checkpoint holds no trace of N: 4 epochs alone, then 6 more as this job's ranks, end
// where 10 epochs on one process do.
TEST(DataParallelResume, ContinuesWithAnotherNumberOfRanks) {
  const TrainerOptions options = options_for(OptimizerType::kAdam);
  Sequential model = make_model(DType::kFloat32);
  {
    Trainer first(options, model, make_data(DType::kFloat32));
    for (int e = 0; e < 4; ++e) first.run_epoch(options.optimizer.lr);
    Sequential resumed = make_model(DType::kFloat32);
    resumed.params().copy_from(model.params());
    Trainer second =
        data_parallel_trainer(options, resumed, make_data(DType::kFloat32), &dist::world());
    second.restore(first.epoch(), first.optimizer().steps(), first.optimizer().state());
    for (int e = 4; e < kEpochs; ++e) second.run_epoch(options.optimizer.lr);
    const std::vector<float> p = resumed.params().to_vector<float>();
    const std::vector<double> ranked(p.begin(), p.end());
    EXPECT_TRUE(close_to(ranked, train(DType::kFloat32, OptimizerType::kAdam, nullptr), 1e-5));
    expect_same_on_every_rank(ranked);
  }
}

TEST(DataParallelRun, RankZeroAloneWritesAndEveryRankReportsTheSame) {
  dist::Communicator& ranks = dist::world();
  // One folder for the job, named after rank 0's process.
  const uint64_t leader = ranks.all_gather(static_cast<uint64_t>(getpid()))[0];
  const fs::path dir = fs::temp_directory_path() / ("mlpx-dist-" + std::to_string(leader));
  if (ranks.rank() == 0) fs::create_directories(dir);
  ranks.barrier();
  Config config = Config::from_json(R"({
    "device": "cpu", "seed": 2,
    "data": {"source": "synthetic", "validation_split": 0.1,
             "synthetic": {"train_samples": 500, "test_samples": 101, "features": 6, "classes": 3}},
    "model": {"layers": [{"units": 12, "activation": "relu"}, {"units": 3, "activation": "identity"}]},
    "train": {"epochs": 3, "batch_size": 64}
  })");
  config.output.checkpoint = (dir / "model.safetensors").string();
  config.output.log = (dir / "log.jsonl").string();
  std::vector<std::string> started;
  RunOptions options;
  options.callbacks.on_start = [&](const std::vector<std::string>& lines) { started = lines; };
  const RunResult result = run_training(config, options);
  ranks.barrier();
  EXPECT_EQ(started.empty(), ranks.rank() != 0);  // rank 0 alone reports
  EXPECT_EQ(result.rank, ranks.rank());
  EXPECT_EQ(result.ranks, ranks.size());
  // No ASSERT before a collective: a rank that returned early would leave the others waiting.
  EXPECT_EQ(result.epochs.size(), 3u);
  const EpochMetrics last = result.epochs.empty() ? EpochMetrics{} : result.epochs.back();
  expect_same_on_every_rank({result.test.loss, result.test.accuracy, last.val_loss, last.train_loss,
                             last.train_accuracy});
  EXPECT_EQ(result.test.samples, 101);
  // The checkpoint is this model's, whoever reads it.
  const Checkpoint checkpoint = load_checkpoint(config.output.checkpoint);
  EXPECT_EQ(checkpoint.progress.epoch, 3);
  std::ifstream log(config.output.log);
  int lines = 0;
  for (std::string line; std::getline(log, line);) ++lines;
  EXPECT_EQ(lines, 4);  // 3 epochs and the test line, written once

  // Sharded: the same training, and a checkpoint of the same layout and values.
  config.train.shard_optimizer = true;
  config.output.checkpoint = (dir / "sharded.safetensors").string();
  config.output.log.clear();
  run_training(config, {});
  ranks.barrier();
  const Checkpoint sharded = load_checkpoint(config.output.checkpoint);
  EXPECT_TRUE(
      close_to(as_doubles(sharded.model.params()), as_doubles(checkpoint.model.params()), 1e-5));
  EXPECT_EQ(sharded.optimizer_state.size(), checkpoint.optimizer_state.size());
  for (size_t i = 0;
       i < std::min(sharded.optimizer_state.size(), checkpoint.optimizer_state.size()); ++i) {
    EXPECT_EQ(sharded.optimizer_state[i].first, checkpoint.optimizer_state[i].first);
    EXPECT_TRUE(state_close_to(as_doubles(sharded.optimizer_state[i].second),
                               as_doubles(checkpoint.optimizer_state[i].second), 1e-5));
  }
  ranks.barrier();
  if (ranks.rank() == 0) fs::remove_all(dir);
}

// Dropout: a rank draws the masks of its own rows of the batch (element indices count from the
// batch's first row), so N ranks drop the units one process drops. 2 and 3 ranks split the
// batch of 30 at rows that are no multiple of a Philox block's four elements.
TEST(DataParallelDropout, EqualsOneProcessWithTheSameMasks) {
  auto run = [](double dropout, dist::Communicator* ranks) {
    Sequential model(8,
                     {{16, Activation::kTanh, std::nullopt, dropout}, {4, Activation::kIdentity}},
                     DType::kFloat64);
    model.init(Init::kLecunNormal, 0.0, 7);
    const TrainerOptions options = options_for(OptimizerType::kAdam);
    Trainer trainer = data_parallel_trainer(options, model, make_data(DType::kFloat64), ranks);
    for (int64_t e = 0; e < 3; ++e) trainer.run_epoch(options.optimizer.lr);
    return model.params().to_vector<double>();
  };
  const std::vector<double> alone = run(0.3, nullptr);
  const std::vector<double> ranked = run(0.3, &dist::world());
  EXPECT_TRUE(close_to(ranked, alone, 1e-12)) << dist::world().size() << " ranks";
  expect_same_on_every_rank(ranked);
  EXPECT_FALSE(close_to(run(0.0, nullptr), alone, 1e-6));  // the masks did act
}

}  // namespace
}  // namespace mlpx

namespace mlpx {
namespace {

// Rank 0's progress callback stops the run (as a Ctrl-C in Python does): every rank stops after
// the same step, and none waits for the others in a collective.
TEST(DataParallelStop, RankZerosCallbackStopsEveryRank) {
  Config config;
  config.device = "cpu";
  config.data.source = DataSource::kSynthetic;
  config.data.synthetic.train_samples = 600;
  config.data.synthetic.test_samples = 60;
  config.data.synthetic.features = 8;
  config.data.synthetic.classes = 4;
  config.model.layers = {{16, Activation::kTanh}, {4, Activation::kIdentity}};
  config.train.epochs = 2;
  config.train.batch_size = 30;
  config.output.checkpoint = "";
  config.output.log = "";
  RunOptions options;
  int64_t calls = 0;
  options.callbacks.on_batch = [&calls](const BatchProgress& p) {
    ++calls;
    return !(p.epoch == 2 && p.batch == 3);
  };
  const RunResult result = run_training(config, options);
  EXPECT_TRUE(result.stopped);
  ASSERT_EQ(result.epochs.size(), 1u);  // the stopped epoch is not reported
  // Only rank 0 calls the callback: 18 steps of epoch 1 (540 rows at batch 30), 3 of epoch 2.
  EXPECT_EQ(calls, dist::world().rank() == 0 ? 21 : 0);
  EXPECT_EQ(dist::world().all_reduce_sum(1.0), static_cast<double>(dist::world().size()));
}

}  // namespace
}  // namespace mlpx
