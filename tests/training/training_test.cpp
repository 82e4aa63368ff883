#include "mlpx/training.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "mlpx/array_io.h"
#include "mlpx/checkpoint.h"
#include "mlpx/error.h"
#include "mlpx/safetensors.h"
#include "test_util.h"

namespace mlpx {
namespace {

namespace fs = std::filesystem;

class TrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/mlpx-training-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A small synthetic run; callers adjust what they test.
  Config small_config(const std::string& name) const {
    Config c = Config::from_json(R"({
      "device": "cpu",
      "data": {"source": "synthetic",
               "synthetic": {"train_samples": 600, "test_samples": 200, "features": 8, "classes": 4}},
      "model": {"layers": [{"units": 16, "activation": "relu"}, {"units": 4, "activation": "identity"}]},
      "train": {"epochs": 4, "batch_size": 32},
      "schedule": {"type": "step", "step_size": 2, "gamma": 0.5}
    })");
    c.output.checkpoint = path(name + ".safetensors");
    c.output.log = path(name + ".jsonl");
    return c;
  }
  std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  std::string dir_;
};

TEST_F(TrainingTest, LossFallsAndAccuracyRisesForEveryBatchRegime) {
  for (int64_t batch : {1, 32, 0}) {  // SGD, mini-batch, full-batch GD
    Config c = small_config("regime" + std::to_string(batch));
    c.train.batch_size = batch;
    c.train.epochs = batch == 0 ? 30 : 4;
    c.schedule.type = ScheduleType::kNone;
    c.optimizer.lr = batch == 1 ? 1e-3 : 1e-2;
    const RunResult r = run_training(c, {});
    ASSERT_EQ(r.epochs.size(), static_cast<size_t>(c.train.epochs));
    EXPECT_LT(r.epochs.back().train_loss, r.epochs.front().train_loss) << "batch " << batch;
    EXPECT_GT(r.epochs.back().train_accuracy, r.epochs.front().train_accuracy) << "batch " << batch;
    EXPECT_GT(r.test.accuracy, 0.5) << "batch " << batch;  // 4 classes: chance is 0.25
  }
}

TEST_F(TrainingTest, WritesTheLogContract) {
  const Config c = small_config("log");
  run_training(c, {});
  std::ifstream log(c.output.log);
  std::string line;
  int epochs = 0;
  nlohmann::json last;
  while (std::getline(log, line)) {
    last = nlohmann::json::parse(line);
    if (last.contains("epoch")) {
      ++epochs;
      for (const char* key : {"epoch", "lr", "train_loss", "train_accuracy", "val_loss",
                              "val_accuracy", "samples_per_s", "elapsed_s"}) {
        EXPECT_TRUE(last.contains(key)) << key;
      }
    }
  }
  EXPECT_EQ(epochs, 4);
  EXPECT_TRUE(last.contains("test_loss"));
  EXPECT_TRUE(last.contains("test_accuracy"));
}

TEST_F(TrainingTest, ScheduleIsAppliedPerEpoch) {
  const RunResult r = run_training(small_config("lr"), {});
  EXPECT_DOUBLE_EQ(r.epochs[0].lr, 1e-3);
  EXPECT_DOUBLE_EQ(r.epochs[1].lr, 1e-3);
  EXPECT_DOUBLE_EQ(r.epochs[2].lr, 5e-4);
  EXPECT_DOUBLE_EQ(r.epochs[3].lr, 5e-4);
}

// A run saved after epoch 2 and resumed to epoch 4 ends with the same bits as one run of 4.
TEST_F(TrainingTest, ResumeMatchesAnUninterruptedRunBitForBit) {
  for (const char* optimizer : {"adam", "sgd"}) {
    Config full = small_config(std::string("full-") + optimizer);
    full.optimizer.type = parse_optimizer(optimizer);
    full.optimizer.momentum = full.optimizer.type == OptimizerType::kSgd ? 0.9 : 0.0;
    run_training(full, {});

    Config first = full;
    first.output.checkpoint = path(std::string("half-") + optimizer + ".safetensors");
    first.train.epochs = 2;
    run_training(first, {});
    Config rest = full;
    rest.output.checkpoint = path(std::string("resumed-") + optimizer + ".safetensors");
    RunOptions resume;
    resume.resume = first.output.checkpoint;
    const RunResult r = run_training(rest, resume);
    EXPECT_EQ(r.epochs.size(), 2u);

    const Checkpoint a = load_checkpoint(full.output.checkpoint);
    const Checkpoint b = load_checkpoint(rest.output.checkpoint);
    EXPECT_EQ(a.progress.epoch, 4);
    EXPECT_EQ(b.progress.epoch, 4);
    EXPECT_EQ(a.progress.step, b.progress.step);
    EXPECT_EQ(a.model.params().to_vector<float>(), b.model.params().to_vector<float>())
        << optimizer;
    ASSERT_EQ(a.optimizer_state.size(), b.optimizer_state.size());
    for (size_t i = 0; i < a.optimizer_state.size(); ++i) {
      EXPECT_EQ(a.optimizer_state[i].second.to_vector<float>(),
                b.optimizer_state[i].second.to_vector<float>());
    }
  }
}

