#include "mlpx/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "mlpx/error.h"

namespace mlpx {
namespace {

std::string error_of(const std::string& json) {
  try {
    Config::from_json(json);
  } catch (const ValueError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Config, DefaultsAreTheDesignsDefaults) {
  const Config c = Config::from_json("{}");
  EXPECT_EQ(c.seed, 0u);
  EXPECT_EQ(c.device, "auto");
  EXPECT_EQ(c.data.source, DataSource::kFashionMnist);
  EXPECT_DOUBLE_EQ(c.data.validation_split, 0.1);
  ASSERT_EQ(c.model.layers.size(), 3u);
  EXPECT_EQ(c.model.layers[0].units, 256);
  EXPECT_EQ(c.model.layers[2].activation, Activation::kIdentity);
  EXPECT_EQ(c.model.init, Init::kTorchDefault);  // nn.Linear's, as a PyTorch user expects
  EXPECT_EQ(c.loss, Loss::kCrossEntropy);
  EXPECT_EQ(c.optimizer.type, OptimizerType::kAdam);
  EXPECT_DOUBLE_EQ(c.optimizer.lr, 1e-3);
  // PyTorch's default: a constant learning rate. The tuned decay lives in the recipe file.
  EXPECT_EQ(c.schedule.type, ScheduleType::kNone);
  EXPECT_EQ(c.data.normalize, Normalize::kAuto);
  EXPECT_EQ(c.data.task, Task::kAuto);
  EXPECT_EQ(c.train.epochs, 15);
  EXPECT_EQ(c.train.batch_size, 128);
  EXPECT_EQ(c.output.checkpoint, "model.safetensors");
}

TEST(Config, ParsesEveryDocumentedKey) {
  const Config c = Config::from_json(R"({
    "seed": 7, "device": "cpu", "precision": "fp32",
    "data": {"source": "files", "train": {"x": "a.npy", "y": "b.npy"},
             "test": {"x": "c.npy", "y": "d.npy"}, "validation_split": 0.2,
             "normalize": "standardize"},
    "model": {"layers": [{"units": 64, "activation": "tanh"}, {"units": 3, "activation": "identity"}],
              "init": "xavier_uniform", "init_std": 0.5, "activation_alpha": 0.2},
    "loss": "mse",
    "optimizer": {"type": "sgd", "lr": 0.1, "beta1": 0.8, "beta2": 0.9, "eps": 1e-6,
                  "momentum": 0.9, "nesterov": true, "weight_decay": 0.01},
    "schedule": {"type": "cosine", "step_size": 2, "gamma": 0.5, "warmup_epochs": 1},
    "train": {"epochs": 4, "batch_size": 0, "shuffle": false},
    "output": {"checkpoint": "x.safetensors", "init_checkpoint": "i.safetensors", "log": "l.jsonl"}
  })");
  EXPECT_EQ(c.seed, 7u);
  EXPECT_EQ(c.data.train.y, "b.npy");
  EXPECT_EQ(c.model.layers[0].activation, Activation::kTanh);
  EXPECT_EQ(c.model.init, Init::kXavierUniform);
  EXPECT_EQ(c.loss, Loss::kMse);
  EXPECT_TRUE(c.optimizer.nesterov);
  EXPECT_DOUBLE_EQ(*c.optimizer.eps, 1e-6);
  EXPECT_EQ(c.schedule.type, ScheduleType::kCosine);
  EXPECT_EQ(c.schedule.total_epochs, 4);  // follows train.epochs unless given
  EXPECT_EQ(c.train.batch_size, 0);
  EXPECT_FALSE(c.train.shuffle);
  EXPECT_EQ(c.output.init_checkpoint, "i.safetensors");
}

TEST(Config, RoundTripsThroughJson) {
  const Config a =
      Config::from_json(R"({"seed": 3, "loss": "bce", "optimizer": {"type": "rmsprop"}})");
  const Config b = Config::from_json(a.to_json());
  EXPECT_EQ(a.to_json(), b.to_json());
}

// Per-layer alphas: a layer's own, else model.activation_alpha, else the activation's default
// (PyTorch's: elu 1.0, leaky_relu 0.01). A config without either (every checkpoint written
// before per-layer alphas holds "activation_alpha": 0.01) keeps its meaning.
TEST(Config, ActivationAlphaPerLayerAndDefaults) {
  const char* layers = R"("layers": [{"units": 4, "activation": "elu"},
                                      {"units": 4, "activation": "leaky_relu"},
                                      {"units": 4, "activation": "elu", "alpha": 0.5},
                                      {"units": 2, "activation": "identity"}])";
  const Config plain = Config::from_json(std::string(R"({"model": {)") + layers + "}}");
  std::vector<LayerSpec> resolved = plain.model.resolved_layers();
  EXPECT_EQ(resolved[0].alpha, 1.0);
  EXPECT_EQ(resolved[1].alpha, 0.01);
  EXPECT_EQ(resolved[2].alpha, 0.5);
  EXPECT_FALSE(plain.model.activation_alpha.has_value());
  EXPECT_EQ(plain.to_json().find("activation_alpha"), std::string::npos);

