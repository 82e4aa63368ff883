// load_weights: a model's starting weights from a safetensors file named as PyTorch's
// nn.Sequential state_dict() names them, or as mlpx does.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "mlpx/checkpoint.h"
#include "mlpx/error.h"
#include "mlpx/safetensors.h"
#include "test_util.h"

namespace mlpx {
namespace {

namespace fs = std::filesystem;
using Tensors = std::vector<std::pair<std::string, Tensor>>;

class InitWeightsTest : public test::TempDirTest {
 protected:
  InitWeightsTest() : TempDirTest("mlpx-init-weights") {}

  // A 5 -> 4 relu -> 3 model, as torch's nn.Sequential(Linear(5, 4), ReLU(), Linear(4, 3)).
  static Sequential model() {
    return Sequential(5, {{4, Activation::kRelu}, {3, Activation::kIdentity}});
  }

  // Distinct values per tensor: the i-th tensor holds i * 100 + position.
  static Tensors torch_state(const std::vector<std::string>& names, DType dtype) {
    const std::vector<Shape> shapes = {{4, 5}, {4}, {3, 4}, {3}};
    Tensors out;
    for (size_t t = 0; t < names.size(); ++t) {
      const Shape& shape = shapes[t % shapes.size()];
      Tensor tensor(shape, dtype);
      for (int64_t i = 0; i < tensor.numel(); ++i) {
        const double v = static_cast<double>(t) * 100.0 + static_cast<double>(i) * 0.25;
        if (dtype == DType::kFloat64) {
          tensor.data<double>()[i] = v;
        } else {
          tensor.data<float>()[i] = static_cast<float>(v);
        }
      }
      out.emplace_back(names[t], tensor);
    }
    return out;
  }

  std::string write(const Tensors& tensors) {
    const std::string path = dir_ + "/weights" + std::to_string(files_++) + ".safetensors";
    save_safetensors(path, tensors);
    return path;
  }

  // The error load_weights gives, and that the model kept its weights.
  std::string error_of(const Tensors& tensors) {
    Sequential m = model();
    m.init(Init::kHeNormal, 0.0, 1);
    const std::vector<float> before = m.params().to_vector<float>();
    try {
      load_weights(m, write(tensors));
    } catch (const IoError& e) {
      EXPECT_EQ(m.params().to_vector<float>(), before) << "the model changed";
      return e.what();
    }
    return "no error";
  }

