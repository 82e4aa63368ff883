// End-to-end tests of the mlpx binary: exit codes, one-line errors, outputs.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_fixture.h"
#include "mlpx/array_io.h"
#include "mlpx/checkpoint.h"
#include "mlpx/config.h"
#include "mlpx/dataset.h"
#include "mlpx/safetensors.h"

namespace mlpx {
namespace {

namespace fs = std::filesystem;

class Cli : public test::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    std::ofstream(path("small.json")) << R"({
      "device": "cpu",
      "data": {"source": "synthetic",
               "synthetic": {"train_samples": 800, "test_samples": 300, "features": 12, "classes": 5}},
      "model": {"layers": [{"units": 32, "activation": "relu"}, {"units": 5, "activation": "identity"}]},
      "train": {"epochs": 5, "batch_size": 32},
      "output": {"checkpoint": ")" + path("model.safetensors") +
                                             R"(", "log": ")" + path("log.jsonl") + R"("}
    })";
  }
};

TEST_F(Cli, HelpEverywhere) {
  for (const char* cmd : {"--help", "train --help", "eval --help", "predict --help"}) {
    const test::CliResult r = run(cmd);
    EXPECT_EQ(r.status, 0) << cmd;
    EXPECT_NE(r.out.find("--"), std::string::npos) << cmd;
  }
}

TEST_F(Cli, TrainLearnsThenEvalAndPredictAgreeWithIt) {
  const test::CliResult train = run("train --config " + path("small.json"));
  ASSERT_EQ(train.status, 0) << train.err;
  EXPECT_NE(train.out.find("epoch 5/5"), std::string::npos) << train.out;

  std::vector<nlohmann::json> epochs;
  nlohmann::json final_line;
  std::istringstream log(test::slurp(path("log.jsonl")));
  for (std::string line; std::getline(log, line);) {
    auto j = nlohmann::json::parse(line);
    (j.contains("epoch") ? epochs.emplace_back(j) : final_line) = j;
  }
  ASSERT_EQ(epochs.size(), 5u);
  EXPECT_LT(epochs.back()["train_loss"].get<double>(), epochs.front()["train_loss"].get<double>());
  EXPECT_GT(epochs.back()["train_accuracy"].get<double>(),
            epochs.front()["train_accuracy"].get<double>());

  // eval scores the checkpoint's test set: the trainer's own final numbers.
  const test::CliResult eval = run("eval --model " + path("model.safetensors"));
  ASSERT_EQ(eval.status, 0) << eval.err;
  const auto scores = nlohmann::json::parse(eval.out);
  EXPECT_NEAR(scores["loss"].get<double>(), final_line["test_loss"].get<double>(), 1e-6);
  EXPECT_DOUBLE_EQ(scores["accuracy"].get<double>(), final_line["test_accuracy"].get<double>());
  EXPECT_EQ(scores["samples"].get<int64_t>(), 300);

  // predict on the same rows: probability rows whose argmax gives the same accuracy.
  const Config config = Config::load(path("small.json"));
  const Dataset test = make_synthetic(config.data.synthetic, 300, config.seed, 1);
  save_npy(path("x.npy"), test.x);
  for (const char* ext : {".npy", ".csv"}) {
    const std::string out = path(std::string("y") + ext);
    const test::CliResult predict = run("predict --model " + path("model.safetensors") +
                                        " --input " + path("x.npy") + " --output " + out);
    ASSERT_EQ(predict.status, 0) << predict.err;
    const Tensor probs = to_float_tensor(load_array(out));
    ASSERT_EQ(probs.shape(), (Shape{300, 5}));
    int correct = 0;
    for (int64_t i = 0; i < 300; ++i) {
      const float* row = probs.data<float>() + i * 5;
      double sum = 0;
      for (int k = 0; k < 5; ++k) sum += row[k];
      EXPECT_NEAR(sum, 1.0, 1e-5);
      correct += (std::max_element(row, row + 5) - row) == test.labels.data<int32_t>()[i];
    }
    EXPECT_DOUBLE_EQ(correct / 300.0, scores["accuracy"].get<double>()) << ext;
  }
}

TEST_F(Cli, ResumeContinuesARun) {
  ASSERT_EQ(run("train --config " + path("small.json") + " --epochs 2").status, 0);
  const test::CliResult resumed =
      run("train --resume " + path("model.safetensors") + " --epochs 4 --log " +
          path("resumed.jsonl") + " --checkpoint " + path("resumed.safetensors"));
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("resuming"), std::string::npos);
  EXPECT_NE(resumed.out.find("epoch 3/4"), std::string::npos);
  EXPECT_EQ(resumed.out.find("epoch 1/4"), std::string::npos);
}

