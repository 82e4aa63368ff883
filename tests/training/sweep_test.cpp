// mlpx/sweep.h: the search space, grid / random / halving sweeps on a tiny synthetic set, the
// trials file (torn last line, resume) and the validation-only scoring.
#include "mlpx/sweep.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "mlpx/error.h"
#include "test_util.h"

namespace mlpx {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class SweepTest : public test::TempDirTest {
 protected:
  SweepTest() : TempDirTest("mlpx-sweep") {}

  static Config tiny_config() {
    return Config::from_json(R"({
      "device": "cpu",
      "data": {"source": "synthetic", "validation_split": 0.25,
               "synthetic": {"train_samples": 240, "test_samples": 50, "features": 6, "classes": 3}},
      "model": {"layers": [{"units": 8, "activation": "relu"}, {"units": 3, "activation": "identity"}]},
      "train": {"epochs": 3, "batch_size": 32},
      "output": {"checkpoint": "", "log": ""}
    })");
  }

  SweepOptions options(const std::string& space, SweepMethod method, const std::string& dir) {
    SweepOptions o;
    o.base = tiny_config();
    o.space = parse_search_space(space, o.base);
    o.method = method;
    o.dir = path(dir);
    return o;
  }

  static std::vector<std::string> lines_of(const std::string& file) {
    std::ifstream in(file);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
};

std::string space_error(const std::string& space) {
  try {
    parse_search_space(space, Config::from_json(R"({"device": "cpu"})"));
  } catch (const ValueError& e) {
    return e.what();
  }
  return "no error";
}

TEST(SearchSpace, ErrorsNameTheKey) {
  const std::map<std::string, std::string> cases = {
      {R"({"optimizer.learning_rate": {"uniform": [0.1, 0.2]}})", "optimizer.learning_rate"},
      {R"({"optimiser.lr": {"uniform": [0.1, 0.2]}})", "optimiser.lr"},
      {R"({"model.layers.7.units": {"int": [1, 4]}})", "model.layers.7.units"},
      {R"({"model.layers.0.colour": {"choice": [1]}})", "model.layers.0.colour"},
      {R"({"train.batch_size": {"choice": []}})", "train.batch_size"},
      {R"({"optimizer.lr": {"uniform": [0.2, 0.1]}})", "optimizer.lr"},
      {R"({"optimizer.lr": {"loguniform": [0, 0.1]}})", "optimizer.lr"},
      {R"({"optimizer.lr": {"uniform": [0.1]}})", "optimizer.lr"},
      {R"({"model.layers.0.units": {"int": [1.5, 4]}})", "model.layers.0.units"},
      {R"({"optimizer.lr": {"normal": [0, 1]}})", "optimizer.lr"},
      {R"({"model.init": {"choice": ["he_normal", "glorot"]}})", "model.init"},
      {R"({"train.epochs": {"int": [-3, 4]}})", "train.epochs"},
  };
  for (const auto& [space, key] : cases) {
    const std::string error = space_error(space);
    EXPECT_NE(error.find("space: " + key), std::string::npos) << space << " -> " << error;
  }
  EXPECT_NE(space_error("{}").find("space"), std::string::npos);
}

// The keys a space may search are the config table's hyperparameters (mlpx config --keys).
TEST(SearchSpace, KeysAreTheConfigTablesHyperparameters) {
  EXPECT_NE(space_error(R"({"device": {"choice": ["cpu"]}})")
                .find("space: device: expected a hyperparameter, found a key a sweep may not "
                      "search"),
            std::string::npos);
  EXPECT_NE(space_error(R"({"output.log": {"choice": ["a.jsonl"]}})").find("space: output.log"),
            std::string::npos);
  EXPECT_EQ(space_error(R"({"optimiser.lr": {"uniform": [0.1, 0.2]}})"),
            "space: optimiser.lr: unknown config key (did you mean 'optimizer.lr'?)");
  EXPECT_EQ(space_error(R"({"optimizer.learning_rate": {"uniform": [0.1, 0.2]}})"),
            "space: optimizer.learning_rate: unknown config key (did you mean 'optimizer.lr'?)");
  EXPECT_EQ(space_error(R"({"model.layers.1.activaton": {"choice": ["relu"]}})"),
            "space: model.layers.1.activaton: unknown config key (did you mean "
            "'model.layers.1.activation'?)");
  // An object whose keys are all hyperparameters may be searched whole.
  EXPECT_EQ(space_error(R"({"optimizer": {"choice": [{"type": "sgd"}, {"type": "adam"}]}})"),
            "no error");
  EXPECT_NE(space_error(R"({"train": {"choice": [{"epochs": 1}]}})").find("space: train"),
            std::string::npos);
}

// The training knobs are hyperparameters a sweep may search, label smoothing included although
// the base config writes "loss" as a name.
TEST(SearchSpace, SearchesTheTrainingKnobs) {
  const Config base = Config::from_json(R"({"device": "cpu"})");
  const std::vector<SearchParam> space = parse_search_space(
      R"({"loss.label_smoothing": {"choice": [0.0, 0.2]}, "train.clip_grad_norm": {"choice": [1.0]},
          "train.accumulate_steps": {"choice": [2]}, "optimizer.decay": {"choice": ["weights"]},
          "schedule.type": {"choice": ["onecycle"]}, "schedule.max_lr": {"choice": [0.05]}})",
      base);
  ASSERT_EQ(space.size(), 6u);
  const Config c =
      apply_point(base, space, {"0.2", "1.0", "2", "\"weights\"", "\"onecycle\"", "0.05"});
  EXPECT_EQ(c.loss, Loss::kCrossEntropy);
  EXPECT_EQ(c.label_smoothing, 0.2);
  EXPECT_EQ(c.train.clip_grad_norm, 1.0);
  EXPECT_EQ(c.train.accumulate_steps, 2);
  EXPECT_EQ(c.optimizer.decay, Decay::kWeights);
  EXPECT_EQ(c.schedule.type, ScheduleType::kOneCycle);
  EXPECT_EQ(c.schedule.max_lr, 0.05);
}

