// mlpx bench end to end on a tiny synthetic config: --json prints one well-formed object per
// batch size with exactly the documented keys; --plot writes a PNG when gnuplot exists.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "cli_fixture.h"

namespace mlpx {
namespace {

namespace fs = std::filesystem;

class BenchCli : public test::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    std::ofstream(path("tiny.json")) << R"({
      "device": "cpu",
      "data": {"source": "synthetic",
               "synthetic": {"train_samples": 200, "test_samples": 100, "features": 8, "classes": 3}},
      "model": {"layers": [{"units": 16, "activation": "relu"}, {"units": 3, "activation": "identity"}]},
      "optimizer": {"lr": 0.01}
    })";
  }
  // Runs the binary; returns its exit status and stdout.
  int run(const std::string& args, std::string* out) const {
    const test::CliResult r = CliTest::run(args);
    *out = r.out;
    return r.status;
  }

  std::string quick() const {
    return "bench --config " + path("tiny.json") +
           " --batch-sizes 1,16,full --target 0.5 --max-seconds 3 --seconds 0.02 --warmup 2";
  }
};

TEST_F(BenchCli, JsonLinesHaveExactlyTheDocumentedKeys) {
  std::string out;
  ASSERT_EQ(run(quick() + " --json", &out), 0) << out;
  const std::set<std::string> keys = {"device",          "precision",      "gemm_engine",
                                      "batch_size",      "samples_per_s",  "updates_per_s",
                                      "epoch_s",         "epoch_measured", "time_to_target_s",
                                      "target_accuracy", "reached",        "score"};
  std::istringstream lines(out);
  std::string line;
  std::vector<int64_t> batches;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(line)) << line;
    ASSERT_TRUE(j.is_object()) << line;
    std::set<std::string> found;
    for (const auto& item : j.items()) found.insert(item.key());
    EXPECT_EQ(found, keys) << line;
    EXPECT_TRUE(j["device"].is_string());
    EXPECT_TRUE(j["batch_size"].is_number_integer());
    EXPECT_TRUE(j["samples_per_s"].is_number());
    EXPECT_GT(j["samples_per_s"].get<double>(), 0.0);
    EXPECT_TRUE(j["updates_per_s"].is_number());
    EXPECT_TRUE(j["epoch_s"].is_number());
    EXPECT_TRUE(j["time_to_target_s"].is_number() || j["time_to_target_s"].is_null());
    EXPECT_EQ(j["reached"].get<bool>(), j["time_to_target_s"].is_number()) << line;
    EXPECT_DOUBLE_EQ(j["target_accuracy"].get<double>(), 0.5);
    batches.push_back(j["batch_size"].get<int64_t>());
  }
  EXPECT_EQ(batches, (std::vector<int64_t>{1, 16, 180}));
}

TEST_F(BenchCli, TablePrintsOneLinePerBatchSize) {
  std::string out;
  ASSERT_EQ(run("bench --config " + path("tiny.json") +
                    " --batch-sizes 8,full --target 0 --seconds 0.02 --warmup 1",
                &out),
            0)
      << out;
  EXPECT_NE(out.find("samples/s"), std::string::npos) << out;
  EXPECT_NE(out.find("180"), std::string::npos) << out;
}

TEST_F(BenchCli, BadBatchSizesAreOneLineErrors) {
  std::string out;
  EXPECT_EQ(run("bench --config " + path("tiny.json") + " --batch-sizes 8,abc", &out), 1);
}

TEST_F(BenchCli, PlotWritesAPng) {
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "gnuplot is not installed (Debian package gnuplot-nox)";
  }
  std::string out;
  const std::string png = path("sweep.png");
  ASSERT_EQ(run(quick() + " --plot " + png, &out), 0) << out;
  std::ifstream in(png, std::ios::binary);
  ASSERT_TRUE(in) << "no " << png;
  char magic[8] = {};
  in.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  EXPECT_GT(fs::file_size(png), 1000u);
}

}  // namespace
}  // namespace mlpx
