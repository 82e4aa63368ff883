// End-to-end tests of `mlpx init-study` and `mlpx plot`: files written, PNGs valid and not
// blank, malformed logs rejected with one line.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "cli_fixture.h"

namespace mlpx {
namespace {

namespace fs = std::filesystem;

bool have_gnuplot() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (::access((dir + "/gnuplot").c_str(), X_OK) == 0) return true;
  }
  return false;
}

#define REQUIRE_GNUPLOT() \
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (Debian package gnuplot-nox)"

uint32_t big_endian32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

// A PNG: the 8-byte signature, then IHDR with width and height > 0; and a picture with content
// rather than a blank canvas (a blank canvas of this size compresses to a few KB).
::testing::AssertionResult is_drawn_png(const std::string& path, size_t min_bytes,
                                        uint32_t* width = nullptr, uint32_t* height = nullptr) {
  const std::string png = test::slurp(path);
  if (png.size() < 33) return ::testing::AssertionFailure() << path << ": " << png.size() << " B";
  if (png.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0 || png.compare(12, 4, "IHDR") != 0) {
    return ::testing::AssertionFailure() << path << ": no PNG signature and IHDR";
  }
  const uint32_t w = big_endian32(png, 16), h = big_endian32(png, 20);
  if (w == 0 || h == 0) return ::testing::AssertionFailure() << path << ": " << w << "x" << h;
  if (width) *width = w;
  if (height) *height = h;
  if (png.size() < min_bytes) {
    return ::testing::AssertionFailure() << path << ": " << png.size() << " bytes for " << w << "x"
                                         << h << ", expected at least " << min_bytes << " (blank?)";
  }
  return ::testing::AssertionSuccess();
}

class StudyCli : public test::CliTest {
 protected:
  // A tiny training run whose log goes to `log`.
  void train(const std::string& log, int batch_size) const {
    const std::string config = path("train.json");
    std::ofstream(config) << R"({
      "device": "cpu",
      "data": {"source": "synthetic", "validation_split": 0.2,
               "synthetic": {"train_samples": 400, "test_samples": 100, "features": 8, "classes": 3}},
      "model": {"layers": [{"units": 16, "activation": "relu"}, {"units": 3, "activation": "identity"}]},
      "schedule": {"type": "step", "step_size": 2, "gamma": 0.1},
      "train": {"epochs": 4, "batch_size": )" +
                                 std::to_string(batch_size) + R"(},
      "output": {"checkpoint": "", "log": ")" +
                                 log + R"("}
    })";
    const test::CliResult r = run("train --quiet --config " + config);
    ASSERT_EQ(r.status, 0) << r.err;
  }
};

TEST_F(StudyCli, Help) {
  for (const char* cmd : {"init-study --help", "plot --help"}) {
    const test::CliResult r = run(cmd);
    EXPECT_EQ(r.status, 0) << cmd;
    EXPECT_NE(r.out.find("--out"), std::string::npos) << cmd;
  }
}

TEST_F(StudyCli, InitStudyWritesCsvAndPicture) {
  REQUIRE_GNUPLOT();
  const test::CliResult r = run("init-study --out " + path("study"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("normal_std0.01"), std::string::npos) << r.out;

  const std::string csv = test::slurp(path("study/init_study.csv"));
  EXPECT_EQ(csv.rfind("init,activation,layer,mean,std,frac_near_0,frac_near_1,", 0), 0u) << csv;
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 4 * 3 * 5);
  EXPECT_NE(csv.find("\nhe_normal,relu,5,"), std::string::npos);

  uint32_t width = 0, height = 0;
  EXPECT_TRUE(is_drawn_png(path("study/init_study.png"), 40000, &width, &height));
  EXPECT_GT(height, width);  // 12 rows of 5 panels
  // Nothing left behind but the results, the plot's data and its script.
  for (const auto& entry : fs::directory_iterator(path("study"))) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(name == "init_study.csv" || name == "init_study.png" || name == "init_study.dat" ||
                name == "init_study.gp")
        << name;
  }
}

TEST_F(StudyCli, InitStudyOptionsShapeTheGrid) {
  REQUIRE_GNUPLOT();
  const test::CliResult r =
      run("init-study --out " + path("small") +
          " --inits he_normal,normal_std0.1 --activations relu --depth 3 --width 20 "
          "--samples 200 --features 10 --seed 3 --quiet");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  const std::string csv = test::slurp(path("small/init_study.csv"));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 2 * 3);
  EXPECT_NE(csv.find("\nnormal_std0.1,relu,3,"), std::string::npos) << csv;
  EXPECT_TRUE(is_drawn_png(path("small/init_study.png"), 8000));
}