  const Config old =
      Config::from_json(std::string(R"({"model": {"activation_alpha": 0.01, )") + layers + "}}");
  resolved = old.model.resolved_layers();
  EXPECT_EQ(resolved[0].alpha, 0.01);  // as trained before the default changed
  EXPECT_EQ(resolved[1].alpha, 0.01);
  EXPECT_EQ(resolved[2].alpha, 0.5);  // a layer's own wins

  const Config again = Config::from_json(old.to_json());
  EXPECT_EQ(again.to_json(), old.to_json());
  EXPECT_EQ(again.model.layers[2].alpha, 0.5);
  EXPECT_EQ(again.model.activation_alpha, 0.01);

  EXPECT_EQ(error_of(R"({"model": {"layers": [{"units": 2, "activation": "elu", "alpha": "x"}]}})"),
            "config: model.layers[0].alpha: expected a number, found a string");
}

TEST(Config, UnknownKeysAreNamed) {
  EXPECT_EQ(error_of(R"({"sed": 1})"), "config: unknown key 'sed' (did you mean 'seed'?)");
  EXPECT_EQ(error_of(R"({"optimizer": {"betas": [0.9, 0.99]}})"),
            "config: unknown key 'optimizer.betas' (did you mean 'beta1'?)");
  EXPECT_EQ(error_of(R"({"model": {"layers": [{"units": 3, "act": "relu"}]}})"),
            "config: unknown key 'model.layers[0].act' (did you mean 'activation'?)");
  EXPECT_EQ(error_of(R"({"optimizer": {"learning_rate": 0.1}})"),
            "config: unknown key 'optimizer.learning_rate' (did you mean 'lr'?)");
  EXPECT_EQ(error_of(R"({"train": {"epohcs": 3}})"),
            "config: unknown key 'train.epohcs' (did you mean 'epochs'?)");
  EXPECT_EQ(error_of(R"({"zzzzzz": 1})"), "config: unknown key 'zzzzzz'");
}

TEST(Config, WrongTypesAreNamed) {
  EXPECT_EQ(error_of(R"({"optimizer": {"lr": "fast"}})"),
            "config: optimizer.lr: expected a number, found a string");
  EXPECT_EQ(error_of(R"({"train": {"epochs": 2.5}})"),
            "config: train.epochs: expected an integer, found a number");
  EXPECT_EQ(error_of(R"({"train": {"shuffle": 1}})"),
            "config: train.shuffle: expected a boolean, found an integer");
  EXPECT_EQ(error_of(R"({"model": []})"), "config: model: expected an object, found an array");
  EXPECT_NE(error_of("{not json").find("expected valid JSON"), std::string::npos);
}

