// train.early_stopping and output.keep_best: the stopping epoch follows Keras's rule applied
// to the metrics of an uninterrupted run, and the best checkpoint holds that epoch's weights.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "mlpx/checkpoint.h"
#include "mlpx/error.h"
#include "mlpx/training.h"
#include "test_util.h"

namespace mlpx {
namespace {

class EarlyStoppingTest : public test::TempDirTest {
 protected:
  EarlyStoppingTest() : TempDirTest("mlpx-early-stopping") {}

  // Few noisy rows and a wide layer at a high rate: the validation loss bottoms out early.
  Config overfitting_config(const std::string& name) const {
    Config c = Config::from_json(R"({
      "device": "cpu",
      "data": {"source": "synthetic", "validation_split": 0.3,
               "synthetic": {"train_samples": 300, "test_samples": 100, "features": 8, "classes": 4}},
      "model": {"layers": [{"units": 64, "activation": "relu"}, {"units": 4, "activation": "identity"}]},
      "optimizer": {"type": "adam", "lr": 0.01},
      "train": {"epochs": 14, "batch_size": 16}
    })");
    c.output.checkpoint = path(name + ".safetensors");
    c.output.log = "";
    return c;
  }
};

// Keras's EarlyStopping over a finished run's val_loss: the epoch after which it stops, or 0.
int64_t keras_stop_epoch(const std::vector<EpochMetrics>& epochs, int patience, double min_delta) {
  double best = std::numeric_limits<double>::infinity();
  int wait = 0;
  for (const EpochMetrics& m : epochs) {
    ++wait;
    if (m.val_loss - best < -min_delta) {
      best = m.val_loss;
      wait = 0;
      continue;
    }
    if (wait >= patience) return m.epoch;
  }
  return 0;
}

TEST_F(EarlyStoppingTest, StopsAtTheEpochKerasWouldAndSavesIt) {
  const Config full = overfitting_config("full");
  const RunResult uninterrupted = run_training(full, {});
  for (const auto& [patience, min_delta] : {std::pair{2, 0.0}, std::pair{1, 0.01}}) {
    const int64_t expected = keras_stop_epoch(uninterrupted.epochs, patience, min_delta);
    ASSERT_GT(expected, 0) << "the run must stop early for this test to mean anything";
    ASSERT_LT(expected, full.train.epochs);

    Config c = overfitting_config("stopped");
    c.train.early_stopping = EarlyStopping{Metric::kValLoss, patience, min_delta};
    const RunResult r = run_training(c, {});
    EXPECT_TRUE(r.stopped_early);
    ASSERT_EQ(static_cast<int64_t>(r.epochs.size()), expected) << "patience " << patience;
    for (size_t i = 0; i < r.epochs.size(); ++i) {
      EXPECT_EQ(r.epochs[i].val_loss, uninterrupted.epochs[i].val_loss);
    }
    EXPECT_GT(r.test.samples, 0);  // a stopped run is whole: the test set is scored
    EXPECT_EQ(load_checkpoint(c.output.checkpoint).progress.epoch, expected);
  }
}

TEST_F(EarlyStoppingTest, HistoryCarriesTheCountAcrossAResume) {
  Config c = overfitting_config("history");
  c.train.early_stopping = EarlyStopping{Metric::kValLoss, 2, 0.0};
  const RunResult whole = run_training(c, {});
  ASSERT_TRUE(whole.stopped_early);
  ASSERT_GT(whole.epochs.size(), 2u);

  Config first = c;
  first.train.epochs = static_cast<int>(whole.epochs.size()) - 1;
  first.output.checkpoint = path("history-first.safetensors");
  const RunResult head = run_training(first, {});
  RunOptions resume;
  resume.resume = first.output.checkpoint;
  resume.history = head.epochs;
  const RunResult tail = run_training(c, resume);
  EXPECT_TRUE(tail.stopped_early);
  ASSERT_EQ(tail.epochs.size(), 1u);
  EXPECT_EQ(tail.epochs[0].epoch, whole.epochs.back().epoch);
  EXPECT_EQ(tail.best_epoch, whole.best_epoch);
}

TEST_F(EarlyStoppingTest, KeepBestHoldsTheBestEpochsWeights) {
  Config c = overfitting_config("kept");
  c.output.keep_best = true;  // by val_loss, the default metric
  const RunResult r = run_training(c, {});
  ASSERT_EQ(static_cast<int>(r.epochs.size()), c.train.epochs);
  int64_t best = 0;
  for (const EpochMetrics& m : r.epochs) {
    if (best == 0 || m.val_loss < r.epochs[best - 1].val_loss) best = m.epoch;
  }
  EXPECT_EQ(r.best_epoch, best);
  ASSERT_LT(best, c.train.epochs) << "the best epoch must not be the last for this test";

  const std::string kept = best_checkpoint_path(c.output.checkpoint);
  EXPECT_EQ(kept, path("kept.best.safetensors"));
  const Checkpoint best_checkpoint = load_checkpoint(kept);
  EXPECT_EQ(best_checkpoint.progress.epoch, best);
  EXPECT_EQ(load_checkpoint(c.output.checkpoint).progress.epoch, c.train.epochs);

  // The same training cut at the best epoch ends with the same weights, bit for bit.
  Config cut = overfitting_config("cut");
  cut.train.epochs = static_cast<int>(best);
  run_training(cut, {});
  EXPECT_EQ(best_checkpoint.model.params().to_vector<float>(),
            load_checkpoint(cut.output.checkpoint).model.params().to_vector<float>());
}

TEST_F(EarlyStoppingTest, ConfigErrorsNameTheKey) {
  auto error_of = [](const std::string& json) -> std::string {
    try {
      Config::from_json(json);
    } catch (const ValueError& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(error_of(R"({"train": {"early_stopping": {"metric": "val_acc"}}})")
                .find("train.early_stopping.metric"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"train": {"early_stopping": {"patience": -1}}})")
                .find("train.early_stopping.patience"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"train": {"early_stopping": {"min_delta": -0.1}}})")
                .find("train.early_stopping.min_delta"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"train": {"early_stopping": {"patiense": 2}}})").find("patience"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"data": {"validation_split": 0}, "train": {"early_stopping": {}}})")
                .find("validation split"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"output": {"keep_best": true, "checkpoint": ""}})").find("keep_best"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"data": {"validation_split": 0}, "output": {"keep_best": true}})")
                .find("output.keep_best"),
            std::string::npos);
  const Config c = Config::from_json(
      R"({"train": {"early_stopping": {"metric": "val_accuracy", "patience": 3, "min_delta": 0.001}},
          "output": {"keep_best": true}})");
  ASSERT_TRUE(c.train.early_stopping);
  EXPECT_EQ(c.train.early_stopping->metric, Metric::kValAccuracy);
  EXPECT_EQ(c.train.early_stopping->patience, 3);
  const Config round = Config::from_json(c.to_json());
  ASSERT_TRUE(round.train.early_stopping);
  EXPECT_DOUBLE_EQ(round.train.early_stopping->min_delta, 0.001);
  EXPECT_TRUE(round.output.keep_best);
  EXPECT_FALSE(Config::from_json("{}").train.early_stopping);
  EXPECT_EQ(best_checkpoint_path("model"), "model.best");

  // A metric the task does not measure is refused when training meets it.
  Config regression_metric = Config::from_json(R"({
    "device": "cpu", "data": {"source": "synthetic", "synthetic": {"train_samples": 100, "features": 4, "classes": 4}},
    "model": {"layers": [{"units": 4, "activation": "identity"}]},
    "train": {"epochs": 2, "early_stopping": {"metric": "val_r2"}}, "output": {"checkpoint": "", "log": ""}})");
  try {
    run_training(regression_metric, {});
    ADD_FAILURE() << "expected a ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("val_r2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mlpx