// --resume auto: fresh without the run's checkpoint (and says so), resumed from it once it
// exists; without output.checkpoint it has nothing to look for, and says that.
TEST_F(Cli, ResumeAutoStartsFreshThenResumesTheRunsOwnCheckpoint) {
  const std::string train = "train --config " + path("small.json") + " --resume auto";
  const test::CliResult fresh = run(train + " --epochs 2");
  ASSERT_EQ(fresh.status, 0) << fresh.err;
  EXPECT_NE(fresh.out.find("--resume auto: no checkpoint at " + path("model.safetensors") +
                           " yet: starting fresh"),
            std::string::npos)
      << fresh.out;
  EXPECT_NE(fresh.out.find("epoch 1/2"), std::string::npos);

  const test::CliResult resumed = run(train + " --epochs 4");
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("resuming " + path("model.safetensors") + " after epoch 2"),
            std::string::npos)
      << resumed.out;
  EXPECT_EQ(resumed.out.find("epoch 2/4"), std::string::npos);
  EXPECT_NE(resumed.out.find("epoch 3/4"), std::string::npos);

  const test::CliResult none = run(train + " --no-checkpoint");
  EXPECT_EQ(none.status, 1);
  EXPECT_EQ(none.err,
            "error: --resume auto: expected the run's own checkpoint (output.checkpoint), found "
            "none (--no-checkpoint or an empty output.checkpoint)\n");
}

TEST_F(Cli, FailuresAreOneLineErrorsAndLeaveNoOutput) {
  std::ofstream(path("bad.json")) << R"({"optimizer": {"lr": "fast"}})";
  const test::CliResult bad =
      run("train --config " + path("bad.json") + " --checkpoint " + path("no.safetensors"));
  EXPECT_NE(bad.status, 0);
  EXPECT_EQ(bad.err, "error: " + path("bad.json") +
                         ": config: optimizer.lr: expected a number, found a string\n");
  EXPECT_FALSE(fs::exists(path("no.safetensors")));

  std::ofstream(path("garbage.safetensors")) << "not a checkpoint";
  const test::CliResult eval = run("eval --model " + path("garbage.safetensors"));
  EXPECT_NE(eval.status, 0);
  EXPECT_EQ(eval.err.rfind("error: ", 0), 0u) << eval.err;
  EXPECT_EQ(std::count(eval.err.begin(), eval.err.end(), '\n'), 1) << eval.err;

  const test::CliResult predict =
      run("predict --model " + path("garbage.safetensors") + " --input " + path("bad.json") +
          " --output " + path("y.txt"));
  EXPECT_NE(predict.status, 0);
  EXPECT_FALSE(fs::exists(path("y.txt")));

  EXPECT_NE(eval.err.find("not a safetensors file"), std::string::npos) << eval.err;
}

// bce with one output and 0/1 targets of any dtype: trains, scores accuracy as sigmoid > 0.5,
// and predict writes each row's probability. NaN in X is refused at load, naming the file,
// the row and the column.
TEST_F(Cli, BinaryBceWithOneOutputAndNonFiniteFeatures) {
  constexpr int64_t kRows = 200;
  Tensor x({kRows, 2}), y({kRows});
  for (int64_t i = 0; i < kRows; ++i) {
    const float a = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
    const float b = static_cast<float>((i * 61) % 103) / 51.0f - 1.0f;
    x.data<float>()[i * 2] = a;
    x.data<float>()[i * 2 + 1] = b;
    y.data<float>()[i] = a + b > 0.0f ? 1.0f : 0.0f;
  }
  save_npy(path("x.npy"), x);
  save_npy(path("y.npy"), y);
  std::ofstream(path("binary.json")) << R"({
    "device": "cpu",
    "data": {"source": "files", "train": {"x": "x.npy", "y": "y.npy"}},
    "model": {"layers": [{"units": 8, "activation": "relu"}, {"units": 1, "activation": "identity"}]},
    "loss": "bce", "optimizer": {"lr": 0.05}, "train": {"epochs": 30, "batch_size": 50},
    "output": {"checkpoint": "binary.safetensors", "log": "binary.jsonl"}
  })";
  const test::CliResult train = run("train --quiet --config " + path("binary.json"));
  ASSERT_EQ(train.status, 0) << train.err;
  nlohmann::json last;
  std::istringstream log(test::slurp(path("binary.jsonl")));
  for (std::string line; std::getline(log, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("epoch")) last = j;
  }
  EXPECT_GT(last["train_accuracy"].get<double>(), 0.9) << last.dump();

  const test::CliResult predict = run("predict --model " + path("binary.safetensors") +
                                      " --input " + path("x.npy") + " --output " + path("p.npy"));
  ASSERT_EQ(predict.status, 0) << predict.err;
  const Tensor probs = to_float_tensor(load_array(path("p.npy")));
  ASSERT_EQ(probs.shape(), (Shape{kRows, 1}));
  int correct = 0;
  for (int64_t i = 0; i < kRows; ++i) {
    const float p = probs.data<float>()[i];
    EXPECT_TRUE(p >= 0.0f && p <= 1.0f) << p;
    correct += (p > 0.5f) == (y.data<float>()[i] > 0.5f);
  }
  EXPECT_GT(correct, kRows * 9 / 10);

  x.data<float>()[7 * 2 + 1] = std::nanf("");
  save_npy(path("x.npy"), x);
  const test::CliResult nan = run("train --quiet --config " + path("binary.json"));
  EXPECT_EQ(nan.status, 1);
  EXPECT_EQ(nan.err,
            "error: " + path("x.npy") + ": expected finite values, found nan at row 7, column 1\n");
}