TEST(Config, BadValuesAreNamed) {
  EXPECT_NE(error_of(R"({"optimizer": {"lr": -1}})").find("lr"), std::string::npos);
  EXPECT_NE(error_of(R"({"model": {"layers": [{"units": 0}]}})")
                .find("expected an integer >= 1, found 0"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"model": {"layers": [{"units": 4, "activation": "swish"}]}})")
                .find("model.layers[0].activation"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"optimizer": {"type": "lion"}})").find("optimizer.type"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"loss": "hinge"})").find("config: loss"), std::string::npos);
  EXPECT_NE(error_of(R"({"device": "tpu"})").find("tpu"), std::string::npos);
  EXPECT_NE(error_of(R"({"data": {"validation_split": 1.0}})").find("validation_split"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"train": {"batch_size": -3}})").find("train.batch_size"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"model": {"layers": []}})").find("at least one layer"), std::string::npos);
  EXPECT_NE(error_of(R"({"data": {"source": "files"}})").find("data.train"), std::string::npos);
}

// model.layers[i].dropout: 0 by default, kept through to_json (so a checkpoint's config keeps
// it), a probability in [0, 1) or an error naming the key and the value.
TEST(Config, LayerDropoutKey) {
  const Config d = Config::from_json("{}");
  for (const LayerSpec& layer : d.model.layers) EXPECT_EQ(layer.dropout, 0.0);
  const Config c = Config::from_json(R"({"model": {"layers": [
      {"units": 256, "activation": "relu", "dropout": 0.2},
      {"units": 10, "activation": "identity"}]}})");
  EXPECT_EQ(c.model.layers[0].dropout, 0.2);
  EXPECT_EQ(c.model.layers[1].dropout, 0.0);
  EXPECT_EQ(c.model.resolved_layers()[0].dropout, 0.2);
  const Config back = Config::from_json(c.to_json());
  EXPECT_EQ(back.model.layers[0].dropout, 0.2);
  EXPECT_EQ(back.model.layers[1].dropout, 0.0);
  EXPECT_EQ(error_of(R"({"model": {"layers": [{"units": 4, "dropout": 1}]}})"),
            "config: model.layers[0].dropout: expected a probability in [0, 1), found 1");
  EXPECT_EQ(error_of(R"({"model": {"layers": [{"units": 4}, {"units": 2, "dropout": -0.1,
                         "activation": "identity"}]}})"),
            "config: model.layers[1].dropout: expected a probability in [0, 1), found -0.1");
  EXPECT_EQ(error_of(R"({"model": {"layers": [{"units": 4, "dropout": "0.2"}]}})"),
            "config: model.layers[0].dropout: expected a number, found a string");
  EXPECT_NE(error_of(R"({"model": {"layers": [{"units": 4, "drop_out": 0.2}]}})")
                .find("unknown key 'model.layers[0].drop_out' (did you mean 'dropout'?)"),
            std::string::npos);
}

// The deep-network layer keys: defaults (norm none, eps 1e-5, momentum 0.1, bias, no residual),
// kept through to_json, the sweep's keys, and the errors.
TEST(Config, LayerNormBiasAndResidualKeys) {
  const Config d = Config::from_json("{}");
  for (const LayerSpec& layer : d.model.layers) {
    EXPECT_EQ(layer.norm, Norm::kNone);
    EXPECT_EQ(layer.norm_eps, 1e-5);
    EXPECT_EQ(layer.norm_momentum, 0.1);
    EXPECT_TRUE(layer.bias);
    EXPECT_FALSE(layer.residual);
  }
  EXPECT_FALSE(d.train.sync_batchnorm);
  const Config c = Config::from_json(R"({"model": {"layers": [
      {"units": 16, "activation": "gelu", "norm": "batch", "bias": false, "norm_momentum": 0.2},
      {"units": 16, "activation": "gelu_tanh", "norm": "layer", "norm_eps": 1e-3,
       "residual": true},
      {"units": 10, "activation": "identity"}]}, "train": {"sync_batchnorm": true}})");
  c.validate();
  const Config back = Config::from_json(c.to_json());
  EXPECT_EQ(back.model.layers[0].norm, Norm::kBatch);
  EXPECT_FALSE(back.model.layers[0].bias);
  EXPECT_EQ(back.model.layers[0].norm_momentum, 0.2);
  EXPECT_EQ(back.model.layers[1].norm, Norm::kLayer);
  EXPECT_EQ(back.model.layers[1].norm_eps, 1e-3);
  EXPECT_TRUE(back.model.layers[1].residual);
  EXPECT_EQ(back.model.layers[1].activation, Activation::kGeluTanh);
  EXPECT_TRUE(back.train.sync_batchnorm);
  bool norm_is_a_sweep_key = false;
  for (const ConfigField& f : config_fields()) {
    norm_is_a_sweep_key = norm_is_a_sweep_key || (f.path == "model.layers[i].norm" && f.sweepable);
  }
  EXPECT_TRUE(norm_is_a_sweep_key);
  EXPECT_EQ(error_of(R"({"model": {"layers": [{"units": 4, "norm": "group"}]}})"),
            "config: model.layers[0].norm: expected none, layer or batch, found 'group'");
  Config wide = c;
  wide.model.layers[1].units = 8;
  try {
    wide.validate();
    FAIL() << "expected a ValueError";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(),
                 "config: model.layers[1]: residual: expected units equal to the layer's input "
                 "width 16, found units 8");
  }
}