TEST(SearchSpace, DrawsStayInsideTheirBoundsAndRepeatFromTheSeed) {
  const std::vector<SearchParam> space = parse_search_space(
      R"({"optimizer.lr": {"loguniform": [1e-4, 1e-1]}, "train.batch_size": {"choice": [32, 128, 512]},
          "model.layers.0.units": {"int": [2, 5]}, "optimizer.beta1": {"uniform": [0.8, 0.95]},
          "model.init": {"choice": ["xavier_normal", "he_normal"]}})",
      Config::from_json(R"({"device": "cpu"})"));
  ASSERT_EQ(space.size(), 5u);
  EXPECT_EQ(space[0].key, "optimizer.lr");  // the file's order
  std::set<int64_t> units;
  std::set<std::string> inits;
  for (int64_t i = 0; i < 200; ++i) {
    const SearchPoint p = random_point(space, 7, i);
    EXPECT_EQ(p, random_point(space, 7, i));
    const double lr = json::parse(p[0]).get<double>();
    EXPECT_GE(lr, 1e-4);
    EXPECT_LE(lr, 1e-1);
    const int64_t u = json::parse(p[2]).get<int64_t>();
    EXPECT_GE(u, 2);
    EXPECT_LE(u, 5);
    units.insert(u);
    inits.insert(p[4]);
    const double beta1 = json::parse(p[3]).get<double>();
    EXPECT_GE(beta1, 0.8);
    EXPECT_LE(beta1, 0.95);
    const Config c = apply_point(Config::from_json(R"({"device": "cpu"})"), space, p);
    EXPECT_EQ(c.model.layers[0].units, u);
    EXPECT_DOUBLE_EQ(c.optimizer.lr, lr);
  }
  EXPECT_EQ(units.size(), 4u);  // both inclusive bounds are drawn
  EXPECT_EQ(inits.size(), 2u);
  EXPECT_NE(random_point(space, 7, 0), random_point(space, 8, 0));
}

// The README's worked sweep: the shipped space fits the shipped recipe, and every draw is a
// config the recipe accepts (two hidden layers, the first with dropout in [0, 0.5]).
TEST(SearchSpace, TheShippedFashionMnistSpaceFitsTheRecipe) {
  const std::string dir = std::string(MLPX_SOURCE_DIR) + "/configs/";
  const Config base = Config::load(dir + "fashion-mnist.json");
  std::ifstream in(dir + "fashion-mnist-sweep.json");
  std::stringstream text;
  text << in.rdbuf();
  const std::vector<SearchParam> space = parse_search_space(text.str(), base);
  ASSERT_EQ(space.size(), 6u);
  for (int64_t i = 0; i < 30; ++i) {
    const Config c = apply_point(base, space, random_point(space, 0, i));
    EXPECT_GE(c.model.layers[0].dropout, 0.0);
    EXPECT_LE(c.model.layers[0].dropout, 0.5);
    EXPECT_EQ(c.model.layers[1].dropout, 0.0);
    EXPECT_GE(c.optimizer.lr, 3e-4);
    EXPECT_LE(c.optimizer.lr, 3e-3);
  }
}