// --no-checkpoint saves nothing; --checkpoint "" is refused rather than falling back to the
// config's path.
TEST_F(Cli, NoCheckpointAndEmptyCheckpointPath) {
  const test::CliResult none =
      run("train --quiet --epochs 1 --no-checkpoint --config " + path("small.json"));
  ASSERT_EQ(none.status, 0) << none.err;
  EXPECT_FALSE(fs::exists(path("model.safetensors")));
  const test::CliResult empty =
      run("train --quiet --epochs 1 --checkpoint '' --config " + path("small.json"));
  EXPECT_EQ(empty.status, 1);
  EXPECT_EQ(empty.err,
            "error: --checkpoint: expected a file name, found an empty one (--no-checkpoint "
            "saves none)\n");
  EXPECT_FALSE(fs::exists(path("model.safetensors")));
  EXPECT_EQ(run("train --no-checkpoint --checkpoint x --config " + path("small.json")).status, 2);
}

// mlpx config: --defaults prints a config that loads back as the defaults; --check validates.
TEST_F(Cli, ConfigDefaultsAndCheck) {
  const test::CliResult defaults = run("config --defaults");
  ASSERT_EQ(defaults.status, 0) << defaults.err;
  EXPECT_EQ(Config::from_json(defaults.out).to_json(), Config().to_json());
  const test::CliResult ok = run("config --check " + path("small.json"));
  ASSERT_EQ(ok.status, 0) << ok.err;
  EXPECT_EQ(Config::from_json(ok.out).to_json(), Config::load(path("small.json")).to_json());
  EXPECT_EQ(ok.err, path("small.json") + ": ok\n");
  std::ofstream(path("typo.json")) << R"({"optimizer": {"learning_rate": 0.1}})";
  const test::CliResult typo = run("config --check " + path("typo.json"));
  EXPECT_EQ(typo.status, 1);
  EXPECT_EQ(typo.err, "error: " + path("typo.json") +
                          ": config: unknown key 'optimizer.learning_rate' (did you mean 'lr'?)\n");
  EXPECT_EQ(run("config").status, 2);
  EXPECT_EQ(run("config --defaults --check " + path("small.json")).status, 2);
  // --keys: one line per key of the table, beginning with its path.
  const test::CliResult keys = run("config --keys");
  ASSERT_EQ(keys.status, 0) << keys.err;
  EXPECT_EQ(static_cast<size_t>(std::count(keys.out.begin(), keys.out.end(), '\n')),
            config_fields().size());
  EXPECT_NE(keys.out.find("\noptimizer.lr "), std::string::npos) << keys.out;
  EXPECT_NE(keys.out.find("learning rate [sweep]\n"), std::string::npos) << keys.out;
  EXPECT_EQ(run("config --keys --defaults").status, 2);
}

