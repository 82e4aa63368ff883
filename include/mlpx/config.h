// The training configuration: every field has a default, and a JSON file overrides any of
// them. Unknown keys, wrong types and out-of-domain values are ValueErrors that name the key
// (see the "config file" contract in DESIGN.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mlpx/activation.h"
#include "mlpx/init.h"
#include "mlpx/loss.h"
#include "mlpx/optimizer.h"
#include "mlpx/schedule.h"

namespace mlpx {

struct FilePair {
  std::string x;  // features: .npy, .csv or IDX (*-ubyte[.gz])
  std::string y;  // class indices [N] or float targets [N, K]
};

struct SyntheticConfig {
  int64_t train_samples = 6000;
  int64_t test_samples = 1000;
  int64_t features = 32;
  int64_t classes = 10;
};

struct DataConfig {
  std::string source = "fashion-mnist";                   // "fashion-mnist", "synthetic" or "files"
  std::string dir = "/usr/share/datasets/fashion-mnist";  // where fashion-mnist's files are
  FilePair train;                                         // source "files"
  FilePair test;                                          // source "files"; optional
  double validation_split = 0.1;      // fraction of train held out, chosen from the seed
  std::string normalize = "scale01";  // "none", "scale01" (uint8 / 255), "standardize"
  SyntheticConfig synthetic;
};

struct LayerConfig {
  int64_t units = 0;
  Activation activation = Activation::kRelu;
};

struct ModelConfig {
  std::vector<LayerConfig> layers = {
      {256, Activation::kRelu}, {128, Activation::kRelu}, {10, Activation::kIdentity}};
  Init init = Init::kHeNormal;
  double init_std = 0.01;          // the std of "normal", the bound of "uniform"
  double activation_alpha = 0.01;  // leaky_relu slope, elu scale
};

struct TrainConfig {
  int epochs = 15;
  int64_t batch_size = 128;  // 1: SGD; 0 or the training-set size: full-batch GD
  bool shuffle = true;
  // On a CUDA device, replay each full-size training step from a CUDA graph (ignored on the
  // CPU; false: plain launches, the same kernels and the same bits).
  bool cuda_graph = true;
  // "stop": a NaN or Inf batch loss stops training after the epoch, naming the epoch and step.
  // "skip": a step whose batch loss or any gradient is NaN or Inf changes nothing (parameters,
  // optimizer state, step count) and is counted in the epoch's skipped_steps.
  std::string on_nonfinite = "stop";
};

struct OutputConfig {
  std::string checkpoint = "model.safetensors";
  std::string init_checkpoint;  // when set, the weights before the first step go here
  std::string log = "metrics.jsonl";
};

struct Config {
  uint64_t seed = 0;
  std::string device = "auto";
  std::string precision = "fp32";  // "fp32"; "tf32" (GPU GEMMs on TF32 tensor cores)
  DataConfig data;
  ModelConfig model;
  Loss loss = Loss::kCrossEntropy;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  TrainConfig train;
  OutputConfig output;

  Config();  // the defaults above, plus the design's optimizer and schedule defaults

  // Parses a JSON document over the defaults. ValueError on unknown keys, wrong types and
  // bad values, naming the key path ("optimizer.lr").
  static Config from_json(const std::string& text);
  // Reads and parses a JSON file; IoError when it cannot be read.
  static Config load(const std::string& path);
  // The whole configuration as JSON (round-trips through from_json).
  std::string to_json() const;
  // Checks cross-field rules (loss vs last activation, sizes, ranges); ValueError.
  void validate() const;
};

}  // namespace mlpx
