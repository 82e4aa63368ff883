#include "mlpx/dataset.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <utility>
#include <vector>

#include "core/names.h"
#include "math/loss.h"
#include "math/philox.h"
#include "math/streams.h"
#include "mlpx/array_io.h"
#include "mlpx/error.h"
#include "mlpx/loss.h"
#include "ops/batching.h"

namespace mlpx {

namespace {

constexpr const char* kFashionFiles[4] = {"train-images-idx3-ubyte.gz",
                                          "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                                          "t10k-labels-idx1-ubyte.gz"};

bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

// Fills `out` with the one-hot rows of `labels` over `classes` columns.
Tensor one_hot(const Tensor& labels, int64_t classes) {
  Tensor out = Tensor::zeros({labels.rows(), classes});
  const int32_t* l = labels.data<int32_t>();
  float* o = out.data<float>();
  for (int64_t i = 0; i < labels.rows(); ++i) o[i * classes + l[i]] = 1.0f;
  return out;
}

Tensor argmax_rows(const Tensor& rows) {
  Tensor out({rows.rows()}, DType::kInt32);
  const float* v = rows.data<float>();
  for (int64_t i = 0; i < rows.rows(); ++i) {
    const float* row = v + i * rows.cols();
    out.data<int32_t>()[i] = static_cast<int32_t>(std::max_element(row, row + rows.cols()) - row);
  }
  return out;
}

bool holds_floats(ElementType type) {
  return type == ElementType::kFloat16 || type == ElementType::kFloat32 ||
         type == ElementType::kFloat64;
}

// Whether y is a regression target: data.task, else (auto) one column of floats, [N] or
// [N, 1], with a loss that compares values (mse, sse). Float rows [N, K] stay class scores
// (one-hot or soft targets, argmax as the label) unless the task says regression.
bool is_regression(Loss loss, Task task, const Array& y) {
  if (task != Task::kAuto) return task == Task::kRegression;
  const bool one_column = y.shape.size() == 1 || (y.shape.size() == 2 && y.shape[1] == 1);
  const bool fits_regression =
      math::visit(loss, [](auto member) { return decltype(member)::kFitsRegression; });
  return fits_regression && holds_floats(y.type) && one_column;
}

// Refuses a NaN or an infinity in features x [N, F] (any device), naming the first by row and
// column: training on one only surfaces later as a divergence, with the weights spoilt.
void check_finite_features(const Tensor& x, const std::string& x_name) {
  const Tensor host = x.to(Device::cpu());
  const int64_t cols = std::max<int64_t>(1, host.numel() / std::max<int64_t>(1, host.rows()));
  const auto value = [&](int64_t i) {
    return host.dtype() == DType::kFloat64 ? host.data<double>()[i]
                                           : static_cast<double>(host.data<float>()[i]);
  };
  for (int64_t i = 0; i < host.numel(); ++i) {
    MLPX_CHECK(std::isfinite(value(i)), IoError, x_name, ": expected finite features, found ",
               value(i), " at row ", i / cols, ", column ", i % cols);
  }
}

// Class labels out of [0, outputs) under a loss that also fits regression targets (mse, sse):
// the integers were likely meant as values, so the error says what would read them so.
void check_labels_fit_loss(const Tensor& labels, int64_t outputs, const Array& y, Loss loss) {
  const bool fits_regression =
      math::visit(loss, [](auto member) { return decltype(member)::kFitsRegression; });
  if (!fits_regression) return;
  const int32_t* values = labels.data<int32_t>();
  for (int64_t i = 0; i < labels.rows(); ++i) {
    MLPX_CHECK(values[i] >= 0 && values[i] < outputs, ValueError, y.source,
               ": expected class labels in [0, ", outputs, ") for ", loss_name(loss), " with ",
               outputs, " output(s), found ", values[i], " at row ", i,
               "; for regression targets store y as floats (Python: y.astype(np.float32)) or "
               "set data.task to \"regression\"");
  }
}

// A data set from a features array and a labels-or-targets array.
Dataset make_dataset(const Array& x_array, const Array& y_array, const Config& config,
                     int64_t outputs, const std::string& name) {
  return dataset_from(features_from(x_array, config.data.normalize), x_array.source, y_array,
                      config.loss, config.data.task, outputs, name);
}

Standardization training_statistics(const Tensor& x) {
  const int64_t n = x.rows(), d = x.cols();
  std::vector<double> mean(d, 0.0), var(d, 0.0);
  const float* v = x.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) mean[j] += v[i * d + j];
  for (double& m : mean) m /= static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) var[j] += (v[i * d + j] - mean[j]) * (v[i * d + j] - mean[j]);
  Standardization s{Tensor({d}), Tensor({d})};
  for (int64_t j = 0; j < d; ++j) {
    const double sd = std::sqrt(var[j] / static_cast<double>(n));
    s.shift.data<float>()[j] = static_cast<float>(mean[j]);
    // A constant feature is only centred.
    s.scale.data<float>()[j] = sd > 1e-12 ? static_cast<float>(1.0 / sd) : 1.0f;
  }
  return s;
}

// Holds out round(fraction * N) rows of `all`, chosen by a permutation from the seed; both
// parts keep file order.
void split_validation(Dataset all, double fraction, uint64_t seed, DataSplits& splits) {
  const int64_t n = all.size();
  const int64_t n_val = static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
  MLPX_CHECK(n - n_val >= 1, ValueError, "data.validation_split ", fraction, " leaves no rows of ",
             n, " for training");
  if (n_val == 0) {
    splits.train = std::move(all);
    splits.train.name = "train";
    return;
  }
  const Tensor perm = random_permutation(n, seed, math::kStreamSplit, Device::cpu());
  const int32_t* p = perm.data<int32_t>();
  std::vector<int32_t> val(p, p + n_val), train(p + n_val, p + n);
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  splits.validation = all.select(Tensor::from_vector(val, {n_val}), "validation");
  splits.train = all.select(Tensor::from_vector(train, {n - n_val}), "train");
}

}  // namespace

