// Regression from files: float targets with mse or sse are scored by R^2 and MSE, never by
// accuracy; scikit-learn's diabetes set (tests/data/diabetes) from .csv and from .npy.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mlpx/array_io.h"
#include "mlpx/error.h"
#include "mlpx/training.h"
#include "test_util.h"

namespace mlpx {
namespace {

namespace fs = std::filesystem;

const std::string kDiabetes = std::string(MLPX_SOURCE_DIR) + "/tests/data/diabetes/";

class RegressionTest : public test::TempDirTest {
 protected:
  RegressionTest() : TempDirTest("mlpx-regression") {}

  // configs/diabetes.json (its paths relative to configs/), shortened, logging to the folder.
  Config diabetes_config() const {
    Config c = Config::load(std::string(MLPX_SOURCE_DIR) + "/configs/diabetes.json");
    c.device = "cpu";
    c.train.epochs = 60;
    c.output.log = path("metrics.jsonl");
    return c;
  }

  // The diabetes csv files rewritten as float32 .npy (the values training sees either way);
  // `column` writes y as [N, 1] instead of [N].
  Config npy_config(bool column) const {
    Config c = diabetes_config();
    for (FilePair* files : {&c.data.train, &c.data.test}) {
      for (std::string* file : {&files->x, &files->y}) {
        const Array array = load_array(*file);
        Tensor t = to_float_tensor(array);
        if (file == &files->y && !column) t = t.view({t.rows()});
        const std::string out = path(fs::path(*file).stem().string() + ".npy");
        save_npy(out, t);
        *file = out;
      }
    }
    return c;
  }

