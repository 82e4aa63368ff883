#include "mlpx/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "core/names.h"
#include "mlpx/error.h"

namespace mlpx {

using nlohmann::json;

namespace {

const char* json_type_name(const json& value) {
  if (value.is_boolean()) return "a boolean";
  if (value.is_number_integer() || value.is_number_unsigned()) return "an integer";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  return "null";
}

// Reads one JSON object against a fixed set of keys; each read names its key path in errors.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The known key a user probably meant by `unknown`: the name PyTorch or Keras gives it
// (learning_rate is lr here), a key it abbreviates, or one a typo or two away. "" if none.
std::string nearest_key(const std::string& unknown, const std::set<std::string>& known) {
  static const std::pair<const char*, const char*> kOtherNames[] = {
      {"learning_rate", "lr"}, {"learningrate", "lr"},    {"betas", "beta1"},
      {"epsilon", "eps"},      {"num_epochs", "epochs"},  {"n_epochs", "epochs"},
      {"batch", "batch_size"}, {"decay", "weight_decay"}, {"nesterov_momentum", "nesterov"}};
  for (const auto& [other, ours] : kOtherNames) {
    if (unknown == other && known.count(ours)) return ours;
  }
  std::string best;
  size_t best_distance = std::max<size_t>(2, unknown.size() / 3) + 1;
  for (const std::string& k : known) {
    if (unknown.size() >= 3 && k.compare(0, unknown.size(), unknown) == 0) return k;
    const size_t d = edit_distance(unknown, k);
    if (d < best_distance) {
      best = k;
      best_distance = d;
    }
  }
  return best;
}

class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path) : object_(object), path_(std::move(path)) {
    MLPX_CHECK(object_.is_object(), ValueError, where(), "expected an object, found ",
               json_type_name(object_));
  }
  ~ObjectReader() = default;