TEST_F(StudyCli, InitStudyWithoutGnuplotStillWritesTheCsv) {
  const test::CliResult r = run("init-study --out " + path("nognuplot") + " --samples 100 --quiet",
                                "MLPX_GNUPLOT=/nonexistent/gnuplot");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err.rfind("note: gnuplot not found", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("gnuplot-nox"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(path("nognuplot/init_study.csv")));
  EXPECT_TRUE(fs::exists(path("nognuplot/init_study.gp")));
  EXPECT_FALSE(fs::exists(path("nognuplot/init_study.png")));
}

TEST_F(StudyCli, InitStudyRejectsBadNames) {
  for (const char* args : {"--inits normal_std0", "--inits lecun", "--activations softmax"}) {
    const test::CliResult r = run("init-study --out " + path("bad") + " " + args);
    EXPECT_NE(r.status, 0) << args;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(path("bad/init_study.csv"))) << args;
  }
}

TEST_F(StudyCli, PlotOverlaysSeveralLogs) {
  REQUIRE_GNUPLOT();
  train(path("batch16.jsonl"), 16);
  train(path("batch64.jsonl"), 64);
  const test::CliResult one = run("plot " + path("batch16.jsonl") + " --out " + path("one.png"));
  ASSERT_EQ(one.status, 0) << one.err;
  EXPECT_TRUE(is_drawn_png(path("one.png"), 15000));

  const test::CliResult two = run("plot " + path("batch16.jsonl") + " " + path("batch64.jsonl") +
                                  " --out " + path("two.png") + " --title 'batch 16 vs 64'");
  ASSERT_EQ(two.status, 0) << two.err;
  uint32_t width = 0, height = 0;
  EXPECT_TRUE(is_drawn_png(path("two.png"), 15000, &width, &height));
  EXPECT_GT(width, height);  // two panels side by side
  // Overlaying a second log adds curves: a bigger picture file.
  EXPECT_GT(fs::file_size(path("two.png")), fs::file_size(path("one.png")));
  // No temporary files next to the picture.
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) files += entry.is_regular_file();
  EXPECT_EQ(files, 7u);  // 2 logs, train.json, stdout, stderr, 2 PNGs
}

TEST_F(StudyCli, PlotRejectsMalformedLogs) {
  train(path("good.jsonl"), 32);
  const struct {
    const char* name;
    const char* text;
    const char* expect;  // in the one-line error
  } cases[] = {
      {"notjson.log",
       "{\"epoch\": 1, \"lr\": 0.1, \"train_loss\": 1, \"train_accuracy\": 0.5, \"val_loss\": "
       "null, \"val_accuracy\": null}\nthis is not json\n",
       "notjson.log:2: expected a JSON object"},
      {"garbage.log", "hello\n", "garbage.log:1: expected a JSON object"},
      {"missing.log",
       "{\"epoch\": 1, \"lr\": 0.1, \"train_loss\": 1, \"train_accuracy\": 0.5, \"val_loss\": "
       "null, \"val_accuracy\": null}\n{\"epoch\": 2, \"lr\": 0.1, \"train_loss\": 1}\n",
       "missing.log:2: epoch line without key 'train_accuracy'"},
      {"type.log",
       "{\"epoch\": 1, \"lr\": \"fast\", \"train_loss\": 1, \"train_accuracy\": 0.5, "
       "\"val_loss\": 1, \"val_accuracy\": 1}\n",
       "type.log:1: key 'lr': expected a number, found a string"},
      {"noepochs.log", "{\"test_loss\": 1.0, \"test_accuracy\": 0.5, \"elapsed_s\": 1}\n",
       "noepochs.log: no epoch lines"},
      {"empty.log", "", "empty.log: no epoch lines"},
      {"array.log", "[1, 2]\n", "array.log:1: expected a JSON object, found a array"},
  };
  for (const auto& c : cases) {
    std::ofstream(path(c.name)) << c.text;
    const test::CliResult r =
        run("plot " + path("good.jsonl") + " " + path(c.name) + " --out " + path("bad.png"));
    EXPECT_NE(r.status, 0) << c.name;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(path("bad.png"))) << c.name;
  }
  const test::CliResult missing = run("plot " + path("nope.jsonl") + " --out " + path("bad.png"));
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.err.find("nope.jsonl: cannot open"), std::string::npos) << missing.err;
  EXPECT_NE(run("plot --out " + path("bad.png")).status, 0);  // no log at all
}

TEST_F(StudyCli, PlotWithoutGnuplotNamesThePackage) {
  train(path("good.jsonl"), 32);
  const test::CliResult r = run("plot " + path("good.jsonl") + " --out " + path("x.png"),
                                "MLPX_GNUPLOT=/nonexistent/gnuplot");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("gnuplot-nox"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(path("x.png")));
}

}  // namespace
}  // namespace mlpx
