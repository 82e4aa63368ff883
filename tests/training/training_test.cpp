#include "mlpx/training.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mlpx/array_io.h"
#include "mlpx/checkpoint.h"
#include "mlpx/error.h"
#include "mlpx/log.h"
#include "mlpx/safetensors.h"
#include "test_util.h"

namespace mlpx {
namespace {

namespace fs = std::filesystem;

class TrainingTest : public test::TempDirTest {
 protected:
  TrainingTest() : TempDirTest("mlpx-training") {}

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

// Full-batch GD reads the training set where it lies: a shuffle would only reorder the sums
// over the rows, so shuffled and unshuffled runs give the same bits (and no step copies the
// set). Class labels (cross-entropy) and float targets (mse) alike.
TEST_F(TrainingTest, FullBatchReadsTheSetInStoredOrderWhetherOrNotItShuffles) {
  for (const char* loss : {"cross_entropy", "mse"}) {
    std::vector<std::vector<float>> params;
    for (bool shuffle : {true, false}) {
      Config c = small_config(std::string("whole-") + loss + (shuffle ? "-shuffled" : ""));
      c.loss = parse_loss(loss);
      c.train.batch_size = 0;
      c.train.shuffle = shuffle;
      run_training(c, {});
      params.push_back(load_checkpoint(c.output.checkpoint).model.params().to_vector<float>());
    }
    EXPECT_EQ(params[0], params[1]) << loss;
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

// --resume with another architecture names each layer that differs.
TEST_F(TrainingTest, ResumeWithAnotherModelNamesTheLayersThatDiffer) {
  Config first = small_config("arch");
  first.train.epochs = 1;
  run_training(first, {});
  Config other = small_config("arch-other");
  other.model.layers[0] = {32, Activation::kElu};
  RunOptions resume;
  resume.resume = first.output.checkpoint;
  try {
    run_training(other, resume);
    ADD_FAILURE() << "expected a ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "found layer 0: 16 relu in the checkpoint, 32 elu (alpha 1) in the config"),
              std::string::npos)
        << e.what();
  }
  other = small_config("arch-deeper");
  other.model.layers.insert(other.model.layers.begin(), {8, Activation::kTanh});
  try {
    run_training(other, resume);
    ADD_FAILURE() << "expected a ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("the checkpoint has 2 layers, the config 3"),
              std::string::npos)
        << e.what();
  }
}

// output.checkpoint_every: every k epochs and after the last; 0: after the last only.
TEST_F(TrainingTest, CheckpointEveryKEpochsAndAfterTheLast) {
  for (const int every : {2, 0}) {
    Config c = small_config("every" + std::to_string(every));
    c.train.epochs = 5;
    c.output.checkpoint_every = every;
    std::vector<int64_t> saved_before;  // the checkpoint's epoch as each epoch ends (-1: none)
    RunOptions options;
    options.callbacks.on_epoch = [&](const EpochMetrics&) {
      saved_before.push_back(fs::exists(c.output.checkpoint)
                                 ? load_checkpoint(c.output.checkpoint).progress.epoch
                                 : -1);
    };
    run_training(c, options);
    const std::vector<int64_t> expected =
        every == 2 ? std::vector<int64_t>{-1, -1, 2, 2, 4} : std::vector<int64_t>(5, -1);
    EXPECT_EQ(saved_before, expected) << "every " << every;
    EXPECT_EQ(load_checkpoint(c.output.checkpoint).progress.epoch, 5) << "every " << every;
  }
  EXPECT_THROW(Config::from_json(R"({"output": {"checkpoint_every": -1}})"), ValueError);
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

// Dropout masks are keyed by the global step (epoch * batches + batch): a resumed run draws
// the masks the uninterrupted run drew, bit for bit.
TEST_F(TrainingTest, ResumeWithDropoutMatchesAnUninterruptedRunBitForBit) {
  Config full = small_config("dropout-full");
  full.model.layers[0].dropout = 0.3;
  full.model.layers[1].dropout = 0.1;
  const RunResult whole = run_training(full, {});
  Config first = full;
  first.output.checkpoint = path("dropout-half.safetensors");
  first.train.epochs = 2;
  run_training(first, {});
  EXPECT_EQ(load_checkpoint(first.output.checkpoint).config.model.layers[0].dropout, 0.3);
  Config rest = full;
  rest.output.checkpoint = path("dropout-resumed.safetensors");
  RunOptions resume;
  resume.resume = first.output.checkpoint;
  const RunResult resumed = run_training(rest, resume);
  ASSERT_EQ(resumed.epochs.size(), 2u);
  EXPECT_EQ(resumed.epochs[1].train_loss, whole.epochs[3].train_loss);
  const Checkpoint a = load_checkpoint(full.output.checkpoint);
  const Checkpoint b = load_checkpoint(rest.output.checkpoint);
  EXPECT_EQ(a.model.params().to_vector<float>(), b.model.params().to_vector<float>());
  // And dropout did act: without it the weights differ.
  Config none = full;
  none.model.layers[0].dropout = none.model.layers[1].dropout = 0.0;
  none.output.checkpoint = path("dropout-none.safetensors");
  run_training(none, {});
  EXPECT_NE(load_checkpoint(none.output.checkpoint).model.params().to_vector<float>(),
            a.model.params().to_vector<float>());
}

// Norms (both kinds, batch norm's running statistics in the checkpoint), a Linear without a
// bias, a residual layer and gelu: a run resumed after epoch 2 ends with the bits of one run.
TEST_F(TrainingTest, ResumeWithNormsAndResidualLayersMatchesAnUninterruptedRunBitForBit) {
  Config full = small_config("norms-full");
  LayerSpec batch_normed(16, Activation::kGelu);
  batch_normed.norm = Norm::kBatch;
  batch_normed.bias = false;
  LayerSpec residual(16, Activation::kGeluTanh);
  residual.norm = Norm::kLayer;
  residual.residual = true;
  full.model.layers = {batch_normed, residual, {4, Activation::kIdentity}};
  const RunResult whole = run_training(full, {});
  Config first = full;
  first.output.checkpoint = path("norms-half.safetensors");
  first.train.epochs = 2;
  run_training(first, {});
  Config rest = full;
  rest.output.checkpoint = path("norms-resumed.safetensors");
  RunOptions resume;
  resume.resume = first.output.checkpoint;
  const RunResult resumed = run_training(rest, resume);
  ASSERT_EQ(resumed.epochs.size(), 2u);
  EXPECT_EQ(resumed.epochs[1].train_loss, whole.epochs[3].train_loss);
  EXPECT_EQ(resumed.epochs[1].val_loss, whole.epochs[3].val_loss);  // running statistics
  const Checkpoint a = load_checkpoint(full.output.checkpoint);
  const Checkpoint b = load_checkpoint(rest.output.checkpoint);
  EXPECT_EQ(a.model.params().to_vector<float>(), b.model.params().to_vector<float>());
  EXPECT_EQ(a.model.buffers().to_vector<float>(), b.model.buffers().to_vector<float>());
  // The batch count is torch's num_batches_tracked: every training step of the 4 epochs.
  const SafetensorsFile file = load_safetensors(full.output.checkpoint);
  EXPECT_EQ(file.get("layers.0.norm.num_batches_tracked").to_vector<int32_t>(),
            std::vector<int32_t>{static_cast<int32_t>(a.progress.step)});
  EXPECT_TRUE(file.contains("layers.0.norm.running_var"));
  EXPECT_TRUE(file.contains("layers.1.norm.weight"));
  EXPECT_FALSE(file.contains("layers.0.bias"));
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

// save_checkpoint refuses what load_checkpoint would refuse (a config that does not describe
// the model, such as a default Config{}), naming why, and writes nothing; load_checkpoint
// refuses the same file written by hand with the same reason.
TEST_F(TrainingTest, SaveCheckpointRefusesWhatLoadWouldRefuse) {
  const Config c = small_config("refuse");
  Sequential model(8, c.model.resolved_layers());
  model.init(Init::kHeNormal, 0.0, 1);
  const std::string file = path("refused.safetensors");
  const std::string expected_reason =
      "'layers.0.weight': expected [256, 8] from the config in __metadata__, found [16, 8]";
  try {
    save_checkpoint(file, model, nullptr, Config{}, {});
    FAIL() << "expected an error";
  } catch (const ValueError& e) {
    EXPECT_EQ(std::string(e.what()),
              "save_checkpoint: " + file +
                  ": the config does not describe this model (load_checkpoint would refuse the "
                  "file: " +
                  expected_reason + "); pass the config the model was built from");
  }
  EXPECT_FALSE(std::filesystem::exists(file));
  // The same file written without the check: load_checkpoint names the same reason.
  save_checkpoint(file, model, nullptr, c, {});
  auto raw = load_safetensors(file);
  raw.metadata["config"] = Config{}.to_json();
  save_safetensors(file, raw.tensors, raw.metadata);
  try {
    load_checkpoint(file);
    FAIL() << "expected an error";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()), file + ": " + expected_reason);
  }
  // Same shapes, another activation: it would load, as another function.
  Config other = c;
  other.model.layers[0].activation = Activation::kTanh;
  try {
    save_checkpoint(file, model, nullptr, other, {});
    FAIL() << "expected an error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers[0]: expected activation relu (alpha "),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("found tanh (alpha "), std::string::npos) << e.what();
  }
  // The config it was built from saves and loads back.
  save_checkpoint(file, model, nullptr, c, {});
  EXPECT_EQ(load_checkpoint(file).model.params().to_vector<float>(),
            model.params().to_vector<float>());
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
  c.data.source = DataSource::kFiles;
  c.data.train = {path("x.npy"), path("y.npy")};
  c.data.normalize = Normalize::kStandardize;
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
  c.data.source = DataSource::kFashionMnist;
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
  c.data.source = DataSource::kFiles;
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

// Full-batch GD on the GPU reads the device copy of the set in place, as the CPU does.
TEST_F(TrainingTest, GpuFullBatchMatchesCpuLossPerEpoch) {
  MLPX_REQUIRE_CUDA();
  Config c = small_config("cpu-whole");
  c.train.batch_size = 0;
  const RunResult cpu = run_training(c, {});
  c.device = "cuda";
  c.output.checkpoint = path("gpu-whole.safetensors");
  const RunResult gpu = run_training(c, {});
  ASSERT_EQ(gpu.epochs.size(), cpu.epochs.size());
  for (size_t e = 0; e < cpu.epochs.size(); ++e) {
    EXPECT_NEAR(gpu.epochs[e].train_loss, cpu.epochs[e].train_loss,
                1e-4 * cpu.epochs[e].train_loss);
  }
}

// A files-source run whose row `poisoned` has a feature of 1e38: with mse its batch's loss
// overflows to Inf (and its gradients are not finite) in every epoch.
Config poisoned_config(const std::string& dir, const std::string& name, int64_t poisoned) {
  const int64_t n = 200;
  auto x = test::random_values<float>(n * 2, 5, -1, 1);
  std::vector<float> y(n * 2, 0.0f);
  for (int64_t i = 0; i < n; ++i) y[i * 2 + (x[i * 2] > x[i * 2 + 1] ? 1 : 0)] = 1.0f;
  x[poisoned * 2] = 1e38f;
  const std::string xs = (fs::path(dir) / (name + "-x.npy")).string();
  const std::string ys = (fs::path(dir) / (name + "-y.npy")).string();
  save_npy(xs, Tensor::from_vector(x, {n, 2}));
  save_npy(ys, Tensor::from_vector(y, {n, 2}));
  Config c = Config::from_json(R"({
    "device": "cpu", "loss": "mse",
    "data": {"source": "synthetic", "validation_split": 0, "normalize": "none"},
    "model": {"layers": [{"units": 8, "activation": "relu"}, {"units": 2, "activation": "identity"}]},
    "optimizer": {"type": "adam", "lr": 0.01},
    "train": {"epochs": 3, "batch_size": 32},
    "schedule": {"type": "none"}
  })");
  c.data.source = DataSource::kFiles;
  c.data.train = {xs, ys};
  c.output.checkpoint = (fs::path(dir) / (name + ".safetensors")).string();
  c.output.log = (fs::path(dir) / (name + ".jsonl")).string();
  return c;
}

TEST_F(TrainingTest, SkipOnNonfiniteTrainsToTheEndAndCountsTheSkippedSteps) {
  Config c = poisoned_config(dir_, "skip", 17);
  c.train.on_nonfinite = NonFinitePolicy::kSkip;
  const RunResult r = run_training(c, {});
  ASSERT_EQ(r.epochs.size(), 3u);
  const int64_t batches = (200 + 31) / 32;
  for (size_t e = 0; e < r.epochs.size(); ++e) {
    EXPECT_EQ(r.epochs[e].skipped_steps, 1) << "epoch " << e + 1;  // one poisoned batch each
    EXPECT_TRUE(std::isfinite(r.epochs[e].train_loss)) << "epoch " << e + 1;
    EXPECT_EQ(r.epochs[e].steps, static_cast<int64_t>(e + 1) * (batches - 1));
  }
  const Checkpoint ck = load_checkpoint(c.output.checkpoint);
  EXPECT_EQ(ck.progress.step, 3 * (batches - 1));  // skipped steps are not steps
  for (float v : ck.model.params().to_vector<float>()) ASSERT_TRUE(std::isfinite(v));
  for (const auto& [name, buffer] : ck.optimizer_state) {
    for (float v : buffer.to_vector<float>()) ASSERT_TRUE(std::isfinite(v)) << name;
  }
  // The log line carries the count.
  std::ifstream log(c.output.log);
  std::string line;
  ASSERT_TRUE(std::getline(log, line));
  EXPECT_EQ(nlohmann::json::parse(line).at("skipped_steps"), 1);
}

TEST_F(TrainingTest, SkipLeavesCleanRunsBitIdentical) {
  Config stop = small_config("clean-stop");
  Config skip = small_config("clean-skip");
  skip.train.on_nonfinite = NonFinitePolicy::kSkip;
  const RunResult a = run_training(stop, {}), b = run_training(skip, {});
  for (size_t e = 0; e < a.epochs.size(); ++e) {
    EXPECT_EQ(a.epochs[e].train_loss, b.epochs[e].train_loss);
    EXPECT_EQ(b.epochs[e].skipped_steps, 0);
  }
  EXPECT_EQ(load_checkpoint(stop.output.checkpoint).model.params().to_vector<float>(),
            load_checkpoint(skip.output.checkpoint).model.params().to_vector<float>());
}

// At batch 1 on the CPU the optimizer forms each weight's gradient from its two factors
// (Optimizer::step_outer); the non-finite check needs the stored gradient, so "skip" takes the
// plain path: the two must agree bit for bit, parameters and optimizer state, for every rule.
TEST_F(TrainingTest, BatchOneOuterProductStepMatchesTheStoredGradientBitForBit) {
  const auto bits = [](const Tensor& t) {
    const std::vector<float> v = t.to_vector<float>();
    std::vector<uint32_t> u(v.size());
    std::memcpy(u.data(), v.data(), v.size() * sizeof(float));
    return u;
  };
  for (const char* optimizer :
       {R"({"type": "adam", "lr": 0.01, "weight_decay": 0.01})", R"({"type": "adamw", "lr": 0.01})",
        R"({"type": "sgd", "lr": 0.05, "momentum": 0.9})", R"({"type": "rmsprop", "lr": 0.01})"}) {
    Config fused = small_config("outer-fused");
    fused.optimizer =
        Config::from_json(std::string(R"({"optimizer": )") + optimizer + "}").optimizer;
    fused.data.synthetic.train_samples = 60;
    fused.train.epochs = 2;
    fused.train.batch_size = 1;
    fused.model.layers = {{12, Activation::kRelu, std::nullopt, 0.25},
                          {6, Activation::kElu},
                          {4, Activation::kIdentity}};
    Config plain = fused;
    plain.output.checkpoint = path("outer-plain.safetensors");
    plain.output.log = path("outer-plain.jsonl");
    plain.train.on_nonfinite = NonFinitePolicy::kSkip;
    run_training(fused, {});
    run_training(plain, {});
    const Checkpoint a = load_checkpoint(fused.output.checkpoint);
    const Checkpoint b = load_checkpoint(plain.output.checkpoint);
    EXPECT_EQ(bits(a.model.params()), bits(b.model.params())) << optimizer;
    ASSERT_EQ(a.optimizer_state.size(), b.optimizer_state.size());
    for (size_t k = 0; k < a.optimizer_state.size(); ++k) {
      EXPECT_EQ(bits(a.optimizer_state[k].second), bits(b.optimizer_state[k].second))
          << optimizer << " " << a.optimizer_state[k].first;
    }
    EXPECT_EQ(a.progress.step, b.progress.step);
  }
}

TEST_F(TrainingTest, StopOnNonfiniteNamesTheEpochAndStep) {
  const Config c = poisoned_config(dir_, "stop", 17);
  try {
    run_training(c, {});
    FAIL() << "expected the poisoned batch to stop training";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("epoch 1, step"), std::string::npos) << what;
    EXPECT_NE(what.find("training diverged"), std::string::npos) << what;
  }
}