  // Throws on the first key that no read asked for, with the nearest known key as a hint.
  void reject_unknown_keys() const {
    for (const auto& item : object_.items()) {
      if (seen_.count(item.key())) continue;
      const std::string hint = nearest_key(item.key(), seen_);
      throw ValueError("config: unknown key '" + key(item.key()) + "'" +
                       (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
  }

  const json* find(const std::string& name) {
    seen_.insert(name);
    auto it = object_.find(name);
    return it == object_.end() ? nullptr : &*it;
  }

  std::string key(const std::string& name) const {
    return path_.empty() ? name : path_ + "." + name;
  }

  void read(const std::string& name, double& out) {
    if (const json* v = find(name)) {
      MLPX_CHECK(v->is_number(), ValueError, "config: ", key(name), ": expected a number, found ",
                 json_type_name(*v));
      out = v->get<double>();
      MLPX_CHECK(std::isfinite(out), ValueError, "config: ", key(name),
                 ": expected a finite number, found ", out);
    }
  }
  template <typename Int>
  void read_int(const std::string& name, Int& out, int64_t min_value) {
    if (const json* v = find(name)) {
      MLPX_CHECK(v->is_number_integer() || v->is_number_unsigned(), ValueError,
                 "config: ", key(name), ": expected an integer, found ", json_type_name(*v));
      if (v->is_number_unsigned()) {
        const uint64_t u = v->get<uint64_t>();
        MLPX_CHECK(min_value <= 0 || u >= static_cast<uint64_t>(min_value), ValueError,
                   "config: ", key(name), ": expected an integer >= ", min_value, ", found ", u);
        MLPX_CHECK(u <= static_cast<uint64_t>(std::numeric_limits<Int>::max()), ValueError,
                   "config: ", key(name), ": expected at most ", std::numeric_limits<Int>::max(),
                   ", found ", u);
        out = static_cast<Int>(u);
      } else {
        const int64_t s = v->get<int64_t>();
        MLPX_CHECK(s >= min_value, ValueError, "config: ", key(name),
                   ": expected an integer >= ", min_value, ", found ", s);
        // Every key here has min_value >= 0, so s >= 0 and compares safely as unsigned.
        MLPX_CHECK(
            static_cast<uint64_t>(s) <= static_cast<uint64_t>(std::numeric_limits<Int>::max()),
            ValueError, "config: ", key(name), ": expected at most ",
            std::numeric_limits<Int>::max(), ", found ", s);
        out = static_cast<Int>(s);
      }
    }
  }
  void read(const std::string& name, bool& out) {
    if (const json* v = find(name)) {
      MLPX_CHECK(v->is_boolean(), ValueError, "config: ", key(name), ": expected a boolean, found ",
                 json_type_name(*v));
      out = v->get<bool>();
    }
  }
  void read(const std::string& name, std::string& out) {
    if (const json* v = find(name)) {
      MLPX_CHECK(v->is_string(), ValueError, "config: ", key(name), ": expected a string, found ",
                 json_type_name(*v));
      out = v->get<std::string>();
    }
  }
  // A string naming one value of an enum (its table in core/names.h).
  template <typename Enum, size_t N>
  void read_enum(const std::string& name, Enum& out, const detail::EnumName<Enum> (&names)[N]) {
    std::string text;
    if (!find(name)) return;
    read(name, text);
    out = detail::parse_enum(names, text, "config: " + key(name));
  }
  void read_object(const std::string& name, const std::function<void(ObjectReader&)>& body) {
    if (const json* v = find(name)) {
      ObjectReader sub(*v, key(name));
      body(sub);
      sub.reject_unknown_keys();
    }
  }

 private:
  std::string where() const { return path_.empty() ? "config: " : "config: " + path_ + ": "; }

  const json& object_;
  std::string path_;
  std::set<std::string> seen_;
};

void read_files(ObjectReader& r, const std::string& name, FilePair& files) {
  r.read_object(name, [&](ObjectReader& f) {
    f.read("x", files.x);
    f.read("y", files.y);
  });
}

}  // namespace

Config Config::from_json(const std::string& text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number past double's range ("1e400").
    throw ValueError(std::string("config: expected valid JSON, found a syntax error: ") + e.what());
  }
  Config c;
  ObjectReader r(doc, "");
  r.read_int("seed", c.seed, 0);
  r.read("device", c.device);
  r.read_enum("precision", c.precision, detail::kPrecisionNames);
  r.read_object("data", [&](ObjectReader& d) {
    d.read_enum("source", c.data.source, detail::kDataSourceNames);
    d.read("dir", c.data.dir);
    read_files(d, "train", c.data.train);
    read_files(d, "test", c.data.test);
    d.read("validation_split", c.data.validation_split);
    d.read_enum("normalize", c.data.normalize, detail::kNormalizeNames);
    d.read_enum("task", c.data.task, detail::kTaskNames);
    d.read_object("synthetic", [&](ObjectReader& s) {
      s.read_int("train_samples", c.data.synthetic.train_samples, 1);
      s.read_int("test_samples", c.data.synthetic.test_samples, 0);
      s.read_int("features", c.data.synthetic.features, 1);
      s.read_int("classes", c.data.synthetic.classes, 2);
    });
  });
  r.read_object("model", [&](ObjectReader& m) {
    if (const json* layers = m.find("layers")) {
      MLPX_CHECK(layers->is_array(), ValueError, "config: model.layers: expected an array, found ",
                 json_type_name(*layers));
      c.model.layers.clear();
      for (size_t i = 0; i < layers->size(); ++i) {
        ObjectReader l((*layers)[i], "model.layers[" + std::to_string(i) + "]");
        LayerSpec layer;
        l.read_int("units", layer.units, 1);
        MLPX_CHECK(l.find("units"), ValueError, "config: model.layers[", i,
                   "].units: expected a number of units, found none");
        l.read_enum("activation", layer.activation, detail::kActivationNames);
        if (l.find("alpha")) {
          double alpha = 0;
          l.read("alpha", alpha);
          layer.alpha = alpha;
        }
        l.read("dropout", layer.dropout);
        l.reject_unknown_keys();
        c.model.layers.push_back(layer);
      }
    }
    m.read_enum("init", c.model.init, detail::kInitNames);
    m.read("init_std", c.model.init_std);
    if (m.find("activation_alpha")) {
      double alpha = 0;
      m.read("activation_alpha", alpha);
      c.model.activation_alpha = alpha;
    }
  });
  r.read_enum("loss", c.loss, detail::kLossNames);
  r.read_object("optimizer", [&](ObjectReader& o) {
    o.read_enum("type", c.optimizer.type, detail::kOptimizerNames);
    o.read("lr", c.optimizer.lr);
    o.read("beta1", c.optimizer.beta1);
    o.read("beta2", c.optimizer.beta2);
    if (o.find("eps")) {
      double eps = 0;
      o.read("eps", eps);
      c.optimizer.eps = eps;
    }
    o.read("alpha", c.optimizer.alpha);
    o.read("momentum", c.optimizer.momentum);
    o.read("nesterov", c.optimizer.nesterov);
    o.read("weight_decay", c.optimizer.weight_decay);
  });
  bool total_epochs_given = false;
  r.read_object("schedule", [&](ObjectReader& s) {
    s.read_enum("type", c.schedule.type, detail::kScheduleNames);
    s.read_int("step_size", c.schedule.step_size, 1);
    s.read("gamma", c.schedule.gamma);
    if (const json* milestones = s.find("milestones")) {
      MLPX_CHECK(milestones->is_array(), ValueError,
                 "config: schedule.milestones: expected an array, found ",
                 json_type_name(*milestones));
      c.schedule.milestones.clear();
      for (const json& m : *milestones) {
        MLPX_CHECK(m.is_number_integer(), ValueError,
                   "config: schedule.milestones: expected integers, found ", json_type_name(m));
        // Checked before narrowing: 4294967298 must not become 2.
        MLPX_CHECK(m.is_number_unsigned() ? m.get<uint64_t>() <= std::numeric_limits<int>::max()
                                          : m.get<int64_t>() >= std::numeric_limits<int>::min(),
                   ValueError, "config: schedule.milestones: expected epochs of at most ",
                   std::numeric_limits<int>::max(), ", found ", m.dump());
        c.schedule.milestones.push_back(m.get<int>());
      }
    }
    total_epochs_given = s.find("total_epochs") != nullptr;
    s.read_int("total_epochs", c.schedule.total_epochs, 1);
    s.read("min_lr", c.schedule.min_lr);
    s.read_int("warmup_epochs", c.schedule.warmup_epochs, 0);
  });
  r.read_object("train", [&](ObjectReader& t) {
    t.read_int("epochs", c.train.epochs, 0);
    t.read_int("batch_size", c.train.batch_size, 0);
    t.read("shuffle", c.train.shuffle);
    t.read("cuda_graph", c.train.cuda_graph);
    t.read_enum("on_nonfinite", c.train.on_nonfinite, detail::kNonFiniteNames);
    t.read("shard_optimizer", c.train.shard_optimizer);
    t.read_enum("collectives", c.train.collectives, detail::kCollectivesNames);
    t.read("bucket_mb", c.train.bucket_mb);
    if (const json* e = t.find("early_stopping")) {
      if (!e->is_null()) {
        EarlyStopping stop;
        t.read_object("early_stopping", [&](ObjectReader& s) {
          s.read_enum("metric", stop.metric, detail::kMetricNames);
          s.read_int("patience", stop.patience, 0);
          s.read("min_delta", stop.min_delta);
        });
        c.train.early_stopping = stop;
      }
    }
  });
  if (!total_epochs_given) c.schedule.total_epochs = std::max(c.train.epochs, 1);
  r.read_object("output", [&](ObjectReader& o) {
    o.read("checkpoint", c.output.checkpoint);
    o.read_int("checkpoint_every", c.output.checkpoint_every, 0);
    o.read("init_checkpoint", c.output.init_checkpoint);
    o.read("log", c.output.log);
    o.read("keep_best", c.output.keep_best);
  });
  r.reject_unknown_keys();
  c.validate();
  return c;
}

namespace {

// Every path key of a config: its dotted name and where it lives.
std::vector<std::pair<const char*, std::string*>> path_keys(Config& c) {
  return {{"data.dir", &c.data.dir},
          {"data.train.x", &c.data.train.x},
          {"data.train.y", &c.data.train.y},
          {"data.test.x", &c.data.test.x},
          {"data.test.y", &c.data.test.y},
          {"output.checkpoint", &c.output.checkpoint},
          {"output.init_checkpoint", &c.output.init_checkpoint},
          {"output.log", &c.output.log}};
}

// `path` made absolute against `folder` (itself absolute or relative to the working
// directory); "" stays "" (no file).
std::string absolute_against(const std::string& path, const std::string& folder) {
  namespace fs = std::filesystem;
  if (path.empty()) return path;
  const fs::path p(path);
  return fs::absolute(p.is_absolute() ? p : fs::path(folder) / p).lexically_normal().string();
}

}  // namespace

Config Config::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MLPX_CHECK(in, IoError, path, ": cannot open the config file for reading");
  std::ostringstream text;
  text << in.rdbuf();
  Config config;
  try {
    config = from_json(text.str());
  } catch (const ValueError& e) {
    throw ValueError(path + ": " + e.what());
  }
  // The paths the file names are relative to its folder; the defaults of keys it leaves out
  // stay relative to the working directory.
  const json doc = json::parse(text.str());
  const std::string folder = std::filesystem::path(path).parent_path().string();
  for (const auto& [name, value] : path_keys(config)) {
    std::string pointer = "/" + std::string(name);  // "data.train.x" -> "/data/train/x"
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    if (doc.contains(json::json_pointer(pointer))) *value = absolute_against(*value, folder);
  }
  return config;
}