TEST_F(TrainingTest, InitCheckpointHoldsTheInitialWeights) {
  Config c = small_config("init");
  c.output.init_checkpoint = path("initial.safetensors");
  run_training(c, {});
  const Checkpoint initial = load_checkpoint(c.output.init_checkpoint);
  EXPECT_EQ(initial.progress.step, 0);
  Sequential fresh(8, {{16, Activation::kRelu}, {4, Activation::kIdentity}});
  fresh.init(c.model.init, c.model.init_std, c.seed);
  EXPECT_EQ(initial.model.params().to_vector<float>(), fresh.params().to_vector<float>());
  EXPECT_TRUE(initial.optimizer_state.empty());
}

TEST_F(TrainingTest, DivergenceStopsWithEpochAndStepAndKeepsTheLastCheckpoint) {
  Config c = small_config("diverge");
  c.optimizer.type = OptimizerType::kSgd;
  c.optimizer.lr = 1e30;
  c.loss = Loss::kMse;
  try {
    run_training(c, {});
    FAIL() << "expected divergence";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("epoch 1, step"), std::string::npos) << what;
  }
  EXPECT_FALSE(fs::exists(c.output.checkpoint));  // nothing good to keep: none written
}

TEST_F(TrainingTest, CheckpointRoundTripAndRejections) {
  const Config c = small_config("ckpt");
  run_training(c, {});
  const Checkpoint ck = load_checkpoint(c.output.checkpoint);
  EXPECT_EQ(ck.model.inputs(), 8);
  EXPECT_EQ(ck.model.outputs(), 4);
  EXPECT_EQ(ck.config.to_json(), c.to_json());
  ASSERT_EQ(ck.optimizer_state.size(), 2u);  // adam: exp_avg, exp_avg_sq
  const SafetensorsFile raw = load_safetensors(c.output.checkpoint);
  for (const char* name :
       {"layers.0.weight", "layers.0.bias", "layers.1.weight", "optimizer.exp_avg.layers.0.weight",
        "optimizer.exp_avg_sq.layers.1.bias"}) {
    EXPECT_TRUE(raw.contains(name)) << name;
  }
  EXPECT_EQ(raw.get("layers.0.weight").shape(), (Shape{16, 8}));

  // A checkpoint missing a tensor, with a wrong shape, or with a foreign tensor is refused.
  auto tensors = raw.tensors;
  tensors.erase(tensors.begin());
  save_safetensors(path("missing.safetensors"), tensors, raw.metadata);
  EXPECT_THROW(load_checkpoint(path("missing.safetensors")), IoError);
  tensors = raw.tensors;
  tensors[0].second = Tensor::zeros({8, 16});
  save_safetensors(path("shape.safetensors"), tensors, raw.metadata);
  EXPECT_THROW(load_checkpoint(path("shape.safetensors")), IoError);
  tensors = raw.tensors;
  tensors.emplace_back("extra", Tensor::zeros({2}));
  save_safetensors(path("extra.safetensors"), tensors, raw.metadata);
  EXPECT_THROW(load_checkpoint(path("extra.safetensors")), IoError);
  // A config that claims a huge layer is refused from the tensors' shapes, before any
  // model of that size is allocated.
  auto huge = raw.metadata;
  Config claimed = c;
  claimed.model.layers[0].units = 100000000;
  huge["config"] = claimed.to_json();
  save_safetensors(path("huge.safetensors"), raw.tensors, huge);
  try {
    load_checkpoint(path("huge.safetensors"));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("expected [100000000, 8]"), std::string::npos) << e.what();
  }
  auto metadata = raw.metadata;
  metadata.erase("format");
  save_safetensors(path("format.safetensors"), raw.tensors, metadata);
  EXPECT_THROW(load_checkpoint(path("format.safetensors")), IoError);
}