// A wrong command line: one "error: ..." line and status 2, whatever CLI11 found wrong.
TEST_F(Cli, UsageErrorsAreOneLineAndStatus2) {
  for (const char* args :
       {"train --no-such-flag", "", "train --epochs", "predict --model x", "no-such-command"}) {
    const test::CliResult r = run(args);
    EXPECT_EQ(r.status, 2) << args << ": " << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
  }
  EXPECT_NE(run("train --epochs").err.find("--epochs"), std::string::npos);
  const test::CliResult help = run("--help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("train"), std::string::npos);
}

// The usage errors a user meets most, each one line that says what was expected and found.
TEST_F(Cli, UsageErrorsSayWhatWasExpected) {
  const std::string config = " --config " + path("small.json");
  EXPECT_EQ(run("train --epochs -1" + config).err,
            "error: --epochs: expected an integer >= 0, found -1\n");
  EXPECT_EQ(run("train --batch-size 1.5" + config).err,
            "error: --batch-size: expected an integer >= 0, found 1.5\n");
  EXPECT_EQ(run("train --lr fast" + config).err,
            "error: --lr: expected a number >= 0, found fast\n");
  EXPECT_EQ(run("train --confg " + path("small.json")).err,
            "error: unknown option --confg (did you mean --config?)\n");
  EXPECT_EQ(run("eval --model " + path("none.safetensors")).err,
            "error: --model: expected an existing file, found no file at " +
                path("none.safetensors") + "\n");
  EXPECT_EQ(run("train --device gpu" + config).err,
            "error: --device: expected auto, cpu, cuda or cuda:N, found gpu\n");
  const test::CliResult cuda = run("train --device cuda" + config);
  EXPECT_EQ(cuda.status, cuda_available() ? 0 : 2);
  if (!cuda_available()) {
    EXPECT_EQ(cuda.err,
              "error: --device: no CUDA device is visible (--device cuda needs an NVIDIA GPU and "
              "its driver); use --device cpu\n");
  }
  std::ofstream(path("bad_lr.json")) << R"({"optimizer": {"lr": -1}})";
  EXPECT_EQ(run("config --check " + path("bad_lr.json")).err,
            "error: " + path("bad_lr.json") +
                ": config: optimizer.lr: expected a finite value >= 0, found -1\n");
}

// Without --config, train runs the shipped recipe and its header says so, with the schedule
// and the normalisation.
TEST_F(Cli, TrainWithoutConfigRunsTheShippedRecipe) {
  const test::CliResult r = run(
      "train --device cpu --epochs 1 --batch-size 0 --no-checkpoint --log " + path("log.jsonl"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("config: the Fashion-MNIST recipe (configs/fashion-mnist.json)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("schedule step: lr 0.001, x0.1 every 10 epochs; 1 epoch"), std::string::npos)
      << r.out;
  // Fashion-MNIST's uint8 pixels are scaled; the synthetic fallback's floats standardized.
  EXPECT_TRUE(r.out.find("normalize auto: uint8 features scaled by 1/255") != std::string::npos ||
              r.out.find("normalize auto: standardized per feature") != std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("classification: scored by accuracy"), std::string::npos) << r.out;
}

// Regression end to end, with the config's relative paths resolved against its folder and
// eval run from elsewhere reading only the test files.
TEST_F(Cli, RegressionTrainsEvaluatesAndPlotsFromAnyFolder) {
  const fs::path data = fs::path(MLPX_SOURCE_DIR) / "tests/data/diabetes";
  fs::create_directories(path("job/data"));
  for (const char* f : {"train_x.csv", "train_y.csv", "test_x.csv", "test_y.csv"}) {
    fs::copy_file(data / f, path(std::string("job/data/") + f));
  }
  std::ofstream(path("job/run.json")) << R"({
    "device": "cpu",
    "data": {"source": "files",
             "train": {"x": "data/train_x.csv", "y": "data/train_y.csv"},
             "test": {"x": "data/test_x.csv", "y": "data/test_y.csv"}},
    "model": {"layers": [{"units": 16, "activation": "relu"}, {"units": 1, "activation": "identity"}]},
    "loss": "mse", "optimizer": {"lr": 0.01}, "train": {"epochs": 40, "batch_size": 32},
    "output": {"checkpoint": "out/model.safetensors", "log": "out/log.jsonl"}
  })";
  fs::create_directories(path("job/out"));
  const test::CliResult train = run("train --config " + path("job/run.json"), "cd / &&");
  ASSERT_EQ(train.status, 0) << train.err;
  EXPECT_NE(train.out.find("regression: scored by R^2 and MSE"), std::string::npos) << train.out;
  EXPECT_NE(train.out.find(" r2 "), std::string::npos) << train.out;
  EXPECT_EQ(train.out.find("acc"), std::string::npos) << train.out;
  ASSERT_TRUE(fs::exists(path("job/out/model.safetensors")));  // beside the config, not in /

  nlohmann::json test_line;
  std::istringstream log(test::slurp(path("job/out/log.jsonl")));
  for (std::string line; std::getline(log, line);) test_line = nlohmann::json::parse(line);
  ASSERT_TRUE(test_line.contains("test_r2")) << test_line.dump();

  // eval from another folder, the training files gone: only the test set is read.
  fs::remove(path("job/data/train_x.csv"));
  fs::remove(path("job/data/train_y.csv"));
  const test::CliResult eval =
      run("eval --model " + path("job/out/model.safetensors"), "cd /tmp &&");
  ASSERT_EQ(eval.status, 0) << eval.err;
  const auto scores = nlohmann::json::parse(eval.out);
  EXPECT_FALSE(scores.contains("accuracy")) << eval.out;
  EXPECT_NEAR(scores["r2"].get<double>(), test_line["test_r2"].get<double>(), 1e-6);
  EXPECT_NEAR(scores["mse"].get<double>(), test_line["test_mse"].get<double>(),
              1e-6 * test_line["test_mse"].get<double>());
  EXPECT_EQ(scores["samples"].get<int64_t>(), 90);

  if (std::system("command -v gnuplot > /dev/null 2>&1") == 0) {
    const test::CliResult plot =
        run("plot " + path("job/out/log.jsonl") + " --out " + path("curves.png"));
    EXPECT_EQ(plot.status, 0) << plot.err;
    EXPECT_TRUE(fs::exists(path("curves.png")));
    const test::CliResult mixed = run("plot " + path("job/out/log.jsonl") + " " +
                                      path("job/out/log.jsonl") + " --out " + path("c.png"));
    EXPECT_EQ(mixed.status, 0) << mixed.err;
  }
}

// --init-weights starts from a file named as torch.nn.Sequential's state_dict() names it.
TEST_F(Cli, InitWeightsFromATorchStateDict) {
  std::vector<std::pair<std::string, Tensor>> state;
  const std::vector<std::pair<std::string, Shape>> shapes = {
      {"0.weight", {32, 12}}, {"0.bias", {32}}, {"2.weight", {5, 32}}, {"2.bias", {5}}};
  std::vector<float> expected;
  for (const auto& [name, shape] : shapes) {
    Tensor t(shape);
    for (int64_t i = 0; i < t.numel(); ++i) {
      t.data<float>()[i] = 0.01f * static_cast<float>((i * 7 + name.size()) % 23) - 0.1f;
      expected.push_back(t.data<float>()[i]);
    }
    state.emplace_back(name, t);
  }
  save_safetensors(path("torch.safetensors"), state);
  const test::CliResult r = run("train --config " + path("small.json") +
                                    " --epochs 1 --init-weights " + path("torch.safetensors"),
                                "");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("initial weights from " + path("torch.safetensors")), std::string::npos)
      << r.out;

  // The weights before the first step are the file's.
  std::ofstream(path("init.json")) << R"({"device": "cpu", "data": {"source": "synthetic",
      "synthetic": {"train_samples": 800, "test_samples": 300, "features": 12, "classes": 5}},
      "model": {"layers": [{"units": 32, "activation": "relu"}, {"units": 5, "activation": "identity"}]},
      "train": {"epochs": 1}, "output": {"checkpoint": "", "log": "",
      "init_checkpoint": "init.safetensors"}})";
  ASSERT_EQ(run("train --quiet --config " + path("init.json") + " --init-weights " +
                path("torch.safetensors"))
                .status,
            0);
  EXPECT_EQ(load_checkpoint(path("init.safetensors")).model.params().to_vector<float>(), expected);

  const test::CliResult both =
      run("train --config " + path("small.json") + " --init-weights " + path("torch.safetensors") +
          " --resume " + path("init.safetensors"));
  EXPECT_EQ(both.status, 2) << both.err;
  std::ofstream(path("wide.json")) << R"({"device": "cpu", "data": {"source": "synthetic",
      "synthetic": {"features": 12, "classes": 5}},
      "model": {"layers": [{"units": 64, "activation": "relu"}, {"units": 5, "activation": "identity"}]},
      "output": {"checkpoint": "", "log": ""}})";
  const test::CliResult wrong =
      run("train --config " + path("wide.json") + " --init-weights " + path("torch.safetensors"));
  EXPECT_EQ(wrong.status, 1);
  EXPECT_EQ(wrong.err, "error: " + path("torch.safetensors") +
                           ": '0.weight': expected [64, 12] (layer 0's weight [out, in]), found "
                           "[32, 12]\n");
}

}  // namespace
}  // namespace mlpx
