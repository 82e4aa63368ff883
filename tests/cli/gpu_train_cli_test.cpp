// `mlpx train --device cuda` end to end on a few thousand rows of Fashion-MNIST: on a GPU, or
// on the GPU simulator in a MLPX_CUDA=SIM build (where this is how CI runs the whole GPU
// path). The GPU run must match the CPU run within the parity tolerance, and replaying the
// step from a CUDA graph must give the plain launches' bits.
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

constexpr const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

class GpuTrainCli : public test::CliTest {
 protected:
  // The first `rows` rows of a Fashion-MNIST IDX file, saved as .npy in the test's folder.
  std::string subset(const std::string& file, int64_t rows, const std::string& name) {
    const Array all = load_array(std::string(kFashionDir) + "/" + file);
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
  if (!fashion_mnist_available(kFashionDir)) GTEST_SKIP() << "dataset-fashion-mnist is missing";
  const std::string config = path("config.json");
  {
    std::ofstream c(config);
    c << nlohmann::json{{"data",
                         {{"source", "files"},
                          {"train",
                           {{"x", subset("train-images-idx3-ubyte.gz", 3000, "train_x.npy")},
                            {"y", subset("train-labels-idx1-ubyte.gz", 3000, "train_y.npy")}}},
                          {"test",
                           {{"x", subset("t10k-images-idx3-ubyte.gz", 1000, "test_x.npy")},
                            {"y", subset("t10k-labels-idx1-ubyte.gz", 1000, "test_y.npy")}}},
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