// Two good epochs, then a learning rate of 1e28 from epoch 3: the run stops naming epoch 3,
// and the checkpoint of epoch 2 is still there, whole and loadable.
TEST_F(TrainingTest, DivergenceInEpochThreeKeepsTheEpochTwoCheckpoint) {
  Config c = small_config("late");
  c.loss = Loss::kMse;
  c.optimizer.type = OptimizerType::kSgd;
  c.optimizer.lr = 1e-2;
  c.schedule.type = ScheduleType::kMultiStep;
  c.schedule.milestones = {2};
  c.schedule.gamma = 1e30;
  try {
    run_training(c, {});
    FAIL() << "expected divergence in epoch 3";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("epoch 3, step"), std::string::npos) << what;
  }
  const Checkpoint ck = load_checkpoint(c.output.checkpoint);
  EXPECT_EQ(ck.progress.epoch, 2);
  EXPECT_EQ(ck.progress.step, 2 * ((540 + 31) / 32));
  for (float v : ck.model.params().to_vector<float>()) ASSERT_TRUE(std::isfinite(v));
  // It resumes: one more epoch at the undisturbed rate trains on from it.
  Config resume = c;
  resume.schedule.type = ScheduleType::kNone;
  resume.train.epochs = 3;
  resume.output.checkpoint = path("late-resumed.safetensors");
  RunOptions options;
  options.resume = c.output.checkpoint;
  const RunResult r = run_training(resume, options);
  ASSERT_EQ(r.epochs.size(), 1u);
  EXPECT_TRUE(std::isfinite(r.epochs[0].train_loss));
}