// "/a/b" for "a.b": where a key of config_fields() sits in to_json()'s document.
std::string pointer_of(const std::string& path) {
  std::string pointer = "/" + path;
  for (char& c : pointer) c = c == '.' ? '/' : c;
  return pointer;
}

// The leaves of a to_json() document by dotted path, array elements of objects as "[i]".
void leaf_paths(const nlohmann::json& node, const std::string& path, std::set<std::string>& out) {
  if (node.is_object()) {
    for (const auto& item : node.items()) {
      leaf_paths(item.value(), path.empty() ? item.key() : path + "." + item.key(), out);
    }
  } else if (node.is_array() && !node.empty() && node[0].is_object()) {
    for (const auto& element : node) leaf_paths(element, path + "[i]", out);
  } else {
    out.insert(path);
  }
}

TEST(ConfigFields, ListEveryKeyOnceWithTheDefaultToJsonWrites) {
  const std::vector<ConfigField> fields = config_fields();
  const nlohmann::json defaults = nlohmann::json::parse(Config().to_json());
  std::set<std::string> paths, unset;
  for (const ConfigField& f : fields) {
    EXPECT_TRUE(paths.insert(f.path).second) << f.path << " listed twice";
    EXPECT_FALSE(f.help.empty()) << f.path;
    // Objects come before the keys inside them.
    std::string parent =
        f.path.substr(0, f.path.rfind('.') == std::string::npos ? 0 : f.path.rfind('.'));
    if (parent.size() > 3 && parent.compare(parent.size() - 3, 3, "[i]") == 0) {
      parent.resize(parent.size() - 3);
    }
    EXPECT_TRUE(parent.empty() || paths.count(parent)) << f.path << " before " << parent;
    // Keys inside an unset object (train.early_stopping) are not written by default, nor are
    // those of a name written alone (loss.label_smoothing while "loss" is a name).
    if (f.default_json == "null" || unset.count(parent)) {
      unset.insert(f.path);
      continue;
    }
    if (f.type == "string or object") {
      unset.insert(f.path);
      ASSERT_TRUE(defaults.contains(nlohmann::json::json_pointer(pointer_of(f.path)))) << f.path;
      EXPECT_EQ(defaults.at(nlohmann::json::json_pointer(pointer_of(f.path))).dump(),
                f.default_json);
      continue;
    }
    const bool inside_array = f.path.find("[i]") != std::string::npos;
    if (inside_array || f.type == "object") continue;
    ASSERT_TRUE(defaults.contains(nlohmann::json::json_pointer(pointer_of(f.path)))) << f.path;
    EXPECT_EQ(defaults.at(nlohmann::json::json_pointer(pointer_of(f.path))).dump(), f.default_json)
        << f.path;
  }
  // Every key to_json writes is in the table (the optional ones set, so that they are written).
  Config c;
  c.model.activation_alpha = 0.1;
  c.model.layers[0].alpha = 0.2;
  c.train.early_stopping = EarlyStopping{};
  c.label_smoothing = 0.1;  // "loss" written as an object
  c.schedule.max_lr = 0.5;
  std::set<std::string> written;
  leaf_paths(nlohmann::json::parse(c.to_json()), "", written);
  for (const std::string& path : written) EXPECT_TRUE(paths.count(path)) << path;
  EXPECT_EQ(Config::from_json(c.to_json()).to_json(), c.to_json());
}