TEST(SearchSpace, HalvingRungs) {
  const std::vector<Rung> r = halving_rungs(27, 9, 3);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].trials, 27);
  EXPECT_EQ(r[0].epochs, 1);
  EXPECT_EQ(r[1].trials, 9);
  EXPECT_EQ(r[1].epochs, 3);
  EXPECT_EQ(r[2].trials, 3);
  EXPECT_EQ(r[2].epochs, 9);
  const std::vector<Rung> few = halving_rungs(30, 15, 3);  // 3^2 <= 15 < 3^3
  ASSERT_EQ(few.size(), 3u);
  EXPECT_EQ(few[0].epochs, 2);
  EXPECT_EQ(few[1].trials, 10);
  EXPECT_EQ(few[1].epochs, 5);
  EXPECT_EQ(few[2].epochs, 15);
  EXPECT_EQ(halving_rungs(2, 10, 3).size(), 1u);
}

TEST_F(SweepTest, GridRunsEveryPointOnceAndWritesBestJson) {
  SweepOptions o = options(
      R"({"optimizer.lr": {"choice": [0.0001, 0.03]}, "model.layers.0.units": {"choice": [4, 12]}})",
      SweepMethod::kGrid, "grid");
  const SweepResult r = run_sweep(o);
  ASSERT_EQ(r.ranked.size(), 4u);
  EXPECT_EQ(r.metric, Metric::kValAccuracy);
  std::set<std::string> params;
  for (size_t i = 0; i < r.ranked.size(); ++i) {
    params.insert(r.ranked[i].params);
    EXPECT_EQ(r.ranked[i].epochs.size(), 3u);
    EXPECT_TRUE(r.ranked[i].error.empty());
    if (i > 0) EXPECT_GE(r.ranked[i - 1].score, r.ranked[i].score);
    double best = 0;
    for (const EpochMetrics& m : r.ranked[i].epochs) best = std::max(best, m.val_accuracy);
    EXPECT_EQ(r.ranked[i].score, best);
  }
  EXPECT_EQ(params.size(), 4u);
  EXPECT_EQ(lines_of(path("grid/trials.jsonl")).size(), 4u);
  const json first = json::parse(lines_of(path("grid/trials.jsonl")).front());
  for (const char* key : {"trial", "config", "epochs", "seconds", "seed", "params", "score"})
    EXPECT_TRUE(first.contains(key)) << key;

  const Config best = Config::load(path("grid/best.json"));
  const json best_params = json::parse(r.ranked.front().params);
  EXPECT_DOUBLE_EQ(best.optimizer.lr, best_params["optimizer.lr"].get<double>());
  EXPECT_EQ(best.model.layers[0].units, best_params["model.layers.0.units"].get<int64_t>());
  EXPECT_EQ(best.train.epochs, r.ranked.front().best_epoch);

  // Rerun: every trial is read back, none trained again.
  const SweepResult again = run_sweep(o);
  EXPECT_EQ(again.resumed, 4);
  EXPECT_EQ(lines_of(path("grid/trials.jsonl")).size(), 4u);
  EXPECT_EQ(again.ranked.front().params, r.ranked.front().params);
}

TEST_F(SweepTest, RandomDrawsTheSameTrialsWithJobsAndResumesAfterATornLine) {
  const std::string space =
      R"({"optimizer.lr": {"loguniform": [1e-4, 1e-1]}, "train.batch_size": {"choice": [16, 64]}})";
  SweepOptions one = options(space, SweepMethod::kRandom, "one");
  one.trials = 5;
  const SweepResult a = run_sweep(one);
  SweepOptions two = options(space, SweepMethod::kRandom, "two");
  two.trials = 5;
  two.jobs = 2;
  const SweepResult b = run_sweep(two);
  ASSERT_EQ(a.ranked.size(), 5u);
  ASSERT_EQ(b.ranked.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {  // side by side, each trial trains as it would alone
    EXPECT_EQ(a.ranked[i].trial, b.ranked[i].trial);
    EXPECT_EQ(a.ranked[i].params, b.ranked[i].params);
    EXPECT_EQ(a.ranked[i].score, b.ranked[i].score);
  }

  // A crash cut the last line short: it is dropped and that trial trained again.
  const std::string file = path("one/trials.jsonl");
  std::vector<std::string> lines = lines_of(file);
  ASSERT_EQ(lines.size(), 5u);
  {
    std::ofstream out(file, std::ios::trunc);
    for (size_t i = 0; i < 4; ++i) out << lines[i] << "\n";
    out << lines[4].substr(0, lines[4].size() / 2);
  }
  const SweepResult resumed = run_sweep(one);
  EXPECT_EQ(resumed.resumed, 4);
  lines = lines_of(file);
  ASSERT_EQ(lines.size(), 5u);
  std::set<int64_t> trials;
  for (const std::string& line : lines) trials.insert(json::parse(line)["trial"].get<int64_t>());
  EXPECT_EQ(trials.size(), 5u);
  EXPECT_EQ(resumed.ranked.front().params, a.ranked.front().params);

  // A folder holding another sweep is refused, not mixed in.
  SweepOptions other = one;
  other.seed = 99;
  EXPECT_THROW(run_sweep(other), ValueError);
  // A bad line before the last is an error naming the line.
  {
    std::ofstream out(file, std::ios::app);
    out << "not json\n" << lines[0] << "\n";
  }
  try {
    read_trials(file);
    ADD_FAILURE() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("line 6"), std::string::npos) << e.what();
  }
}