// The same epochs with and without CUDA graph replay: the same kernels in the same order, so
// the same bits; and both within 1e-4 of the CPU reference.
TEST_F(TrainingTest, GpuCudaGraphMatchesPlainLaunchesBitForBit) {
  MLPX_REQUIRE_CUDA();
  for (const char* on_nonfinite : {"stop", "skip"}) {
    Config c = small_config(std::string("graph-") + on_nonfinite);
    c.train.on_nonfinite =
        std::string(on_nonfinite) == "skip" ? NonFinitePolicy::kSkip : NonFinitePolicy::kStop;
    const RunResult cpu = run_training(c, {});
    c.device = "cuda";
    c.train.cuda_graph = true;
    c.output.checkpoint = path(std::string("graph-on-") + on_nonfinite + ".safetensors");
    const RunResult on = run_training(c, {});
    Config off_config = c;
    off_config.train.cuda_graph = false;
    off_config.output.checkpoint = path(std::string("graph-off-") + on_nonfinite + ".safetensors");
    const RunResult off = run_training(off_config, {});
    ASSERT_EQ(on.epochs.size(), off.epochs.size());
    for (size_t e = 0; e < on.epochs.size(); ++e) {
      EXPECT_EQ(on.epochs[e].train_loss, off.epochs[e].train_loss) << on_nonfinite << " " << e;
      EXPECT_EQ(on.epochs[e].train_accuracy, off.epochs[e].train_accuracy);
      EXPECT_EQ(on.epochs[e].steps, off.epochs[e].steps);
      EXPECT_EQ(on.epochs[e].steps, cpu.epochs[e].steps);
      EXPECT_NEAR(on.epochs[e].train_loss, cpu.epochs[e].train_loss,
                  1e-4 * cpu.epochs[e].train_loss);
    }
    const Checkpoint a = load_checkpoint(c.output.checkpoint);
    const Checkpoint b = load_checkpoint(off_config.output.checkpoint);
    EXPECT_EQ(a.model.params().to_vector<float>(), b.model.params().to_vector<float>());
    EXPECT_EQ(a.progress.step, b.progress.step);
  }
}