Config Config::with_absolute_paths() const {
  Config out = *this;
  for (const auto& [name, value] : path_keys(out)) *value = absolute_against(*value, "");
  return out;
}

std::string Config::to_json() const {
  json layers = json::array();
  for (const LayerSpec& l : model.layers) {
    json layer = {{"units", l.units}, {"activation", activation_name(l.activation)}};
    if (l.alpha) layer["alpha"] = *l.alpha;
    layer["dropout"] = l.dropout;
    layers.push_back(layer);
  }
  json opt = {{"type", optimizer_name(optimizer.type)},
              {"lr", optimizer.lr},
              {"beta1", optimizer.beta1},
              {"beta2", optimizer.beta2},
              {"eps", optimizer.effective_eps()},
              {"alpha", optimizer.alpha},
              {"momentum", optimizer.momentum},
              {"nesterov", optimizer.nesterov},
              {"weight_decay", optimizer.weight_decay}};
  json doc = {
      {"seed", seed},
      {"device", device},
      {"precision", precision_name(precision)},
      {"data",
       {{"source", detail::enum_name(detail::kDataSourceNames, data.source)},
        {"dir", data.dir},
        {"train", {{"x", data.train.x}, {"y", data.train.y}}},
        {"test", {{"x", data.test.x}, {"y", data.test.y}}},
        {"validation_split", data.validation_split},
        {"normalize", detail::enum_name(detail::kNormalizeNames, data.normalize)},
        {"task", detail::enum_name(detail::kTaskNames, data.task)},
        {"synthetic",
         {{"train_samples", data.synthetic.train_samples},
          {"test_samples", data.synthetic.test_samples},
          {"features", data.synthetic.features},
          {"classes", data.synthetic.classes}}}}},
      {"model",
       {{"layers", layers}, {"init", init_name(model.init)}, {"init_std", model.init_std}}},
      {"loss", loss_name(loss)},
      {"optimizer", opt},
      {"schedule",
       {{"type", schedule_name(schedule.type)},
        {"step_size", schedule.step_size},
        {"gamma", schedule.gamma},
        {"milestones", schedule.milestones},
        {"total_epochs", schedule.total_epochs},
        {"min_lr", schedule.min_lr},
        {"warmup_epochs", schedule.warmup_epochs}}},
      {"train",
       {{"epochs", train.epochs},
        {"batch_size", train.batch_size},
        {"shuffle", train.shuffle},
        {"cuda_graph", train.cuda_graph},
        {"on_nonfinite", detail::enum_name(detail::kNonFiniteNames, train.on_nonfinite)},
        {"shard_optimizer", train.shard_optimizer},
        {"collectives", detail::enum_name(detail::kCollectivesNames, train.collectives)},
        {"bucket_mb", train.bucket_mb}}},
      {"output",
       {{"checkpoint", output.checkpoint},
        {"checkpoint_every", output.checkpoint_every},
        {"init_checkpoint", output.init_checkpoint},
        {"log", output.log},
        {"keep_best", output.keep_best}}},
  };
  if (train.early_stopping) {
    doc["train"]["early_stopping"] = {{"metric", metric_name(train.early_stopping->metric)},
                                      {"patience", train.early_stopping->patience},
                                      {"min_delta", train.early_stopping->min_delta}};
  }
  if (model.activation_alpha) doc["model"]["activation_alpha"] = *model.activation_alpha;
  return doc.dump(2);
}