// "loss" is a name, or an object with its type and cross_entropy's label smoothing; a config
// without smoothing writes the name alone, as before.
TEST(ConfigFields, LossIsANameOrAnObjectWithLabelSmoothing) {
  const Config plain = Config::from_json(R"({"loss": "cross_entropy"})");
  EXPECT_EQ(plain.label_smoothing, 0.0);
  EXPECT_EQ(nlohmann::json::parse(plain.to_json())["loss"], "cross_entropy");
  const Config smoothed =
      Config::from_json(R"({"loss": {"type": "cross_entropy", "label_smoothing": 0.1}})");
  EXPECT_EQ(smoothed.loss, Loss::kCrossEntropy);
  EXPECT_EQ(smoothed.label_smoothing, 0.1);
  EXPECT_EQ(nlohmann::json::parse(smoothed.to_json())["loss"]["label_smoothing"], 0.1);
  EXPECT_EQ(Config::from_json(smoothed.to_json()).to_json(), smoothed.to_json());
  EXPECT_THROW(Config::from_json(R"({"loss": {"type": "cross_entropy", "smoothing": 0.1}})"),
               ValueError);
  try {
    Config::from_json(R"({"loss": {"type": "mse", "label_smoothing": 0.1},
                          "model": {"layers": [{"units": 2, "activation": "identity"}]}})");
    ADD_FAILURE() << "expected an error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("loss.label_smoothing: expected 0 for mse"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(Config::from_json(R"({"loss": {"type": "cross_entropy", "label_smoothing": 1.5}})"),
               ValueError);
  const Config knobs = Config::from_json(R"({"optimizer": {"decay": "weights"},
      "train": {"clip_grad_norm": 1.0, "accumulate_steps": 4},
      "schedule": {"type": "onecycle", "max_lr": 0.1, "anneal": "linear"}})");
  EXPECT_EQ(knobs.optimizer.decay, Decay::kWeights);
  EXPECT_EQ(knobs.train.clip_grad_norm, 1.0);
  EXPECT_EQ(knobs.train.accumulate_steps, 4);
  EXPECT_EQ(knobs.schedule.anneal, Anneal::kLinear);
  EXPECT_THROW(Config::from_json(R"({"train": {"accumulate_steps": 0}})"), ValueError);
  EXPECT_THROW(Config::from_json(R"({"schedule": {"type": "onecycle"},
      "optimizer": {"type": "sgd", "momentum": 0}})"),
               ValueError);
  EXPECT_THROW(Config::from_json(R"({"schedule": {"type": "plateau"},
      "data": {"validation_split": 0}})"),
               ValueError);
}

std::string validate_error(const Config& c) {
  try {
    c.validate();
  } catch (const ValueError& e) {
    return e.what();
  }
  return "no error";
}

// The table's ranges hold for a config built in code as for one read from a file.
TEST(ConfigFields, RangesHoldForConfigsBuiltInCode) {
  EXPECT_EQ(validate_error(Config()), "no error");
  Config c;
  c.data.validation_split = 1.0;
  EXPECT_EQ(validate_error(c),
            "config: data.validation_split: expected a fraction in [0, 1), found 1");
  c = Config();
  c.model.layers[1].dropout = -0.5;
  EXPECT_EQ(validate_error(c),
            "config: model.layers[1].dropout: expected a probability in [0, 1), found -0.5");
  c = Config();
  c.train.epochs = -1;
  EXPECT_EQ(validate_error(c), "config: train.epochs: expected an integer >= 0, found -1");
  c = Config();
  c.train.bucket_mb = std::nan("");
  EXPECT_NE(validate_error(c).find("config: train.bucket_mb: expected a size in MB >= 0"),
            std::string::npos);
  c = Config();
  c.dist.timeout_s = -1;
  EXPECT_EQ(validate_error(c), "config: dist.timeout_s: expected seconds >= 0, found -1");
  EXPECT_EQ(Config::from_json(R"({"dist": {"timeout_s": 0}})").dist.timeout_s, 0.0);
  EXPECT_EQ(Config().dist.timeout_s, 600.0);
  c = Config();
  c.data.validation_split = 0.2;
  c.train.early_stopping = EarlyStopping{};
  c.train.early_stopping->min_delta = -1;
  EXPECT_EQ(validate_error(c), "config: train.early_stopping.min_delta: expected >= 0, found -1");
}