// Unfused, with a ReLU layer and two gelu_tanh layers: the forward writes the ReLU's mask
// (RELU_AUX_BIAS) and each gelu_tanh's pre-activation (GELU_AUX_BIAS), the backward applies
// them in the layer above's input-gradient GEMM (DRELU; DGELU_BGRAD, which also sums the
// gelu_tanh layer's bias gradient) and sums the other bias gradients in their weight-gradient
// GEMMs (BGRADB); graph replay against plain launches bit for bit, and both within the CPU's
// tolerance.
TEST_F(TrainingTest, GpuGemmEpiloguesMatchCpuAndCudaGraphMatchesPlainLaunches) {
  MLPX_REQUIRE_CUDA();
  Config c = small_config("epilogues");
  c.model.layers = {{16, Activation::kRelu},
                    {16, Activation::kGeluTanh},
                    {8, Activation::kGeluTanh},
                    {4, Activation::kIdentity}};
  c.train.epochs = 2;
  c.data.synthetic.train_samples = 160;  // 5 steps an epoch: small for the simulator
  c.train.fused = FusedMode::kOff;
  const RunResult cpu = run_training(c, {});
  c.device = "cuda";
  c.train.cuda_graph = true;
  c.output.checkpoint = path("epilogues-graph.safetensors");
  const RunResult on = run_training(c, {});
  Config off_config = c;
  off_config.train.cuda_graph = false;
  off_config.output.checkpoint = path("epilogues-plain.safetensors");
  const RunResult off = run_training(off_config, {});
  ASSERT_EQ(on.epochs.size(), cpu.epochs.size());
  ASSERT_EQ(off.epochs.size(), cpu.epochs.size());
  for (size_t e = 0; e < on.epochs.size(); ++e) {
    EXPECT_EQ(on.epochs[e].train_loss, off.epochs[e].train_loss) << e;
    EXPECT_NEAR(on.epochs[e].train_loss, cpu.epochs[e].train_loss, 1e-4 * cpu.epochs[e].train_loss);
  }
  EXPECT_EQ(load_checkpoint(c.output.checkpoint).model.params().to_vector<float>(),
            load_checkpoint(off_config.output.checkpoint).model.params().to_vector<float>());
  // train.gemm_epilogues false: the plain kernels (BatchSweep.GemmEpiloguesKeyCountsThePlainStep
  // counts them); the same training within fp32 rounding (only the bias gradients' order differs).
  Config plain = c;
  plain.train.gemm_epilogues = false;
  plain.output.checkpoint = path("epilogues-off.safetensors");
  const RunResult unfused = run_training(plain, {});
  ASSERT_EQ(unfused.epochs.size(), on.epochs.size());
  for (size_t e = 0; e < on.epochs.size(); ++e) {
    EXPECT_NEAR(unfused.epochs[e].train_loss, on.epochs[e].train_loss,
                1e-5 * on.epochs[e].train_loss)
        << e;
  }
}