Dataset dataset_from(Tensor x, const std::string& x_name, const Array& y_array, Loss loss,
                     Task task, int64_t outputs, const std::string& name) {
  Dataset d;
  d.name = name;
  d.x = std::move(x);
  check_finite_features(d.x, x_name);
  d.regression = is_regression(loss, task, y_array);
  const bool float_rows = y_array.shape.size() == 2 && y_array.shape[1] > 1;
  d.per_output = !d.regression && prediction_activation(loss) == Activation::kSigmoid &&
                 (float_rows || outputs == 1);
  if (d.per_output) {
    MLPX_CHECK(y_array.shape.size() <= 2, IoError, y_array.source, ": expected ", loss_name(loss),
               " targets [N] or [N, K] of 0/1, found ", shape_str(y_array.shape));
    d.targets = to_float_tensor(y_array);  // [N] arrives as [N, 1]
    MLPX_CHECK(d.targets.cols() == outputs, IoError, y_array.source, ": expected ", loss_name(loss),
               " targets with ", outputs,
               " column(s) (the model's outputs, one probability each), found ",
               shape_str(y_array.shape));
    const float* t = d.targets.data<float>();
    for (int64_t i = 0; i < d.targets.numel(); ++i) {
      MLPX_CHECK(t[i] >= 0.0f && t[i] <= 1.0f, IoError, y_array.source, ": expected ",
                 loss_name(loss), " targets in [0, 1] (a probability per output), found ", t[i],
                 " at row ", i / outputs, ", column ", i % outputs);
    }
  } else if (d.regression) {
    MLPX_CHECK(y_array.shape.size() <= 2, IoError, y_array.source,
               ": expected regression targets [N] or [N, K], found ", shape_str(y_array.shape));
    d.targets = to_float_tensor(y_array);  // [N] arrives as [N, 1]
    MLPX_CHECK(d.targets.cols() == outputs, IoError, y_array.source, ": expected regression ",
               "targets with ", outputs, " column(s) (the model's outputs), found ",
               shape_str(y_array.shape));
  } else if (float_rows) {
    MLPX_CHECK(!loss_uses_class_labels(loss), IoError, y_array.source, ": ", loss_name(loss),
               " expects class indices [N], found rows ", shape_str(y_array.shape));
    d.targets = to_float_tensor(y_array);
    MLPX_CHECK(d.targets.cols() == outputs, IoError, y_array.source, ": expected targets with ",
               outputs, " columns (the model's outputs), found ", d.targets.cols());
    d.labels = argmax_rows(d.targets);
  } else {
    d.labels = to_labels(y_array, y_array.source);
    check_labels_fit_loss(d.labels, outputs, y_array, loss);
    check_labels(d.labels, outputs, y_array.source);
    if (!loss_uses_class_labels(loss)) d.targets = one_hot(d.labels, outputs);
  }
  const int64_t y_rows = d.labels.defined() ? d.labels.rows() : d.targets.rows();
  MLPX_CHECK(y_rows == d.x.rows(), IoError, y_array.source, ": expected ", d.x.rows(),
             " rows to match ", x_name, ", found ", y_rows);
  return d;
}

