// Data sets as training sees them: features, class labels and (for losses on float targets)
// target rows, split into train / validation / test, normalised, on one device.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "mlpx/array_io.h"
#include "mlpx/config.h"
#include "mlpx/tensor.h"

namespace mlpx {

// A classification set has labels (and, for losses on float rows, targets); a regression set
// has targets only, and is scored by R^2 and MSE instead of accuracy.
struct Dataset {
  Tensor x;          // float32 [N, features]
  Tensor labels;     // int32 [N]: each row's class (argmax of its target row for float targets);
                     // undefined for regression
  Tensor targets;    // float32 [N, K] for mse, sse, kl_div and bce; undefined for cross_entropy
  std::string name;  // "train", "validation", "test" (for messages)
  bool regression = false;
  // bce's targets of one probability per output (0/1: binary with one output, or multi-label
  // [N, K]): labels undefined; accuracy counts each output, right when sigmoid > 0.5 exactly
  // where its target is 1, over N K outputs.
  bool per_output = false;
  // Sample weights, float32 [N] >= 0 (training only): each batch's loss is the weighted
  // average sum_i w_i l_i / sum_i w_i over its rows; undefined: every row weighs 1.
  Tensor weights;
  // Regression: the variance of the targets around their own per-output means, averaged over
  // the outputs (sum of squares / (N K)): the MSE of always predicting the mean, R^2's
  // baseline. NaN: not yet computed (evaluate computes it from `targets`).
  double target_variance = std::nan("");

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
  std::string normalization;        // what data.normalize did to the features, for the log
};

// The sum of squares of target rows [N, K] (any device) around their per-column means,
// divided by N K: what an MSE of a constant predictor can reach at best. One read-back.
double target_variance(const Tensor& targets);

// Features as float32 [N, F] from an array read from a file, with data.normalize's scaling
// (uint8 / 255 for "auto" and "scale01"); standardization, which needs training statistics,
// is separate. predict() inputs go through this too.
Tensor features_from(const Array& array, Normalize normalize);
// Whether data.normalize standardizes features of this element type ("auto": all but uint8).
bool standardizes(Normalize normalize, ElementType features);

// A data set from features x (float32 [N, F], any device, used as they are: no normalization)
// and y as a file holds it (class indices [N], target rows [N, K] or regression targets [N] /
// [N, K]: `task`, as data.task), turned into labels and targets for `loss` as load_data does.
// Errors name y.source and `x_name`. What programs that hold their data in memory train on.
Dataset dataset_from(Tensor x, const std::string& x_name, const Array& y, Loss loss, Task task,
                     int64_t outputs, const std::string& name);

// Sets set.weights from sample weights [N] (N = set.size(); any float dtype, CPU): finite,
// >= 0, not all 0; float32 on the set's device. DataError-like ValueError naming `name`, the row
// and the value otherwise.
void set_sample_weights(Dataset& set, const Tensor& weights, const std::string& name);

// Reads (or generates) the data the config names, checks labels against `outputs` classes,
// turns labels into one-hot targets where the loss needs float rows, normalises with
// statistics of the training split only, and holds out config.data.validation_split of the
// training rows, chosen from the seed. Everything on the CPU.
// With `with_test` false the test split is neither read nor made (splits.test stays empty).
DataSplits load_data(const Config& config, int64_t outputs, bool with_test = true);

// The one set `mlpx eval` scores, read alone: the config's test set, else its training set
// (all of it, no validation split), normalised as in training: data.normalize's scaling, then
// `standardization` (a checkpoint's; undefined: none). On the CPU.
Dataset load_evaluation_set(const Config& config, int64_t outputs,
                            const Standardization& standardization);

// True when Fashion-MNIST's four files are in `dir`.
bool fashion_mnist_available(const std::string& dir);

// The built-in synthetic set: `classes` Gaussian clusters in `features` dimensions (centres
// N(0, 1), per-feature noise of std 2), labels uniform; `part` selects independent draws
// (0 train, 1 test) around the same centres.
Dataset make_synthetic(const SyntheticConfig& config, int64_t samples, uint64_t seed, int part);

}  // namespace mlpx
