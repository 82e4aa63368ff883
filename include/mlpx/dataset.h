// Data sets as training sees them: features, class labels and (for losses on float targets)
// target rows, split into train / validation / test, normalised, on one device.
#pragma once

#include <cstdint>
#include <string>

#include "mlpx/config.h"
#include "mlpx/tensor.h"

namespace mlpx {

struct Dataset {
  Tensor x;          // float32 [N, features]
  Tensor labels;     // int32 [N]: each row's class (argmax of its target row for float targets)
  Tensor targets;    // float32 [N, K] for mse, sse, kl_div and bce; undefined for cross_entropy
  std::string name;  // "train", "validation", "test" (for messages)

  int64_t size() const { return x.defined() ? x.rows() : 0; }
  int64_t features() const { return x.cols(); }
  // The whole set copied to `device` (the same handles when already there).
  Dataset to(Device device) const;
  // The rows `indices` (int32 [M], CPU) of a CPU data set, in that order.
  Dataset select(const Tensor& indices, const std::string& new_name) const;
};

// data.normalize "standardize": x -> (x - shift) * scale per feature, with statistics of the
// training split. Saved in checkpoints so that predict() sees inputs as training did.
struct Standardization {
  Tensor shift;  // float32 [features], CPU; undefined when not standardizing
  Tensor scale;  // float32 [features], CPU

  bool defined() const { return shift.defined(); }
  // Applies it in place to CPU rows x [N, features].
  void apply(Tensor& x) const;
};

struct DataSplits {
  Dataset train, validation, test;  // validation and test may be empty (size() == 0)
  Standardization standardization;  // defined for data.normalize "standardize"
  std::string description;          // where the data came from, for the log
};

// Reads (or generates) the data the config names, checks labels against `outputs` classes,
// turns labels into one-hot targets where the loss needs float rows, normalises with
// statistics of the training split only, and holds out config.data.validation_split of the
// training rows, chosen from the seed. Everything on the CPU.
DataSplits load_data(const Config& config, int64_t outputs);

// True when Fashion-MNIST's four files are in `dir`.
bool fashion_mnist_available(const std::string& dir);

// The built-in synthetic set: `classes` Gaussian clusters in `features` dimensions (centres
// N(0, 1), per-feature noise of std 2), labels uniform; `part` selects independent draws
// (0 train, 1 test) around the same centres.
Dataset make_synthetic(const SyntheticConfig& config, int64_t samples, uint64_t seed, int part);

}  // namespace mlpx