TEST(Config, FusedLossesNeedAnIdentityLastLayer) {
  EXPECT_EQ(error_of(R"({"model": {"layers": [{"units": 10, "activation": "softmax"}]}})"),
            "config: cross_entropy fuses its softmax into the loss: expected the last layer's "
            "activation to be identity, found softmax");
  EXPECT_EQ(
      error_of(R"({"loss": "mse", "model": {"layers": [{"units": 10, "activation": "softmax"}]}})"),
      "no error");
}

TEST(Config, CudaGraphAndOnNonfiniteKeys) {
  const Config d = Config::from_json("{}");
  EXPECT_TRUE(d.train.cuda_graph);
  EXPECT_EQ(d.train.on_nonfinite, NonFinitePolicy::kStop);
  const Config c = Config::from_json(R"({"train": {"cuda_graph": false, "on_nonfinite": "skip"}})");
  EXPECT_FALSE(c.train.cuda_graph);
  EXPECT_EQ(c.train.on_nonfinite, NonFinitePolicy::kSkip);
  const Config back = Config::from_json(c.to_json());
  EXPECT_FALSE(back.train.cuda_graph);
  EXPECT_EQ(back.train.on_nonfinite, NonFinitePolicy::kSkip);
  EXPECT_EQ(error_of(R"({"train": {"on_nonfinite": "ignore"}})"),
            "config: train.on_nonfinite: expected stop or skip, found 'ignore'");
  EXPECT_EQ(error_of(R"({"train": {"cuda_graph": "yes"}})"),
            "config: train.cuda_graph: expected a boolean, found a string");
}

// train.gemm_epilogues: true by default, read, written back, and checked as a boolean.
TEST(Config, GemmEpiloguesKey) {
  EXPECT_TRUE(Config::from_json("{}").train.gemm_epilogues);
  const Config c = Config::from_json(R"({"train": {"gemm_epilogues": false}})");
  EXPECT_FALSE(c.train.gemm_epilogues);
  EXPECT_FALSE(Config::from_json(c.to_json()).train.gemm_epilogues);
  EXPECT_EQ(error_of(R"({"train": {"gemm_epilogues": "off"}})"),
            "config: train.gemm_epilogues: expected a boolean, found a string");
}

TEST(Config, PrecisionModes) {
  EXPECT_EQ(Config::from_json(R"({"precision": "tf32", "device": "cuda"})").precision,
            Precision::kTf32);
  EXPECT_EQ(Config::from_json(R"({"precision": "tf32"})").precision,
            Precision::kTf32);  // device auto
  EXPECT_EQ(error_of(R"({"precision": "tf32", "device": "cpu"})"),
            "config: precision: tf32 needs a CUDA device, found device 'cpu'");
  EXPECT_EQ(Config::from_json(R"({"precision": "bf16", "device": "cpu"})").precision,
            Precision::kBf16);  // every device
  EXPECT_EQ(Config::from_json(R"({"precision": "bf16", "device": "cuda"})").precision,
            Precision::kBf16);
  EXPECT_EQ(error_of(R"({"precision": "fp8"})"),
            "config: precision: expected fp32, tf32 or bf16, found 'fp8'");
}

TEST(Config, LoadNamesTheFile) {
  try {
    Config::load("/nonexistent/config.json");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/config.json"), std::string::npos);
  }
}