  int files_ = 0;
};

TEST_F(InitWeightsTest, TorchSequentialNamesMapToLayersInIndexOrder) {
  // Linear modules at 0 and 2 (ReLU at 1), stored out of order.
  const Tensors state = torch_state({"0.weight", "0.bias", "2.weight", "2.bias"}, DType::kFloat32);
  const Tensors shuffled = {state[2], state[0], state[3], state[1]};
  Sequential m = model();
  load_weights(m, write(shuffled));
  EXPECT_EQ(m.weight(0).to_vector<float>(), state[0].second.to_vector<float>());
  EXPECT_EQ(m.bias(0).to_vector<float>(), state[1].second.to_vector<float>());
  EXPECT_EQ(m.weight(1).to_vector<float>(), state[2].second.to_vector<float>());
  EXPECT_EQ(m.bias(1).to_vector<float>(), state[3].second.to_vector<float>());
}

TEST_F(InitWeightsTest, MlpxNamesPrefixesAndFloat64Load) {
  for (const auto& names : std::vector<std::vector<std::string>>{
           {"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"},
           {"net.0.weight", "net.0.bias", "net.3.weight", "net.3.bias"}}) {
    const Tensors state = torch_state(names, DType::kFloat64);
    Sequential m = model();
    load_weights(m, write(state));
    EXPECT_EQ(m.weight(1).to_vector<float>()[5], 200.0f + 5 * 0.25f) << names[0];
    EXPECT_EQ(m.bias(1).to_vector<float>()[2], 300.5f) << names[0];
  }
}

TEST_F(InitWeightsTest, AnMlpxCheckpointGivesItsWeights) {
  Sequential trained = model();
  trained.init(Init::kLecunUniform, 0.0, 7);
  const std::string path = dir_ + "/trained.safetensors";
  Config config;
  config.model.layers = {{4, Activation::kRelu}, {3, Activation::kIdentity}};
  save_checkpoint(path, trained, nullptr, config, {2, 10});
  Sequential m = model();
  load_weights(m, path);
  EXPECT_EQ(m.params().to_vector<float>(), trained.params().to_vector<float>());
}

TEST_F(InitWeightsTest, MismatchesAreNamedAndChangeNothing) {
  const std::vector<std::string> torch = {"0.weight", "0.bias", "2.weight", "2.bias"};
  Tensors wrong_shape = torch_state(torch, DType::kFloat32);
  wrong_shape[2].second = Tensor::zeros({3, 6});
  EXPECT_NE(error_of(wrong_shape)
                .find("'2.weight': expected [3, 4] (layer 1's weight [out, in]), "
                      "found [3, 6]"),
            std::string::npos)
      << error_of(wrong_shape);

  const Tensors three_layers = torch_state(
      {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"}, DType::kFloat32);
  EXPECT_NE(error_of(three_layers).find("expected 2 Linear layers (the model's), found 3"),
            std::string::npos)
      << error_of(three_layers);

  Tensors no_bias = torch_state(torch, DType::kFloat32);
  no_bias.pop_back();
  EXPECT_NE(error_of(no_bias).find("expected '2.weight' and '2.bias', found only '2.weight'"),
            std::string::npos)
      << error_of(no_bias);

  Tensors batch_norm = torch_state(torch, DType::kFloat32);
  batch_norm.emplace_back("1.running_mean", Tensor::zeros({4}));
  EXPECT_NE(error_of(batch_norm).find("found '1.running_mean'"), std::string::npos)
      << error_of(batch_norm);

  const Tensors two_prefixes =
      torch_state({"a.0.weight", "a.0.bias", "b.2.weight", "b.2.bias"}, DType::kFloat32);
  EXPECT_NE(error_of(two_prefixes).find("under one prefix"), std::string::npos)
      << error_of(two_prefixes);

  Tensors labels = torch_state(torch, DType::kFloat32);
  labels[1].second = Tensor::zeros({4}, DType::kInt32);
  EXPECT_NE(error_of(labels).find("'0.bias': expected float32 or float64, found int32"),
            std::string::npos)
      << error_of(labels);
}

// A model with norms and a bias-free Linear takes the names of its checkpoints: from an mlpx
// checkpoint of the same model (parameters and batch-norm statistics), or from a state dict of
// those names without the statistics (they then keep their values). A missing, unexpected or
// misshapen tensor is named and changes nothing.
TEST_F(InitWeightsTest, NormAndBiasFreeModelsTakeCheckpointNames) {
  auto norm_model = [] {
    LayerSpec first{4, Activation::kRelu};
    first.norm = Norm::kBatch;
    first.bias = false;
    LayerSpec second{4, Activation::kGelu};
    second.norm = Norm::kLayer;
    second.residual = true;
    return Sequential(5, {first, second, {3, Activation::kIdentity}});
  };
  Sequential trained = norm_model();
  trained.init(Init::kLecunUniform, 0.0, 7);
  // Statistics and norm parameters other than their init values.
  trained.buffers().copy_from(
      Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9}, {trained.num_buffers()}));
  std::vector<float> params = trained.params().to_vector<float>();
  for (size_t k = 0; k < params.size(); ++k) params[k] += 0.01f * static_cast<float>(k % 7);
  trained.params().copy_from(Tensor::from_vector(params, {trained.num_params()}));
  Config config;
  config.model.layers = {trained.layer(0), trained.layer(1), trained.layer(2)};
  const std::string path = dir_ + "/norms.safetensors";
  save_checkpoint(path, trained, nullptr, config, {2, 10});
  Sequential m = norm_model();
  m.init(Init::kHeNormal, 0.0, 1);
  load_weights(m, path);
  EXPECT_EQ(m.params().to_vector<float>(), params);
  EXPECT_EQ(m.buffers().to_vector<float>(), trained.buffers().to_vector<float>());

  // Parameters only, in float64, with torch's scalar num_batches_tracked left out.
  Tensors state;
  for (const auto& [name, view] : trained.named_views(trained.params())) {
    Tensor f64(view.shape(), DType::kFloat64);
    const std::vector<float> v = view.to_vector<float>();
    for (size_t i = 0; i < v.size(); ++i) f64.data<double>()[i] = v[i];
    state.emplace_back(name, f64);
  }
  Sequential fresh = norm_model();
  fresh.init(Init::kHeNormal, 0.0, 1);
  const std::vector<float> fresh_buffers = fresh.buffers().to_vector<float>();
  load_weights(fresh, write(state));
  EXPECT_EQ(fresh.params().to_vector<float>(), params);
  EXPECT_EQ(fresh.buffers().to_vector<float>(), fresh_buffers);

  auto error = [&](const Tensors& tensors) {
    Sequential target = norm_model();
    target.init(Init::kHeNormal, 0.0, 1);
    const std::vector<float> before = target.params().to_vector<float>();
    try {
      load_weights(target, write(tensors));
    } catch (const IoError& e) {
      EXPECT_EQ(target.params().to_vector<float>(), before) << "the model changed";
      return std::string(e.what());
    }
    return std::string("no error");
  };
  Tensors missing = state;
  missing.erase(missing.begin() + 1);  // layers.0.norm.weight
  EXPECT_NE(error(missing).find("missing 'layers.0.norm.weight'"), std::string::npos)
      << error(missing);
  Tensors with_bias = state;
  with_bias.emplace_back("layers.0.bias", Tensor::zeros({4}));
  EXPECT_NE(error(with_bias).find("unexpected tensor 'layers.0.bias'"), std::string::npos)
      << error(with_bias);
  Tensors wrong_shape = state;
  wrong_shape[1].second = Tensor::zeros({5});
  EXPECT_NE(error(wrong_shape).find("'layers.0.norm.weight': expected float32 or float64 [4]"),
            std::string::npos)
      << error(wrong_shape);
  Tensors one_statistic = state;
  one_statistic.emplace_back("layers.0.norm.running_mean", Tensor::zeros({4}));
  EXPECT_NE(error(one_statistic).find("missing 'layers.0.norm.running_var'"), std::string::npos)
      << error(one_statistic);
}

}  // namespace
}  // namespace mlpx