void Standardization::apply(Tensor& x) const {
  if (!defined()) return;
  MLPX_CHECK(x.dim() == 2 && x.cols() == shift.numel() && x.device().is_cpu(), ShapeError,
             "standardize: expected CPU rows of ", shift.numel(), " features, found ",
             x.describe());
  const float* sh = shift.data<float>();
  const float* sc = scale.data<float>();
  float* v = x.data<float>();
  const int64_t d = x.cols();
  for (int64_t i = 0; i < x.rows(); ++i)
    for (int64_t j = 0; j < d; ++j) v[i * d + j] = (v[i * d + j] - sh[j]) * sc[j];
}

Dataset Dataset::to(Device device) const {
  Dataset out = *this;
  if (x.defined()) out.x = x.to(device);
  if (labels.defined()) out.labels = labels.to(device);
  if (targets.defined()) out.targets = targets.to(device);
  if (weights.defined()) out.weights = weights.to(device);
  return out;
}

void set_sample_weights(Dataset& set, const Tensor& weights, const std::string& name) {
  MLPX_CHECK(weights.dim() == 1 && weights.numel() == set.size(), ShapeError, name,
             ": expected one weight per row, [", set.size(), "], found ", weights.describe());
  const Tensor host = weights.to(Device::cpu());
  std::vector<float> values(static_cast<size_t>(host.numel()));
  double sum = 0.0;
  for (int64_t i = 0; i < host.numel(); ++i) {
    const double w = host.dtype() == DType::kFloat64 ? host.data<double>()[i]
                                                     : static_cast<double>(host.data<float>()[i]);
    MLPX_CHECK(std::isfinite(w) && w >= 0, ValueError, name,
               ": expected finite weights >= 0, found ", w, " at row ", i);
    values[static_cast<size_t>(i)] = static_cast<float>(w);
    sum += w;
  }
  MLPX_CHECK(set.size() == 0 || sum > 0, ValueError, name,
             ": expected a weight > 0 somewhere, found all ", set.size(), " weights 0");
  set.weights = Tensor::from_vector(values, {set.size()}).to(set.x.device());
}

Dataset Dataset::select(const Tensor& indices, const std::string& new_name) const {
  Dataset out;
  out.name = new_name;
  const int64_t m = indices.rows();
  out.x = Tensor({m, x.cols()});
  gather_rows(x, indices, out.x);
  out.regression = regression;
  out.per_output = per_output;
  if (labels.defined()) {
    out.labels = Tensor({m}, DType::kInt32);
    gather_rows(labels, indices, out.labels);
  }
  if (targets.defined()) {
    out.targets = Tensor({m, targets.cols()});
    gather_rows(targets, indices, out.targets);
  }
  if (weights.defined()) {
    out.weights = Tensor({m});
    gather_rows(weights, indices, out.weights);
  }
  return out;
}

bool fashion_mnist_available(const std::string& dir) {
  return std::all_of(std::begin(kFashionFiles), std::end(kFashionFiles),
                     [&](const char* f) { return file_exists(dir + "/" + f); });
}