// train.fused: the fused kernels (auto picks them here) train within fp32 rounding of the
// unfused run; "on" on the CPU says why not. (Graph replay against plain launches with the
// fused kernels: GpuCudaGraphMatchesPlainLaunchesBitForBit, whose model auto fuses.)
TEST_F(TrainingTest, GpuFusedMatchesUnfusedAndCpuRefusesOn) {
  Config c = small_config("fused");
  c.model.layers = {{16, Activation::kRelu}, {16, Activation::kElu}, {4, Activation::kIdentity}};
  c.data.synthetic.train_samples = 192;
  c.data.synthetic.test_samples = 64;
  c.train.epochs = 2;
  c.train.fused = FusedMode::kOn;
  try {
    run_training(c, {});
    ADD_FAILURE() << "train.fused on ran on the CPU";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("train.fused: on: the fused MLP kernels run on a CUDA "
                                         "device, found cpu"),
              std::string::npos)
        << e.what();
  }
  MLPX_REQUIRE_CUDA();
  c.device = "cuda";
  c.train.fused = FusedMode::kAuto;
  const RunResult fused = run_training(c, {});
  Config off = c;
  off.train.fused = FusedMode::kOff;
  off.output.checkpoint = path("fused-off.safetensors");
  const RunResult unfused = run_training(off, {});
  ASSERT_EQ(fused.epochs.size(), unfused.epochs.size());
  for (size_t e = 0; e < fused.epochs.size(); ++e) {
    EXPECT_NEAR(fused.epochs[e].train_loss, unfused.epochs[e].train_loss,
                1e-5 * unfused.epochs[e].train_loss)
        << e;
    EXPECT_NEAR(fused.epochs[e].val_loss, unfused.epochs[e].val_loss,
                1e-5 * unfused.epochs[e].val_loss);
  }
}

