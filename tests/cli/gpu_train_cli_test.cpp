// `mlpx train --device cuda` end to end on a few thousand rows of Fashion-MNIST: on a GPU, or
// on the GPU simulator in a MLPX_CUDA=SIM build (where this is how CI runs the whole GPU
// path). The GPU run must match the CPU run within the parity tolerance, and replaying the
// step from a CUDA graph must give the plain launches' bits.
//
// The rows come from MLPX_FASHION_MNIST_DIR when it is set (scripts/gpu-check.sh points it at
// the payload's copy on a GPU machine, which has no Debian package): files missing there fail
// the test rather than skip it. Unset, Debian's dataset-fashion-mnist folder; the test prints
// the folder it read either way.
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_fixture.h"
#include "mlpx/array_io.h"
#include "mlpx/checkpoint.h"
#include "mlpx/dataset.h"
#include "test_util.h"

namespace mlpx {
namespace {

constexpr const char* kDebianFashionDir = "/usr/share/datasets/fashion-mnist";
constexpr const char* kFashionDirVariable = "MLPX_FASHION_MNIST_DIR";

class GpuTrainCli : public test::CliTest {
 protected:
  // The first `rows` rows of a Fashion-MNIST IDX file in `dir`, saved as .npy in the test's
  // folder.
  std::string subset(const std::string& dir, const std::string& file, int64_t rows,
                     const std::string& name) {
    const Array all = load_array(dir + "/" + file);
    const bool labels = all.shape.size() == 1;
    Tensor t = labels ? to_labels(all, file) : to_float_tensor(all);
    const std::string out = path(name);
    save_npy(out, t.rows(0, rows));
    return out;
  }

  // Trains with the config file and `args`; returns the log's lines (epochs, then the test).
  // On the simulator the run ends with its leak check: every device allocation, the
  // context's workspace, status block and handles included, must be freed by exit.
  std::vector<nlohmann::json> train(const std::string& config, const std::string& args,
                                    const std::string& tag) {
    const std::string log = path(tag + ".jsonl"), ckpt = path(tag + ".safetensors");
    const test::CliResult r = run(
        "train --quiet --config " + config + " --log " + log + " --checkpoint " + ckpt + " " + args,
        "MLPX_SIM_LEAK_CHECK=1");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err.find("leak check"), std::string::npos) << r.err;
    std::vector<nlohmann::json> lines;
    std::istringstream in(test::slurp(log));
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }
};

TEST_F(GpuTrainCli, CudaMatchesCpuAndGraphMatchesPlainLaunches) {
  MLPX_REQUIRE_CUDA();
  const char* named = std::getenv(kFashionDirVariable);
  const bool from_variable = named != nullptr && *named != '\0';
  const std::string dir = from_variable ? named : kDebianFashionDir;
  if (from_variable) {
    ASSERT_TRUE(fashion_mnist_available(dir))
        << kFashionDirVariable << "=" << dir
        << ": expected the Fashion-MNIST files (train-images-idx3-ubyte.gz, ...) there, found "
           "them missing";
  } else if (!fashion_mnist_available(dir)) {
    GTEST_SKIP() << "no Fashion-MNIST: " << kFashionDirVariable << " is unset and " << dir
                 << " (dataset-fashion-mnist) is missing";
  }
  std::cout << "GpuTrainCli: Fashion-MNIST from " << dir << " ("
            << (from_variable ? kFashionDirVariable : "Debian's package") << ")" << std::endl;
  const std::string config = path("config.json");
  {
    std::ofstream c(config);
    c << nlohmann::json{{"data",
                         {{"source", "files"},
                          {"train",
                           {{"x", subset(dir, "train-images-idx3-ubyte.gz", 3000, "train_x.npy")},
                            {"y", subset(dir, "train-labels-idx1-ubyte.gz", 3000, "train_y.npy")}}},
                          {"test",
                           {{"x", subset(dir, "t10k-images-idx3-ubyte.gz", 1000, "test_x.npy")},
                            {"y", subset(dir, "t10k-labels-idx1-ubyte.gz", 1000, "test_y.npy")}}},
                          {"normalize", "standardize"}}},
                        {"model",
                         {{"layers",
                           {{{"units", 64}, {"activation", "relu"}},
                            {{"units", 10}, {"activation", "identity"}}}}}},
                        {"train", {{"epochs", 2}, {"batch_size", 128}}}}
             .dump();
  }
  const auto cpu = train(config, "--device cpu", "cpu");
  const auto graph = train(config, "--device cuda", "graph");
  // The same config with train.cuda_graph off.
  const std::string plain_config = path("plain.json");
  {
    nlohmann::json j = nlohmann::json::parse(test::slurp(config));
    j["train"]["cuda_graph"] = false;
    std::ofstream(plain_config) << j.dump();
  }
  const auto plain = train(plain_config, "--device cuda", "plain");
  ASSERT_EQ(cpu.size(), 3u);
  ASSERT_EQ(graph.size(), 3u);
  ASSERT_EQ(plain.size(), 3u);

  for (size_t i = 0; i < cpu.size(); ++i) {
    for (const char* key : {"train_loss", "val_loss", "test_loss"}) {
      if (!cpu[i].contains(key)) continue;
      EXPECT_NEAR(graph[i][key].get<double>(), cpu[i][key].get<double>(),
                  1e-4 + 1e-3 * std::abs(cpu[i][key].get<double>()))
          << key << " of line " << i;
      EXPECT_EQ(graph[i][key].get<double>(), plain[i][key].get<double>()) << key;
    }
  }
  // Bit for bit: the weights after training, graph against plain.
  const Checkpoint g = load_checkpoint(path("graph.safetensors"));
  const Checkpoint p = load_checkpoint(path("plain.safetensors"));
  const Checkpoint c = load_checkpoint(path("cpu.safetensors"));
  EXPECT_EQ(g.model.params().to_vector<float>(), p.model.params().to_vector<float>());
  EXPECT_TRUE(test::all_close(g.model.params().to_vector<float>(),
                              c.model.params().to_vector<float>(), 1e-4, 1e-3));
}

}  // namespace
}  // namespace mlpx