Dataset make_synthetic(const SyntheticConfig& config, int64_t samples, uint64_t seed, int part) {
  const int64_t k = config.classes, d = config.features;
  constexpr double kNoise = 2.0;
  auto normal = [&](uint64_t stream, uint64_t index) {
    return math::normal_draw(seed, math::kStreamSynthetic + stream, index);
  };
  Dataset out;
  out.name = part == 0 ? "train" : "test";
  out.x = Tensor({samples, d});
  out.labels = Tensor({samples}, DType::kInt32);
  const uint64_t label_stream = 1 + 2 * part, noise_stream = 2 + 2 * part;
  for (int64_t i = 0; i < samples; ++i) {
    const math::Philox4x32 r =
        math::philox_block(seed, math::kStreamSynthetic + label_stream, static_cast<uint64_t>(i));
    const int32_t label = static_cast<int32_t>(r.v[0] % static_cast<uint32_t>(k));
    out.labels.data<int32_t>()[i] = label;
    for (int64_t j = 0; j < d; ++j) {
      const double centre = normal(0, static_cast<uint64_t>(label * d + j));  // stream 0: centres
      out.x.data<float>()[i * d + j] = static_cast<float>(
          centre + kNoise * normal(noise_stream, static_cast<uint64_t>(i * d + j)));
    }
  }
  return out;
}

double target_variance(const Tensor& targets) {
  const Tensor host = targets.to(Device::cpu());
  const int64_t n = host.rows(), k = host.cols();
  if (n == 0) return std::nan("");
  std::vector<double> mean(k, 0.0);
  const auto value = [&](int64_t i, int64_t j) {
    return host.dtype() == DType::kFloat64 ? host.data<double>()[i * k + j]
                                           : static_cast<double>(host.data<float>()[i * k + j]);
  };
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) mean[j] += value(i, j);
  for (double& m : mean) m /= static_cast<double>(n);
  double squares = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) squares += (value(i, j) - mean[j]) * (value(i, j) - mean[j]);
  return squares / static_cast<double>(n * k);
}

bool standardizes(Normalize normalize, ElementType features) {
  return normalize == Normalize::kStandardize ||
         (normalize == Normalize::kAuto && features != ElementType::kUint8);
}

Tensor features_from(const Array& array, Normalize normalize) {
  Tensor x = to_float_tensor(array);
  const bool scale01 = normalize == Normalize::kScale01 || normalize == Normalize::kAuto;
  if (scale01 && array.type == ElementType::kUint8) {
    float* v = x.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) v[i] /= 255.0f;
  }
  return x;
}

namespace {

// The train and test files of a files or fashion-mnist config.
std::pair<FilePair, FilePair> files_of(const DataConfig& dc) {
  if (dc.source != DataSource::kFashionMnist) return {dc.train, dc.test};
  MLPX_CHECK(fashion_mnist_available(dc.dir), IoError, "fashion-mnist: expected its files in ",
             dc.dir,
             ", found them missing; install Debian's package dataset-fashion-mnist "
             "(apt-get install dataset-fashion-mnist) or set data.source");
  return {{dc.dir + "/" + kFashionFiles[0], dc.dir + "/" + kFashionFiles[1]},
          {dc.dir + "/" + kFashionFiles[2], dc.dir + "/" + kFashionFiles[3]}};
}

// The sources a config names by themselves hold class labels; float regression targets come
// from files (or, through the library and Python, from arrays held in memory, which never reach
// this check).
void check_source_fits_task(const DataConfig& dc) {
  MLPX_CHECK(dc.task != Task::kRegression || dc.source == DataSource::kFiles, ValueError,
             "config: data.task: regression expects data.source 'files' (float targets), found '",
             detail::enum_name(detail::kDataSourceNames, dc.source), "'");
}

void set_regression_baseline(Dataset& set) {
  if (set.regression && set.size() > 0) set.target_variance = target_variance(set.targets);
}

}  // namespace