// Dropout on the GPU: each replay of the captured step reads its step from device memory,
// so the graph draws every batch's own masks, as plain launches and the CPU do.
TEST_F(TrainingTest, GpuDropoutMatchesCpuAndCudaGraphMatchesPlainLaunches) {
  MLPX_REQUIRE_CUDA();
  Config c = small_config("dropout-cpu");
  c.train.epochs = 2;  // each captures its graph and replays it 15 times (simulator time)
  c.model.layers[0].dropout = 0.3;
  c.model.layers[1].dropout = 0.1;
  const RunResult cpu = run_training(c, {});
  c.device = "cuda";
  c.train.cuda_graph = true;
  c.output.checkpoint = path("dropout-graph.safetensors");
  const RunResult on = run_training(c, {});
  Config off_config = c;
  off_config.train.cuda_graph = false;
  off_config.output.checkpoint = path("dropout-plain.safetensors");
  const RunResult off = run_training(off_config, {});
  ASSERT_EQ(on.epochs.size(), cpu.epochs.size());
  for (size_t e = 0; e < on.epochs.size(); ++e) {
    EXPECT_EQ(on.epochs[e].train_loss, off.epochs[e].train_loss) << e;
    EXPECT_NEAR(on.epochs[e].train_loss, cpu.epochs[e].train_loss, 1e-4 * cpu.epochs[e].train_loss);
  }
  EXPECT_EQ(load_checkpoint(c.output.checkpoint).model.params().to_vector<float>(),
            load_checkpoint(off_config.output.checkpoint).model.params().to_vector<float>());
}