TEST_F(SweepTest, HalvingPromotesTheBestThirdAndContinuesTheirTraining) {
  SweepOptions o = options(R"({"optimizer.lr": {"loguniform": [1e-5, 3e-1]}})",
                           SweepMethod::kHalving, "halving");
  o.base.train.epochs = 9;
  o.base.schedule.total_epochs = 9;
  o.trials = 9;
  const SweepResult r = run_sweep(o);
  ASSERT_EQ(r.rungs.size(), 3u);  // 9 trials x 1 epoch, 3 x 3, 1 x 9
  std::map<int, std::vector<json>> by_rung;
  for (const std::string& line : lines_of(path("halving/trials.jsonl"))) {
    const json j = json::parse(line);
    by_rung[j["rung"].get<int>()].push_back(j);
  }
  ASSERT_EQ(by_rung[0].size(), 9u);
  ASSERT_EQ(by_rung[1].size(), 3u);
  ASSERT_EQ(by_rung[2].size(), 1u);
  // The three promoted are rung 0's best three.
  std::vector<std::pair<double, int64_t>> rung0;
  for (const json& j : by_rung[0]) rung0.push_back({-j["score"].get<double>(), j["trial"]});
  std::sort(rung0.begin(), rung0.end());
  std::set<int64_t> promoted;
  for (const json& j : by_rung[1]) {
    promoted.insert(j["trial"].get<int64_t>());
    EXPECT_FALSE(j.contains("error")) << j["error"];
    EXPECT_EQ(j["epochs"].size(), 3u);  // rung 0's epoch, then two more
  }
  EXPECT_EQ(promoted, (std::set<int64_t>{rung0[0].second, rung0[1].second, rung0[2].second}));
  EXPECT_EQ(by_rung[2][0]["epochs"].size(), 9u);
  EXPECT_EQ(r.ranked.front().rung, 2);
  EXPECT_EQ(r.ranked.size(), 9u);
  EXPECT_FALSE(fs::exists(path("halving/checkpoints")));  // cleaned up

  // Continuing from rung checkpoints trains as one run would: the winner's curve is the curve
  // of its config trained 9 epochs straight.
  Config straight = Config::from_json(r.ranked.front().config);
  straight.train.epochs = 9;
  straight.output.checkpoint.clear();
  const RunResult whole = run_training(straight);
  ASSERT_EQ(whole.epochs.size(), 9u);
  for (size_t e = 0; e < 9; ++e)
    EXPECT_EQ(whole.epochs[e].val_loss, r.ranked.front().epochs[e].val_loss) << e;
}

TEST_F(SweepTest, NeverReadsTheTestSplitAndScoresRegressionByR2) {
  const std::string diabetes = std::string(MLPX_SOURCE_DIR) + "/tests/data/diabetes/";
  SweepOptions o;
  json base = json::parse(R"({
    "device": "cpu", "loss": "mse",
    "data": {"source": "files", "normalize": "standardize", "validation_split": 0.2},
    "model": {"layers": [{"units": 8, "activation": "relu"}, {"units": 1, "activation": "identity"}]},
    "train": {"epochs": 2, "batch_size": 32}, "output": {"checkpoint": "", "log": ""}})");
  base["data"]["train"] = {{"x", diabetes + "train_x.csv"}, {"y", diabetes + "train_y.csv"}};
  // Reading the test split would fail: these files do not exist.
  base["data"]["test"] = {{"x", path("missing_x.csv")}, {"y", path("missing_y.csv")}};
  o.base = Config::from_json(base.dump());
  o.space = parse_search_space(R"({"optimizer.lr": {"choice": [0.001, 0.01]}})", o.base);
  o.method = SweepMethod::kGrid;
  o.dir = path("regression");
  const SweepResult r = run_sweep(o);
  EXPECT_EQ(r.metric, Metric::kValR2);
  ASSERT_EQ(r.ranked.size(), 2u);
  for (const TrialRecord& t : r.ranked) EXPECT_TRUE(t.error.empty()) << t.error;
  EXPECT_THROW(run_training(o.base), IoError);  // the same config trained plainly reads it

  const Config final = final_config(Config::load(path("regression/best.json")));
  EXPECT_EQ(final.data.validation_split, 0.0);
}

}  // namespace
}  // namespace mlpx