std::string metric_name(Metric metric) { return detail::enum_name(detail::kMetricNames, metric); }

bool EarlyStopping::improves(double value, double best) const {
  if (std::isnan(best)) return !std::isnan(value);
  return higher_is_better(metric) ? value - best > min_delta : best - value > min_delta;
}

std::string best_checkpoint_path(const std::string& checkpoint) {
  const std::string ending = ".safetensors";
  if (checkpoint.size() > ending.size() &&
      checkpoint.compare(checkpoint.size() - ending.size(), ending.size(), ending) == 0) {
    return checkpoint.substr(0, checkpoint.size() - ending.size()) + ".best" + ending;
  }
  return checkpoint + ".best";
}

std::vector<LayerSpec> ModelConfig::resolved_layers() const {
  std::vector<LayerSpec> out = layers;
  for (LayerSpec& layer : out) {
    if (!layer.alpha) {
      layer.alpha = activation_alpha.value_or(default_activation_alpha(layer.activation));
    }
  }
  return out;
}

void Config::validate() const {
  const Device parsed = Device::parse(device);  // throws ValueError naming the text
  MLPX_CHECK(precision != Precision::kTf32 || device == "auto" || parsed.is_cuda(), ValueError,
             "config: precision: ", precision_name(precision),
             " needs a CUDA device, found device '", device, "'");
  MLPX_CHECK(data.validation_split >= 0 && data.validation_split < 1, ValueError,
             "config: data.validation_split: expected a fraction in [0, 1), found ",
             data.validation_split);
  if (data.source == DataSource::kFiles) {
    MLPX_CHECK(!data.train.x.empty() && !data.train.y.empty(), ValueError,
               "config: data.train: expected x and y file names for data.source 'files', found ",
               data.train.x.empty() ? "no x" : "no y");
    MLPX_CHECK(data.test.x.empty() == data.test.y.empty(), ValueError,
               "config: data.test: expected both x and y or neither, found only ",
               data.test.x.empty() ? "y" : "x");
  }
  if (data.task == Task::kRegression) {
    MLPX_CHECK(loss == Loss::kMse || loss == Loss::kSse, ValueError,
               "config: data.task: regression expects loss mse or sse, found ", loss_name(loss));
    MLPX_CHECK(data.source == DataSource::kFiles, ValueError,
               "config: data.task: regression expects data.source 'files' (float targets), found '",
               detail::enum_name(detail::kDataSourceNames, data.source), "'");
  }
  MLPX_CHECK(std::isfinite(train.bucket_mb) && train.bucket_mb >= 0, ValueError,
             "config: train.bucket_mb: expected a size in MB >= 0, found ", train.bucket_mb);
  // A skipped step must be skipped by every rank; a rank sees only its shard's gradients.
  MLPX_CHECK(!train.shard_optimizer || train.on_nonfinite == NonFinitePolicy::kStop, ValueError,
             "config: train.shard_optimizer: expected train.on_nonfinite 'stop', found 'skip' "
             "(a step skipped on one rank's shard would not be skipped on the others)");
  if (train.early_stopping) {
    MLPX_CHECK(data.validation_split > 0, ValueError,
               "config: train.early_stopping: expected a validation split to watch "
               "(data.validation_split > 0), found data.validation_split 0");
    MLPX_CHECK(train.early_stopping->min_delta >= 0, ValueError,
               "config: train.early_stopping.min_delta: expected >= 0, found ",
               train.early_stopping->min_delta);
  }
  if (output.keep_best) {
    MLPX_CHECK(data.validation_split > 0, ValueError,
               "config: output.keep_best: expected a validation split to pick the best epoch "
               "(data.validation_split > 0), found data.validation_split 0");
    MLPX_CHECK(!output.checkpoint.empty(), ValueError,
               "config: output.keep_best: expected an output.checkpoint beside which to keep the "
               "best epoch, found none");
  }
  MLPX_CHECK(!model.layers.empty(), ValueError,
             "config: model.layers: expected at least one layer, found none");
  for (size_t i = 0; i < model.layers.size(); ++i) {
    MLPX_CHECK(model.layers[i].units > 0, ValueError, "config: model.layers[", i,
               "].units: expected units > 0, found ", model.layers[i].units);
  }
  for (size_t i = 0; i < model.layers.size(); ++i) {
    const std::optional<double>& alpha = model.layers[i].alpha;
    MLPX_CHECK(!alpha || std::isfinite(*alpha), ValueError, "config: model.layers[", i,
               "].alpha: expected a finite number, found ", alpha.value_or(0));
    const double dropout = model.layers[i].dropout;
    MLPX_CHECK(dropout >= 0.0 && dropout < 1.0, ValueError, "config: model.layers[", i,
               "].dropout: expected a probability in [0, 1), found ", dropout);
  }
  MLPX_CHECK(!model.activation_alpha || std::isfinite(*model.activation_alpha), ValueError,
             "config: model.activation_alpha: expected a finite number, found ",
             model.activation_alpha.value_or(0));
  MLPX_CHECK(model.init_std >= 0, ValueError, "config: model.init_std: expected >= 0, found ",
             model.init_std);
  const Activation last = model.layers.back().activation;
  if (loss == Loss::kCrossEntropy || loss == Loss::kKlDiv || loss == Loss::kBce) {
    MLPX_CHECK(last == Activation::kIdentity, ValueError, "config: ", loss_name(loss),
               " fuses its ", loss == Loss::kBce ? "sigmoid" : "softmax",
               " into the loss: expected the last layer's activation to be identity, found ",
               activation_name(last));
  }
  try {
    optimizer.validate();
  } catch (const ValueError& e) {
    throw ValueError(std::string("config: optimizer: ") + e.what());
  }
  try {
    schedule.validate();
  } catch (const ValueError& e) {
    throw ValueError(std::string("config: schedule: ") + e.what());
  }
}

}  // namespace mlpx