  std::vector<nlohmann::json> log_lines() const {
    std::ifstream in(path("metrics.jsonl"));
    std::vector<nlohmann::json> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }
};

TEST_F(RegressionTest, DiabetesFromCsvIsScoredByR2NotAccuracy) {
  const Config c = diabetes_config();
  EXPECT_EQ(c.data.task, Task::kAuto);  // float y with mse: regression, found by itself
  const RunResult r = run_training(c);
  ASSERT_EQ(r.test.samples, 90);
  EXPECT_TRUE(r.test.regression);
  EXPECT_TRUE(std::isnan(r.test.accuracy));
  // A least-squares line reaches R^2 0.548 on this split; a trained MLP is near it.
  EXPECT_GT(r.test.r2, 0.40);
  EXPECT_LT(r.test.r2, 0.70);
  EXPECT_GT(r.test.mse, 0.0);
  EXPECT_DOUBLE_EQ(r.test.mse, r.test.loss);  // mse: the loss is the MSE
  ASSERT_EQ(r.epochs.size(), 60u);
  for (const EpochMetrics& m : r.epochs) {
    EXPECT_TRUE(m.regression);
    EXPECT_TRUE(std::isnan(m.train_accuracy) && std::isnan(m.val_accuracy));
    EXPECT_TRUE(std::isfinite(m.train_r2) && std::isfinite(m.val_r2));
  }
  EXPECT_GT(r.epochs.back().train_r2, r.epochs.front().train_r2);

  // The log says r2, never accuracy.
  const std::vector<nlohmann::json> lines = log_lines();
  ASSERT_EQ(lines.size(), 61u);
  for (const nlohmann::json& line : lines) {
    for (const auto& item : line.items()) {
      EXPECT_EQ(item.key().find("accuracy"), std::string::npos) << line.dump();
    }
  }
  EXPECT_TRUE(lines.front().contains("train_r2") && lines.front().contains("val_r2"));
  EXPECT_DOUBLE_EQ(lines.back()["test_r2"].get<double>(), r.test.r2);
  EXPECT_DOUBLE_EQ(lines.back()["test_mse"].get<double>(), r.test.mse);
}

TEST_F(RegressionTest, NpyTargetsOfShapeNAndNx1TrainAsTheCsvDoes) {
  const RunResult csv = run_training(diabetes_config());
  for (const bool column : {false, true}) {
    const RunResult npy = run_training(npy_config(column));
    EXPECT_TRUE(npy.test.regression);
    // The same float32 values in, the same bits out.
    EXPECT_EQ(npy.test.loss, csv.test.loss) << "y as [N" << (column ? ", 1]" : "]");
    EXPECT_EQ(npy.test.r2, csv.test.r2);
  }
}

TEST_F(RegressionTest, EvaluateMatchesR2AndMseComputedByHand) {
  Config c = diabetes_config();
  c.train.epochs = 5;
  const DataSplits data = load_data(c, 1);
  Sequential model(data.train.features(), c.model.resolved_layers());
  model.init(c.model.init, c.model.init_std, 3);
  for (const Loss loss : {Loss::kMse, Loss::kSse}) {
    const Evaluation e = evaluate(model, loss, data.test);
    const std::vector<float> out = model.predict(data.test.x).to_vector<float>();
    const std::vector<float> y = data.test.targets.to_vector<float>();
    double mean = 0, squares = 0, residuals = 0;
    for (float v : y) mean += v;
    mean /= static_cast<double>(y.size());
    for (size_t i = 0; i < y.size(); ++i) {
      squares += (y[i] - mean) * (y[i] - mean);
      residuals += (static_cast<double>(out[i]) - y[i]) * (static_cast<double>(out[i]) - y[i]);
    }
    EXPECT_NEAR(e.mse, residuals / static_cast<double>(y.size()), 1e-6 * e.mse) << loss_name(loss);
    EXPECT_NEAR(e.r2, 1.0 - residuals / squares, 1e-6) << loss_name(loss);
    EXPECT_TRUE(std::isnan(e.accuracy));
  }
}

TEST_F(RegressionTest, TaskDecidesWhatYIs) {
  // Integer labels with mse stay classification (one-hot targets, accuracy).
  Config c = diabetes_config();
  c.data.task = Task::kClassification;
  // The diabetes targets as labels: 25..346 is outside a 1-output model's classes.
  try {
    load_data(c, 1);
    FAIL() << "expected an error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("train_y.csv"), std::string::npos) << e.what();
  }
  // Regression needs mse or sse, and files.
  Config bad = diabetes_config();
  bad.data.task = Task::kRegression;
  bad.loss = Loss::kCrossEntropy;
  EXPECT_THROW(bad.validate(), ValueError);
  // A source that holds class labels is refused where the data are loaded from it, not by the
  // config: data held in memory (the library's and Python's fit) may be regression targets
  // under any data.source.
  bad = Config();
  bad.data.task = Task::kRegression;
  bad.loss = Loss::kMse;
  bad.data.source = DataSource::kSynthetic;
  EXPECT_NO_THROW(bad.validate());
  try {
    load_data(bad, 1);
    FAIL() << "expected an error";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(),
                 "config: data.task: regression expects data.source 'files' (float targets), "
                 "found 'synthetic'");
  }
  EXPECT_THROW(load_evaluation_set(bad, 1, {}), ValueError);
  // A model with 10 outputs cannot fit a 1-column target.
  try {
    load_data(diabetes_config(), 10);
    FAIL() << "expected an error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("with 10 column(s) (the model's outputs)"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("[352, 1]"), std::string::npos) << e.what();
  }
}

// Float rows [N, K] are class scores under auto (argmax labels, accuracy); task regression
// makes them K targets, scored by the variance-weighted R^2.
TEST_F(RegressionTest, SeveralTargetsPerRowNeedTaskRegression) {
  Config c = npy_config(true);
  for (FilePair* files : {&c.data.train, &c.data.test}) {
    const Tensor y = to_float_tensor(load_array(files->y));
    Tensor two({y.rows(), 2});
    for (int64_t i = 0; i < y.rows(); ++i) {
      two.data<float>()[2 * i] = y.data<float>()[i];
      two.data<float>()[2 * i + 1] = 0.5f * y.data<float>()[i] + 10.0f;
    }
    files->y = path(fs::path(files->y).stem().string() + "_2.npy");
    save_npy(files->y, two);
  }
  c.model.layers.back().units = 2;
  const DataSplits classes = load_data(c, 2);
  EXPECT_FALSE(classes.train.regression);
  EXPECT_TRUE(classes.train.labels.defined());
  c.data.task = Task::kRegression;
  const DataSplits targets = load_data(c, 2);
  EXPECT_TRUE(targets.test.regression);
  EXPECT_FALSE(targets.test.labels.defined());
  // Pooled: sum of squares over both columns / (N * 2).
  const std::vector<float> y = targets.test.targets.to_vector<float>();
  double mean[2] = {0, 0}, squares = 0;
  for (size_t i = 0; i < y.size(); ++i) mean[i % 2] += y[i] / 90.0;
  for (size_t i = 0; i < y.size(); ++i) squares += (y[i] - mean[i % 2]) * (y[i] - mean[i % 2]);
  EXPECT_NEAR(targets.test.target_variance, squares / 180.0, 1e-9 * squares);
  c.train.epochs = 20;
  const RunResult r = run_training(c);
  EXPECT_TRUE(r.test.regression);
  EXPECT_GT(r.test.r2, 0.2);
}

TEST_F(RegressionTest, NormalizeAutoStandardizesFloatFeatures) {
  const DataSplits data = load_data(diabetes_config(), 1);
  ASSERT_TRUE(data.standardization.defined());
  EXPECT_NE(data.normalization.find("standardized"), std::string::npos) << data.normalization;
  // Each training feature now has mean 0 and standard deviation 1.
  const std::vector<float> x = data.train.x.to_vector<float>();
  const int64_t n = data.train.size(), f = data.train.features();
  for (int64_t j = 0; j < f; ++j) {
    double mean = 0, square = 0;
    for (int64_t i = 0; i < n; ++i) mean += x[i * f + j];
    mean /= static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) square += (x[i * f + j] - mean) * (x[i * f + j] - mean);
    EXPECT_NEAR(mean, 0.0, 1e-5) << "feature " << j;
    EXPECT_NEAR(std::sqrt(square / static_cast<double>(n)), 1.0, 1e-5) << "feature " << j;
  }
  // Targets are left as they are.
  EXPECT_GT(data.train.targets.to_vector<float>()[0], 20.0f);
}

TEST_F(RegressionTest, DatasetWithoutLabelsOrTargetsIsAClearError) {
  Dataset d;
  d.name = "train";
  d.x = Tensor::zeros({4, 2});
  Sequential model(2, {{1, Activation::kIdentity}});
  TrainerOptions options;
  options.loss = Loss::kMse;
  try {
    Trainer t(options, model, d);
    FAIL() << "expected an error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("class labels"), std::string::npos) << e.what();
  }
  d.regression = true;
  EXPECT_THROW(Trainer(options, model, d), ShapeError);  // regression, but no targets
  d.targets = Tensor::zeros({4, 1});
  EXPECT_NO_THROW(Trainer(options, model, d));
}

}  // namespace
}  // namespace mlpx