// The trainer really replays: a graph-on run records replays, a graph-off run none.
TEST_F(TrainingTest, GpuTrainerReplaysFullSizeSteps) {
  MLPX_REQUIRE_CUDA();
  Config c = small_config("replays");
  c.device = "cuda";
  const DataSplits data = load_data(c, 4);
  const Dataset train = data.train.to(Device::cuda());
  Sequential model(8, {{16, Activation::kRelu}, {4, Activation::kIdentity}}, DType::kFloat32,
                   Device::cuda());
  model.init(c.model.init, c.model.init_std, c.seed);
  Trainer trainer(c, model, train);
  const EpochMetrics m = trainer.run_epoch(1e-3, nullptr);
  const int64_t full = train.size() / 32;        // 540 rows: 16 full batches and one of 28
  EXPECT_EQ(trainer.graph_replays(), full - 1);  // the first full batch runs plainly
  EXPECT_EQ(m.steps, (train.size() + 31) / 32);
  c.train.cuda_graph = false;
  Sequential plain_model(8, {{16, Activation::kRelu}, {4, Activation::kIdentity}}, DType::kFloat32,
                         Device::cuda());
  plain_model.init(c.model.init, c.model.init_std, c.seed);
  Trainer plain(c, plain_model, train);
  plain.run_epoch(1e-3, nullptr);
  EXPECT_EQ(plain.graph_replays(), 0);
  EXPECT_EQ(model.params().to_vector<float>(), plain_model.params().to_vector<float>());
}

// Sample weights in the training step: unit weights change no bit; other weights (zeros
// among them) change the steps; on a CUDA device (plain launches and a replayed graph) the
// weighted step gives the CPU's.
TEST_F(TrainingTest, SampleWeightsInTheTrainingStep) {
  Config c = small_config("weights");
  const Dataset train = load_data(c, 4).train;
  const auto train_one_epoch = [&](const Dataset& data, Device device, bool graph) {
    Config run = c;
    run.train.cuda_graph = graph;
    Sequential model(8, c.model.resolved_layers(), DType::kFloat32, device);
    model.init(c.model.init, c.model.init_std, c.seed);
    Trainer trainer(run, model, data.to(device));
    const EpochMetrics m = trainer.run_epoch(1e-2, nullptr);
    return std::make_pair(m.train_loss, model.params().to_vector<float>());
  };
  const auto plain = train_one_epoch(train, Device::cpu(), false);
  Dataset ones = train;
  set_sample_weights(
      ones, Tensor::from_vector(std::vector<float>(train.size(), 1.0f), {train.size()}), "weights");
  const auto unit = train_one_epoch(ones, Device::cpu(), false);
  EXPECT_EQ(unit.first, plain.first);
  EXPECT_EQ(unit.second, plain.second);
  Dataset weighted = train;
  std::vector<float> w = test::random_values<float>(static_cast<size_t>(train.size()), 8, 0.0, 2.0);
  for (size_t i = 0; i < w.size(); i += 7) w[i] = 0.0f;
  set_sample_weights(weighted, Tensor::from_vector(w, {train.size()}), "weights");
  const auto cpu = train_one_epoch(weighted, Device::cpu(), false);
  EXPECT_NE(cpu.second, plain.second);
  EXPECT_TRUE(std::isfinite(cpu.first));
  w[3] = -1.0f;
  EXPECT_THROW(set_sample_weights(weighted, Tensor::from_vector(w, {train.size()}), "weights"),
               ValueError);
  EXPECT_THROW(set_sample_weights(weighted, Tensor::from_vector(w, {3}), "weights"), ShapeError);
  if (!cuda_available()) return;
  for (bool graph : {false, true}) {
    const auto gpu = train_one_epoch(weighted, Device::cuda(), graph);
    EXPECT_NEAR(gpu.first, cpu.first, 1e-4 * cpu.first) << "graph " << graph;
    EXPECT_TRUE(test::all_close(gpu.second, cpu.second, 1e-4, 1e-3)) << "graph " << graph;
  }
}