TEST_F(TrainingTest, FilesSourceWithFloatTargetsAndStandardize) {
  // Two features, label = (x0 > x1); targets one-hot rows for mse.
  const int64_t n = 400;
  auto x = test::random_values<float>(n * 2, 3, -1, 1);
  std::vector<float> y(n * 2, 0.0f);
  for (int64_t i = 0; i < n; ++i) y[i * 2 + (x[i * 2] > x[i * 2 + 1] ? 1 : 0)] = 1.0f;
  save_npy(path("x.npy"), Tensor::from_vector(x, {n, 2}));
  save_npy(path("y.npy"), Tensor::from_vector(y, {n, 2}));
  Config c = small_config("files");
  c.data.source = "files";
  c.data.train = {path("x.npy"), path("y.npy")};
  c.data.normalize = "standardize";
  c.loss = Loss::kMse;
  c.model.layers = {{16, Activation::kTanh}, {2, Activation::kIdentity}};
  c.train.epochs = 10;
  c.optimizer.lr = 1e-2;
  const RunResult r = run_training(c, {});
  EXPECT_GT(r.epochs.back().val_accuracy, 0.9);
  EXPECT_EQ(r.test.samples, 0);  // no test set given

  // The checkpoint carries the training statistics, so inputs can be prepared as in training.
  const Checkpoint ck = load_checkpoint(c.output.checkpoint);
  ASSERT_TRUE(ck.standardization.defined());
  const DataSplits splits = load_data(c, 2);
  EXPECT_EQ(ck.standardization.shift.to_vector<float>(),
            splits.standardization.shift.to_vector<float>());
  Tensor raw = Tensor::from_vector(x, {n, 2}).rows(0, 4).clone();
  ck.standardization.apply(raw);
  const float* v = raw.data<float>();
  const float* sh = splits.standardization.shift.data<float>();
  const float* sc = splits.standardization.scale.data<float>();
  EXPECT_FLOAT_EQ(v[0], (x[0] - sh[0]) * sc[0]);
}

TEST_F(TrainingTest, MissingFashionMnistNamesThePackage) {
  Config c = small_config("fm");
  c.data.source = "fashion-mnist";
  c.data.dir = path("nowhere");
  try {
    run_training(c, {});
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("dataset-fashion-mnist"), std::string::npos) << e.what();
  }
}

TEST_F(TrainingTest, LabelsOutsideTheModelsClassesAreRefusedOnLoad) {
  save_npy(path("x.npy"), Tensor::from_vector(test::random_values<float>(10 * 3, 1), {10, 3}));
  save_npy(path("y.npy"), Tensor::from_vector<int32_t>({0, 1, 2, 3, 4, 0, 1, 2, 3, 7}, {10}));
  Config c = small_config("labels");
  c.data.source = "files";
  c.data.train = {path("x.npy"), path("y.npy")};
  try {
    run_training(c, {});
    FAIL();
  } catch (const ValueError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("found 4 at row 4"), std::string::npos) << what;
    EXPECT_NE(what.find("y.npy"), std::string::npos) << what;
  }
}

TEST_F(TrainingTest, ValidationSplitIsDeterministicFromTheSeed) {
  Config c = small_config("split");
  const DataSplits a = load_data(c, 4), b = load_data(c, 4);
  EXPECT_EQ(a.validation.size(), 60);
  EXPECT_EQ(a.train.size(), 540);
  EXPECT_EQ(a.validation.x.to_vector<float>(), b.validation.x.to_vector<float>());
  c.seed = 1;
  const DataSplits other = load_data(c, 4);
  EXPECT_NE(a.validation.labels.to_vector<int32_t>(), other.validation.labels.to_vector<int32_t>());
}

TEST_F(TrainingTest, GpuTrainingMatchesCpuLossPerEpoch) {
  MLPX_REQUIRE_CUDA();
  Config c = small_config("cpu");
  const RunResult cpu = run_training(c, {});
  c.device = "cuda";
  c.output.checkpoint = path("gpu.safetensors");
  const RunResult gpu = run_training(c, {});
  for (size_t e = 0; e < cpu.epochs.size(); ++e) {
    EXPECT_NEAR(gpu.epochs[e].train_loss, cpu.epochs[e].train_loss,
                1e-4 * cpu.epochs[e].train_loss);
  }
}

}  // namespace
}  // namespace mlpx