Dataset load_evaluation_set(const Config& config, int64_t outputs,
                            const Standardization& standardization) {
  const DataConfig& dc = config.data;
  check_source_fits_task(dc);
  Dataset set;
  if (dc.source == DataSource::kSynthetic) {
    const bool has_test = dc.synthetic.test_samples > 0;
    set = make_synthetic(dc.synthetic,
                         has_test ? dc.synthetic.test_samples : dc.synthetic.train_samples,
                         config.seed, has_test ? 1 : 0);
    if (!loss_uses_class_labels(config.loss)) set.targets = one_hot(set.labels, outputs);
  } else {
    const auto [train, test] = files_of(dc);
    const FilePair& files = test.x.empty() ? train : test;
    set = make_dataset(load_array(files.x), load_array(files.y), config, outputs,
                       test.x.empty() ? "train" : "test");
  }
  MLPX_CHECK(!standardization.defined() || standardization.shift.numel() == set.features(),
             ShapeError, "evaluation data: expected ", standardization.shift.numel(),
             " features (as in training), found ", set.features());
  standardization.apply(set.x);
  set_regression_baseline(set);
  return set;
}

DataSplits load_data(const Config& config, int64_t outputs, bool with_test) {
  const DataConfig& dc = config.data;
  check_source_fits_task(dc);
  DataSplits splits;
  Dataset all;
  bool standardize = dc.normalize == Normalize::kStandardize, scaled_uint8 = false;
  if (dc.source == DataSource::kSynthetic) {
    MLPX_CHECK(dc.synthetic.classes <= outputs, ValueError,
               "data.synthetic.classes: expected at most ", outputs,
               " (the model's outputs), found ", dc.synthetic.classes);
    all = make_synthetic(dc.synthetic, dc.synthetic.train_samples, config.seed, 0);
    if (with_test && dc.synthetic.test_samples > 0)
      splits.test = make_synthetic(dc.synthetic, dc.synthetic.test_samples, config.seed, 1);
    for (Dataset* set : {&all, &splits.test}) {
      if (set->size() > 0 && !loss_uses_class_labels(config.loss))
        set->targets = one_hot(set->labels, outputs);
    }
    standardize = standardizes(dc.normalize, ElementType::kFloat32);
    splits.description = "synthetic (" + std::to_string(dc.synthetic.train_samples) + " train, " +
                         std::to_string(dc.synthetic.test_samples) + " test, " +
                         std::to_string(dc.synthetic.features) + " features, " +
                         std::to_string(dc.synthetic.classes) + " classes)";
  } else {
    const auto [train, test] = files_of(dc);
    const Array train_x = load_array(train.x);
    standardize = standardizes(dc.normalize, train_x.type);
    scaled_uint8 =
        !standardize && dc.normalize != Normalize::kNone && train_x.type == ElementType::kUint8;
    all = make_dataset(train_x, load_array(train.y), config, outputs, "train");
    if (with_test && !test.x.empty()) {
      splits.test = make_dataset(load_array(test.x), load_array(test.y), config, outputs, "test");
      MLPX_CHECK(splits.test.features() == all.features(), IoError, test.x, ": expected ",
                 all.features(), " features like ", train.x, ", found ", splits.test.features());
      MLPX_CHECK(splits.test.regression == all.regression, IoError, test.y, ": expected ",
                 all.regression ? "float regression targets" : "class labels", " like ", train.y,
                 ", found ", all.regression ? "class labels" : "float regression targets");
    }
    splits.description = std::string(dc.source == DataSource::kFiles ? "files" : "fashion-mnist") +
                         " (" + train.x + ": " + std::to_string(all.size()) + " train rows, " +
                         std::to_string(splits.test.size()) + " test rows, " +
                         std::to_string(all.features()) + " features" +
                         (all.regression ? ", regression targets" : "") + ")";
  }
  const bool regression = all.regression;
  const char* normalize = detail::enum_name(detail::kNormalizeNames, dc.normalize);
  splits.normalization = std::string(normalize) + ": " +
                         (standardize ? "standardized per feature (training split's mean and std)"
                          : scaled_uint8 ? "uint8 features scaled by 1/255"
                                         : "features as they are");
  split_validation(std::move(all), dc.validation_split, config.seed, splits);
  if (standardize) {
    splits.standardization = training_statistics(splits.train.x);
    for (Dataset* set : {&splits.train, &splits.validation, &splits.test}) {
      if (set->size() > 0) splits.standardization.apply(set->x);
    }
  }
  for (Dataset* set : {&splits.train, &splits.validation, &splits.test}) {
    set->regression = regression && set->size() > 0;
    set_regression_baseline(*set);
  }
  return splits;
}

}  // namespace mlpx