TEST(Config, TheShippedRecipeIsTheTunedFashionMnistRun) {
  const Config c = Config::load(std::string(MLPX_SOURCE_DIR) + "/configs/fashion-mnist.json");
  EXPECT_EQ(c.data.source, DataSource::kFashionMnist);
  EXPECT_EQ(c.schedule.type, ScheduleType::kStep);
  EXPECT_EQ(c.schedule.step_size, 10);
  EXPECT_DOUBLE_EQ(c.schedule.gamma, 0.1);
  EXPECT_EQ(c.train.epochs, 15);
  EXPECT_EQ(c.schedule.total_epochs, 15);
  // Everything else is the defaults (the recipe spells them out for readers), but the init:
  // the recipe keeps he_normal (docs/config.md, "The shipped recipe", has the seeds table).
  EXPECT_EQ(c.model.init, Init::kHeNormal);
  Config expected;
  expected.model.init = Init::kHeNormal;
  expected.schedule.type = ScheduleType::kStep;
  expected.schedule.step_size = 10;
  expected.schedule.gamma = 0.1;
  EXPECT_EQ(c.to_json(), expected.to_json());
}

TEST(Config, ShardOptimizerKey) {
  EXPECT_FALSE(Config().train.shard_optimizer);
  const Config c = Config::from_json(R"({"train": {"shard_optimizer": true}})");
  EXPECT_TRUE(c.train.shard_optimizer);
  EXPECT_EQ(Config::from_json(c.to_json()).to_json(), c.to_json());
  EXPECT_EQ(error_of(R"({"train": {"shard_optimizer": true, "on_nonfinite": "skip"}})"),
            "config: train.shard_optimizer: expected train.on_nonfinite 'stop', found 'skip' (a "
            "step skipped on one rank's shard would not be skipped on the others)");
}

TEST(Config, TaskAndNormalizeKeys) {
  const Config c = Config::from_json(
      R"({"data": {"source": "files", "train": {"x": "a.npy", "y": "b.npy"}, "task": "regression",
                   "normalize": "none"}, "loss": "sse",
          "model": {"layers": [{"units": 1, "activation": "identity"}]}})");
  EXPECT_EQ(c.data.task, Task::kRegression);
  EXPECT_EQ(c.data.normalize, Normalize::kNone);
  EXPECT_EQ(Config::from_json(c.to_json()).to_json(), c.to_json());
  EXPECT_EQ(error_of(R"({"data": {"task": "ranking"}})"),
            "config: data.task: expected auto, classification or regression, found 'ranking'");
  EXPECT_EQ(error_of(R"({"data": {"source": "files", "train": {"x": "a", "y": "b"},
                                  "task": "regression"}})"),
            "config: data.task: regression expects loss mse or sse, found cross_entropy");
}

// Paths in a config file are relative to its folder and come back absolute; paths it does not
// set keep their defaults, relative to the working directory.
TEST(Config, PathsAreRelativeToTheConfigFile) {
  char pattern[] = "/tmp/mlpx-config-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::filesystem::path dir(pattern);
  std::filesystem::create_directories(dir / "runs" / "a");
  {
    std::ofstream out(dir / "runs" / "a" / "run.json");
    out << R"({"data": {"source": "files", "train": {"x": "../data/x.npy", "y": "y.npy"},
                        "test": {"x": "/abs/tx.npy", "y": "./ty.npy"}},
               "output": {"log": "out/log.jsonl"}})";
  }
  const Config c = Config::load((dir / "runs" / "a" / "run.json").string());
  const std::string base = std::filesystem::absolute(dir).string();
  EXPECT_EQ(c.data.train.x, base + "/runs/data/x.npy");
  EXPECT_EQ(c.data.train.y, base + "/runs/a/y.npy");
  EXPECT_EQ(c.data.test.x, "/abs/tx.npy");
  EXPECT_EQ(c.data.test.y, base + "/runs/a/ty.npy");
  EXPECT_EQ(c.output.log, base + "/runs/a/out/log.jsonl");
  EXPECT_EQ(c.output.checkpoint, "model.safetensors");  // not in the file
  EXPECT_EQ(c.output.init_checkpoint, "");              // "" is no file, not a folder
  const Config absolute = c.with_absolute_paths();
  EXPECT_EQ(absolute.output.checkpoint,
            (std::filesystem::current_path() / "model.safetensors").string());
  EXPECT_EQ(absolute.data.train.x, c.data.train.x);
  EXPECT_EQ(absolute.output.init_checkpoint, "");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mlpx