// Skip on the GPU: the poisoned batch is skipped on the device, with no per-step sync.
TEST_F(TrainingTest, GpuSkipOnNonfiniteMatchesCpu) {
  MLPX_REQUIRE_CUDA();
  Config c = poisoned_config(dir_, "gpu-skip", 17);
  c.train.on_nonfinite = NonFinitePolicy::kSkip;
  const RunResult cpu = run_training(c, {});
  for (bool graph : {true, false}) {
    c.device = "cuda";
    c.train.cuda_graph = graph;
    c.output.checkpoint = path(std::string("gpu-skip-") + (graph ? "g" : "p") + ".safetensors");
    const RunResult gpu = run_training(c, {});
    ASSERT_EQ(gpu.epochs.size(), cpu.epochs.size());
    for (size_t e = 0; e < cpu.epochs.size(); ++e) {
      EXPECT_EQ(gpu.epochs[e].skipped_steps, cpu.epochs[e].skipped_steps) << e;
      EXPECT_EQ(gpu.epochs[e].steps, cpu.epochs[e].steps) << e;
      EXPECT_NEAR(gpu.epochs[e].train_loss, cpu.epochs[e].train_loss,
                  1e-4 * cpu.epochs[e].train_loss);
    }
  }
}

TEST_F(TrainingTest, Tf32NeedsACudaDevice) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is there: auto picks it";
  Config c = small_config("tf32-cpu");
  c.device = "auto";
  c.precision = Precision::kTf32;
  try {
    run_training(c, {});
    FAIL() << "expected tf32 on the CPU to be refused";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("tf32 needs a CUDA device"), std::string::npos)
        << e.what();
  }
}

// tf32 trains close to the fp32 CPU reference (TF32 rounds GEMM inputs to 10-bit mantissas).
TEST_F(TrainingTest, GpuTf32TrainingStaysCloseToFp32) {
  MLPX_REQUIRE_CUDA();
  Config c = small_config("tf32-ref");
  const RunResult cpu = run_training(c, {});
  c.device = "cuda";
  c.precision = Precision::kTf32;
  c.output.checkpoint = path("tf32.safetensors");
  const RunResult gpu = run_training(c, {});
  for (size_t e = 0; e < cpu.epochs.size(); ++e) {
    EXPECT_NEAR(gpu.epochs[e].train_loss, cpu.epochs[e].train_loss, 3e-3 * cpu.epochs[e].train_loss)
        << "epoch " << e + 1;
  }
}

// precision bf16 on the GPU: the rounding kernels and cuBLAS's bf16 GEMM inside the captured
// step (the scratch they use grows on the epoch's plain first step, so the capture allocates
// nothing: no fallback warning), the same bits as plain launches, and the CPU's bf16 run's
// losses (the same roundings; sums in other orders, so a rounding may flip: 1e-3). The
// weights' bf16 copy, written by the optimizer kernel and read by the GEMMs, survives a
// checkpoint: a run stopped after epoch 2 and resumed (its copy made again from the loaded
// parameters) ends with the uninterrupted run's parameters bit for bit.
TEST_F(TrainingTest, GpuBf16MatchesCpuBf16AndCudaGraphMatchesPlainLaunches) {
  MLPX_REQUIRE_CUDA();
  Config c = small_config("bf16-cpu");
  c.precision = Precision::kBf16;
  const RunResult cpu = run_training(c, {});
  c.device = "cuda";
  c.train.cuda_graph = true;
  c.output.checkpoint = path("bf16-graph.safetensors");
  std::vector<std::string> warnings;
  const LogHandler previous = set_log_handler([&](LogLevel level, const std::string& message) {
    if (level == LogLevel::kWarning) warnings.push_back(message);
  });
  const RunResult on = run_training(c, {});
  set_log_handler(previous);
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  Config off_config = c;
  off_config.train.cuda_graph = false;
  off_config.output.checkpoint = path("bf16-plain.safetensors");
  const RunResult off = run_training(off_config, {});
  ASSERT_EQ(on.epochs.size(), cpu.epochs.size());
  for (size_t e = 0; e < on.epochs.size(); ++e) {
    EXPECT_EQ(on.epochs[e].train_loss, off.epochs[e].train_loss) << "epoch " << e + 1;
    EXPECT_NEAR(on.epochs[e].train_loss, cpu.epochs[e].train_loss, 1e-3 * cpu.epochs[e].train_loss)
        << "epoch " << e + 1;
  }
  Config first = c;
  first.train.epochs = 2;
  first.output.checkpoint = path("bf16-half.safetensors");
  run_training(first, {});
  Config rest = c;
  rest.output.checkpoint = path("bf16-resumed.safetensors");
  RunOptions resume;
  resume.resume = first.output.checkpoint;
  const RunResult resumed = run_training(rest, resume);
  ASSERT_EQ(resumed.epochs.size(), 2u);
  EXPECT_EQ(resumed.epochs.back().train_loss, on.epochs.back().train_loss);
  EXPECT_EQ(load_checkpoint(rest.output.checkpoint).model.params().to_vector<float>(),
            load_checkpoint(c.output.checkpoint).model.params().to_vector<float>());
}

}  // namespace
}  // namespace mlpx
