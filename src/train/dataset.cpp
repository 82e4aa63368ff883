#include "mlpx/dataset.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <vector>

#include "math/philox.h"
#include "math/streams.h"
#include "mlpx/array_io.h"
#include "mlpx/error.h"
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

// A data set from a features array and a labels-or-targets array.
Dataset make_dataset(const Array& x_array, const Array& y_array, Loss loss, int64_t outputs,
                     bool scale_uint8, const std::string& name) {
  Dataset d;
  d.name = name;
  d.x = to_float_tensor(x_array);
  if (scale_uint8 && x_array.type == ElementType::kUint8) {
    float* x = d.x.data<float>();
    for (int64_t i = 0; i < d.x.numel(); ++i) x[i] /= 255.0f;
  }
  const bool float_rows = y_array.shape.size() == 2 && y_array.shape[1] > 1;
  if (float_rows) {
    MLPX_CHECK(!loss_uses_class_labels(loss), IoError, y_array.source, ": ", loss_name(loss),
               " expects class indices [N], found rows ", shape_str(y_array.shape));
    d.targets = to_float_tensor(y_array);
    MLPX_CHECK(d.targets.cols() == outputs, IoError, y_array.source, ": expected targets with ",
               outputs, " columns (the model's outputs), found ", d.targets.cols());
    d.labels = argmax_rows(d.targets);
  } else {
    d.labels = to_labels(y_array, y_array.source);
    check_labels(d.labels, outputs, y_array.source);
    if (!loss_uses_class_labels(loss)) d.targets = one_hot(d.labels, outputs);
  }
  MLPX_CHECK(d.labels.rows() == d.x.rows(), IoError, y_array.source, ": expected ", d.x.rows(),
             " rows to match ", x_array.source, ", found ", d.labels.rows());
  return d;
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
  return out;
}

Dataset Dataset::select(const Tensor& indices, const std::string& new_name) const {
  Dataset out;
  out.name = new_name;
  const int64_t m = indices.rows();
  out.x = Tensor({m, x.cols()});
  gather_rows(x, indices, out.x);
  out.labels = Tensor({m}, DType::kInt32);
  gather_rows(labels, indices, out.labels);
  if (targets.defined()) {
    out.targets = Tensor({m, targets.cols()});
    gather_rows(targets, indices, out.targets);
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

DataSplits load_data(const Config& config, int64_t outputs) {
  const DataConfig& dc = config.data;
  DataSplits splits;
  Dataset all;
  const bool scale01 = dc.normalize == Normalize::kScale01;
  if (dc.source == DataSource::kSynthetic) {
    MLPX_CHECK(dc.synthetic.classes <= outputs, ValueError,
               "data.synthetic.classes: expected at most ", outputs,
               " (the model's outputs), found ", dc.synthetic.classes);
    all = make_synthetic(dc.synthetic, dc.synthetic.train_samples, config.seed, 0);
    if (dc.synthetic.test_samples > 0)
      splits.test = make_synthetic(dc.synthetic, dc.synthetic.test_samples, config.seed, 1);
    for (Dataset* set : {&all, &splits.test}) {
      if (set->size() > 0 && !loss_uses_class_labels(config.loss))
        set->targets = one_hot(set->labels, outputs);
    }
    splits.description = "synthetic (" + std::to_string(dc.synthetic.train_samples) + " train, " +
                         std::to_string(dc.synthetic.test_samples) + " test, " +
                         std::to_string(dc.synthetic.features) + " features, " +
                         std::to_string(dc.synthetic.classes) + " classes)";
  } else {
    FilePair train = dc.train, test = dc.test;
    if (dc.source == DataSource::kFashionMnist) {
      MLPX_CHECK(fashion_mnist_available(dc.dir), IoError, "fashion-mnist: expected its files in ",
                 dc.dir,
                 ", found them missing; install Debian's package dataset-fashion-mnist "
                 "(apt-get install dataset-fashion-mnist) or set data.source");
      train = {dc.dir + "/" + kFashionFiles[0], dc.dir + "/" + kFashionFiles[1]};
      test = {dc.dir + "/" + kFashionFiles[2], dc.dir + "/" + kFashionFiles[3]};
    }
    all = make_dataset(load_array(train.x), load_array(train.y), config.loss, outputs, scale01,
                       "train");
    if (!test.x.empty()) {
      splits.test = make_dataset(load_array(test.x), load_array(test.y), config.loss, outputs,
                                 scale01, "test");
      MLPX_CHECK(splits.test.features() == all.features(), IoError, test.x, ": expected ",
                 all.features(), " features like ", train.x, ", found ", splits.test.features());
    }
    splits.description = std::string(dc.source == DataSource::kFiles ? "files" : "fashion-mnist") +
                         " (" + train.x + ": " + std::to_string(all.size()) + " train rows, " +
                         std::to_string(splits.test.size()) + " test rows, " +
                         std::to_string(all.features()) + " features)";
  }
  split_validation(std::move(all), dc.validation_split, config.seed, splits);
  if (dc.normalize == Normalize::kStandardize) {
    splits.standardization = training_statistics(splits.train.x);
    for (Dataset* set : {&splits.train, &splits.validation, &splits.test}) {
      if (set->size() > 0) splits.standardization.apply(set->x);
    }
  }
  return splits;
}

}  // namespace mlpx
