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
#include <type_traits>
#include <utility>
#include <vector>

#include "core/names.h"
#include "mlpx/error.h"
#include "train/config_fields.h"

namespace mlpx {

using nlohmann::json;

namespace {

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

const char* json_type_name(const json& value) {
  if (value.is_boolean()) return "a boolean";
  if (value.is_number_integer() || value.is_number_unsigned()) return "an integer";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  return "null";
}

}  // namespace

// The name PyTorch or Keras gives a key (learning_rate is lr here) comes first.
std::string detail::nearest_key(const std::string& unknown, const std::set<std::string>& known) {
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

namespace {

// Reads one JSON object against a fixed set of keys; each read names its key path in errors.
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
      const std::string hint = detail::nearest_key(item.key(), seen_);
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

// The visitors of config_fields.h's walk: reading a JSON document into a Config, writing a Config
// as JSON, checking its numbers against their ranges, and listing the keys.

// Reads each key of the walk from the document (each ObjectReader remembers the keys asked for,
// so the unknown ones, and the nearest known one, come from the same walk).
class FieldReader {
 public:
  explicit FieldReader(ObjectReader& root) { stack_.push_back(&root); }

  template <typename T>
  void value(const char* name, T& out, const detail::FieldInfo& info) {
    ObjectReader& r = *stack_.back();
    if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, double> ||
                  std::is_same_v<T, std::string>) {
      r.read(name, out);
    } else if constexpr (std::is_integral_v<T>) {
      // Every integer key has a least value (config_fields.h); none is negative.
      r.read_int(name, out,
                 std::isinf(info.range.low) ? int64_t{0} : static_cast<int64_t>(info.range.low));
    } else if constexpr (std::is_same_v<T, std::optional<double>>) {
      if (r.find(name)) {
        double given = 0;
        r.read(name, given);
        out = given;
      }
    } else {
      static_assert(std::is_same_v<T, std::vector<int>>, "a key of an unknown type");
      read_epochs(r, name, out);
    }
    MLPX_CHECK(!info.required || r.find(name), ValueError, "config: ", r.key(name), ": expected ",
               info.help, ", found none");
  }
  void value_shown(const char* name, std::optional<double>& out, double /*shown*/,
                   const detail::FieldInfo& info) {
    value(name, out, info);
  }
  template <typename Enum, size_t N>
  void enumerated(const char* name, Enum& out, const detail::EnumName<Enum> (&names)[N],
                  const detail::FieldInfo& /*info*/) {
    stack_.back()->read_enum(name, out, names);
  }
  template <typename Enum, size_t N, typename Body>
  void enumerated_object(const char* name, Enum& out, const detail::EnumName<Enum> (&names)[N],
                         const detail::FieldInfo& info, bool /*plain*/, const Body& body) {
    const json* given = stack_.back()->find(name);
    if (given == nullptr || given->is_string()) {
      enumerated(name, out, names, info);
      return;
    }
    stack_.back()->read_object(name, [&](ObjectReader& sub) {
      stack_.push_back(&sub);
      sub.read_enum("type", out, names);
      body();
      stack_.pop_back();
    });
  }
  template <typename Body>
  void object(const char* name, const char* /*help*/, const Body& body) {
    stack_.back()->read_object(name, [&](ObjectReader& sub) {
      stack_.push_back(&sub);
      body();
      stack_.pop_back();
    });
  }
  template <typename T, typename Body>
  void optional_object(const char* name, std::optional<T>& out, const char* /*help*/,
                       const Body& body) {
    const json* given = stack_.back()->find(name);
    if (given == nullptr || given->is_null()) return;
    T value;
    stack_.back()->read_object(name, [&](ObjectReader& sub) {
      stack_.push_back(&sub);
      body(value);
      stack_.pop_back();
    });
    out = value;
  }
  template <typename T, typename Body>
  void array(const char* name, std::vector<T>& out, const char* /*help*/, const Body& body) {
    ObjectReader& r = *stack_.back();
    const json* given = r.find(name);
    if (given == nullptr) return;
    MLPX_CHECK(given->is_array(), ValueError, "config: ", r.key(name),
               ": expected an array, found ", json_type_name(*given));
    out.clear();
    for (size_t i = 0; i < given->size(); ++i) {
      ObjectReader element((*given)[i], r.key(name) + "[" + std::to_string(i) + "]");
      T value;
      stack_.push_back(&element);
      body(value);
      stack_.pop_back();
      element.reject_unknown_keys();
      out.push_back(value);
    }
  }

 private:
  // An array of epochs (schedule.milestones): integers that fit an int.
  static void read_epochs(ObjectReader& r, const char* name, std::vector<int>& out) {
    const json* given = r.find(name);
    if (given == nullptr) return;
    MLPX_CHECK(given->is_array(), ValueError, "config: ", r.key(name),
               ": expected an array, found ", json_type_name(*given));
    out.clear();
    for (const json& m : *given) {
      MLPX_CHECK(m.is_number_integer(), ValueError, "config: ", r.key(name),
                 ": expected integers, found ", json_type_name(m));
      // Checked before narrowing: 4294967298 must not become 2.
      MLPX_CHECK(m.is_number_unsigned() ? m.get<uint64_t>() <= std::numeric_limits<int>::max()
                                        : m.get<int64_t>() >= std::numeric_limits<int>::min(),
                 ValueError, "config: ", r.key(name), ": expected epochs of at most ",
                 std::numeric_limits<int>::max(), ", found ", m.dump());
      out.push_back(m.get<int>());
    }
  }

  std::vector<ObjectReader*> stack_;
};

// Writes every key of the walk into a JSON object (unset optional keys left out).
class FieldWriter {
 public:
  explicit FieldWriter(json& root) { stack_.push_back(&root); }

  template <typename T>
  void value(const char* name, const T& v, const detail::FieldInfo& /*info*/) {
    if constexpr (std::is_same_v<T, std::optional<double>>) {
      if (v) (*stack_.back())[name] = *v;
    } else {
      (*stack_.back())[name] = v;
    }
  }
  void value_shown(const char* name, const std::optional<double>& v, double shown,
                   const detail::FieldInfo& /*info*/) {
    (*stack_.back())[name] = v.value_or(shown);
  }
  template <typename Enum, size_t N>
  void enumerated(const char* name, const Enum& v, const detail::EnumName<Enum> (&names)[N],
                  const detail::FieldInfo& /*info*/) {
    (*stack_.back())[name] = detail::enum_name(names, v);
  }
  template <typename Enum, size_t N, typename Body>
  void enumerated_object(const char* name, const Enum& v, const detail::EnumName<Enum> (&names)[N],
                         const detail::FieldInfo& info, bool plain, const Body& body) {
    if (plain) {
      enumerated(name, v, names, info);
      return;
    }
    json& sub = (*stack_.back())[name] = json::object();
    sub["type"] = detail::enum_name(names, v);
    stack_.push_back(&sub);
    body();
    stack_.pop_back();
  }
  template <typename Body>
  void object(const char* name, const char* /*help*/, const Body& body) {
    json& sub = (*stack_.back())[name] = json::object();
    stack_.push_back(&sub);
    body();
    stack_.pop_back();
  }
  template <typename T, typename Body>
  void optional_object(const char* name, const std::optional<T>& v, const char* help,
                       const Body& body) {
    if (!v) return;
    object(name, help, [&] { body(*v); });
  }
  template <typename T, typename Body>
  void array(const char* name, const std::vector<T>& values, const char* /*help*/,
             const Body& body) {
    json out = json::array();
    for (const T& v : values) {
      json element = json::object();
      stack_.push_back(&element);
      body(v);
      stack_.pop_back();
      out.push_back(element);
    }
    (*stack_.back())[name] = out;
  }

 private:
  std::vector<json*> stack_;
};

// The dotted path of the key being visited: "optimizer.lr", "model.layers[0].dropout".
class FieldPath {
 public:
  std::string of(const char* name) const { return prefix_.empty() ? name : prefix_ + "." + name; }
  template <typename Body>
  void inside(const std::string& path, const Body& body) {
    const std::string saved = prefix_;
    prefix_ = path;
    body();
    prefix_ = saved;
  }

 private:
  std::string prefix_;
};

// How an error names a range: its words, else ">= low" or "in [low, high)".
std::string range_words(const detail::Range& range) {
  if (range.words != nullptr) return range.words;
  std::ostringstream out;
  if (std::isinf(range.high)) {
    out << ">= " << range.low;
  } else {
    out << "in [" << range.low << ", " << range.high << (range.high_open ? ")" : "]");
  }
  return out.str();
}

// Checks every number of a Config against its key's range (what Config::validate asks of a
// config built in code as well as one read from a file).
class RangeChecker {
 public:
  template <typename T>
  void value(const char* name, const T& v, const detail::FieldInfo& info) {
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      const detail::Range& range = info.range;
      if (range.contains(static_cast<double>(v))) return;
      if (std::is_integral_v<T>) {
        throw ValueError(detail::concat("config: ", path_.of(name), ": expected an integer >= ",
                                        static_cast<int64_t>(range.low), ", found ", v));
      }
      throw ValueError(detail::concat("config: ", path_.of(name), ": expected ", range_words(range),
                                      ", found ", v));
    }
  }
  void value_shown(const char*, const std::optional<double>&, double, const detail::FieldInfo&) {}
  template <typename Enum, size_t N>
  void enumerated(const char*, const Enum&, const detail::EnumName<Enum> (&)[N],
                  const detail::FieldInfo&) {}
  template <typename Enum, size_t N, typename Body>
  void enumerated_object(const char* name, const Enum&, const detail::EnumName<Enum> (&)[N],
                         const detail::FieldInfo&, bool, const Body& body) {
    path_.inside(path_.of(name), body);
  }
  template <typename Body>
  void object(const char* name, const char*, const Body& body) {
    path_.inside(path_.of(name), body);
  }
  template <typename T, typename Body>
  void optional_object(const char* name, const std::optional<T>& v, const char*, const Body& body) {
    if (v) path_.inside(path_.of(name), [&] { body(*v); });
  }
  template <typename T, typename Body>
  void array(const char* name, const std::vector<T>& values, const char*, const Body& body) {
    for (size_t i = 0; i < values.size(); ++i) {
      path_.inside(path_.of(name) + "[" + std::to_string(i) + "]", [&] { body(values[i]); });
    }
  }

 private:
  FieldPath path_;
};

// Lists the keys of the walk over a default Config, with their defaults.
class FieldLister {
 public:
  explicit FieldLister(const json& defaults) : defaults_(defaults) {}

  template <typename T>
  void value(const char* name, const T& v, const detail::FieldInfo& info) {
    ConfigField f = field(name, info);
    if constexpr (std::is_same_v<T, bool>) {
      f.type = "boolean";
    } else if constexpr (std::is_integral_v<T>) {
      f.type = "integer";
    } else if constexpr (std::is_same_v<T, double> || std::is_same_v<T, std::optional<double>>) {
      f.type = "number";
    } else if constexpr (std::is_same_v<T, std::string>) {
      f.type = "string";
    } else {
      f.type = "array of integers";
    }
    if constexpr (std::is_same_v<T, std::optional<double>>) {
      f.default_json = v ? json(*v).dump() : "null";
    } else {
      f.default_json = json(v).dump();
    }
    if (info.required) f.default_json = "";
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      if (!std::isinf(info.range.low) || !std::isinf(info.range.high)) {
        f.range = range_words(info.range);
      }
    }
    fields_.push_back(f);
  }
  void value_shown(const char* name, const std::optional<double>& v, double shown,
                   const detail::FieldInfo& info) {
    ConfigField f = field(name, info);
    f.type = "number";
    f.default_json = json(v.value_or(shown)).dump();
    fields_.push_back(f);
  }
  template <typename Enum, size_t N>
  void enumerated(const char* name, const Enum& v, const detail::EnumName<Enum> (&names)[N],
                  const detail::FieldInfo& info) {
    ConfigField f = field(name, info);
    f.type = "string";
    f.default_json = json(detail::enum_name(names, v)).dump();
    f.range = detail::enum_names(names);
    fields_.push_back(f);
  }
  // The name is listed as the key itself; the object's other keys beneath it
  // ("loss.label_smoothing").
  template <typename Enum, size_t N, typename Body>
  void enumerated_object(const char* name, const Enum& v, const detail::EnumName<Enum> (&names)[N],
                         const detail::FieldInfo& info, bool /*plain*/, const Body& body) {
    enumerated(name, v, names, info);
    fields_.back().type = "string or object";
    const std::string path = fields_.back().path;
    path_.inside(path, [&] {
      enumerated("type", v, names, detail::hyper("the name, in the object form"));
      body();
    });
  }
  template <typename Body>
  void object(const char* name, const char* help, const Body& body) {
    ConfigField f = field(name, detail::fixed(help));
    f.type = "object";
    fields_.push_back(f);
    path_.inside(f.path, body);
  }
  template <typename T, typename Body>
  void optional_object(const char* name, const std::optional<T>& v, const char* help,
                       const Body& body) {
    ConfigField f = field(name, detail::fixed(help));
    f.type = "object or null";
    f.default_json = "null";
    fields_.push_back(f);
    const T defaults = v.value_or(T{});
    path_.inside(f.path, [&] { body(defaults); });
  }
  template <typename T, typename Body>
  void array(const char* name, const std::vector<T>&, const char* help, const Body& body) {
    ConfigField f = field(name, detail::fixed(help));
    f.type = "array of objects";
    std::string pointer = "/" + f.path;  // "model.layers" -> "/model/layers"
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    f.default_json = defaults_.at(json::json_pointer(pointer)).dump();
    fields_.push_back(f);
    const T element{};
    path_.inside(f.path + "[i]", [&] { body(element); });
  }

  std::vector<ConfigField> take() { return std::move(fields_); }

 private:
  ConfigField field(const char* name, const detail::FieldInfo& info) const {
    ConfigField f;
    f.path = path_.of(name);
    f.help = info.help;
    f.sweepable = info.sweepable;
    return f;
  }

  const json& defaults_;
  FieldPath path_;
  std::vector<ConfigField> fields_;
};

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
  FieldReader reader(r);
  detail::for_each_field(reader, c);
  // A file without schedule.total_epochs decays over its own train.epochs.
  if (!doc.contains(json::json_pointer("/schedule/total_epochs"))) {
    c.schedule.total_epochs = std::max(c.train.epochs, 1);
  }
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
  json doc = json::object();
  FieldWriter writer(doc);
  detail::for_each_field(writer, *this);
  return doc.dump(2);
}

std::vector<ConfigField> config_fields() {
  const Config defaults;
  const json written = json::parse(defaults.to_json());
  FieldLister lister(written);
  detail::for_each_field(lister, defaults);
  std::vector<ConfigField> fields = lister.take();
  // An object may be searched whole (a choice of optimizers) when everything in it may be.
  for (size_t i = fields.size(); i-- > 0;) {
    ConfigField& f = fields[i];
    if (f.type != "object" && f.type != "object or null" && f.type != "array of objects") continue;
    const std::string inside = f.path + (f.type == "array of objects" ? "[i]." : ".");
    bool all = true, any = false;
    for (const ConfigField& g : fields) {
      if (g.path.compare(0, inside.size(), inside) != 0) continue;
      any = true;
      all = all && g.sweepable;
    }
    f.sweepable = any && all;
  }
  return fields;
}

std::string detail::nearest_config_key(const std::string& path) {
  std::set<std::string> paths;
  for (const ConfigField& f : config_fields()) {
    paths.insert(f.path);
    if (f.type == "array of objects") paths.insert(f.path + "[i]");  // an element's keys' parent
  }
  // Walk the path down the table; at the first part it does not know, the nearest sibling.
  std::string prefix;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    const std::string rest = dot == std::string::npos ? "" : path.substr(dot);
    const std::string here = prefix.empty() ? part : prefix + "." + part;
    if (!paths.count(here)) {
      std::set<std::string> siblings;
      const std::string inside = prefix.empty() ? "" : prefix + ".";
      for (const std::string& p : paths) {
        if (p.compare(0, inside.size(), inside) != 0) continue;
        const std::string name = p.substr(inside.size());
        if (name.find_first_of(".[") == std::string::npos) siblings.insert(name);
      }
      const std::string near = nearest_key(part, siblings);
      if (near.empty()) return "";
      const std::string guess = inside + near + rest;
      return paths.count(guess) ? guess : inside + near;
    }
    if (dot == std::string::npos) return "";
    prefix = here;
    start = dot + 1;
  }
  return "";
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
  // Every number against its key's range (config_fields.h), then the rules between keys.
  RangeChecker ranges;
  detail::for_each_field(ranges, *this);
  const Device parsed = Device::parse(device);  // throws ValueError naming the text
  MLPX_CHECK(precision != Precision::kTf32 || device == "auto" || parsed.is_cuda(), ValueError,
             "config: precision: ", precision_name(precision),
             " needs a CUDA device, found device '", device, "'");
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
  }
  // A skipped step must be skipped by every rank; a rank sees only its shard's gradients.
  MLPX_CHECK(!train.shard_optimizer || train.on_nonfinite == NonFinitePolicy::kStop, ValueError,
             "config: train.shard_optimizer: expected train.on_nonfinite 'stop', found 'skip' "
             "(a step skipped on one rank's shard would not be skipped on the others)");
  MLPX_CHECK(!train.shard_optimizer || (train.clip_grad_norm == 0 && train.accumulate_steps == 1),
             ValueError,
             "config: train.shard_optimizer: expected train.clip_grad_norm 0 and "
             "train.accumulate_steps 1 (a rank holds only its shard of the gradients), found ",
             train.clip_grad_norm, " and ", train.accumulate_steps);
  if (schedule.type == ScheduleType::kPlateau) {
    MLPX_CHECK(data.validation_split > 0, ValueError,
               "config: schedule plateau: expected a validation split to watch "
               "(data.validation_split > 0), found data.validation_split 0");
  }
  if (schedule.type == ScheduleType::kOneCycle && schedule.cycle_momentum) {
    // Momentum cycles on sgd's momentum (whose buffer must exist) or adam's beta1.
    MLPX_CHECK(optimizer.type == OptimizerType::kAdam || optimizer.type == OptimizerType::kAdamW ||
                   (optimizer.type == OptimizerType::kSgd && optimizer.momentum > 0),
               ValueError,
               "config: schedule.cycle_momentum: expected sgd with momentum > 0, adam or adamw, "
               "found ",
               optimizer_name(optimizer.type), " with momentum ", optimizer.momentum,
               " (set cycle_momentum false)");
  }
  if (train.early_stopping) {
    MLPX_CHECK(data.validation_split > 0, ValueError,
               "config: train.early_stopping: expected a validation split to watch "
               "(data.validation_split > 0), found data.validation_split 0");
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
    const std::optional<double>& alpha = model.layers[i].alpha;
    MLPX_CHECK(!alpha || std::isfinite(*alpha), ValueError, "config: model.layers[", i,
               "].alpha: expected a finite number, found ", alpha.value_or(0));
    // The first layer's input width is the data's, checked when the model is built.
    if (i > 0 && model.layers[i].residual) {
      MLPX_CHECK(model.layers[i].units == model.layers[i - 1].units, ValueError,
                 "config: model.layers[", i,
                 "]: residual: expected units equal to the layer's input width ",
                 model.layers[i - 1].units, ", found units ", model.layers[i].units);
    }
  }
  MLPX_CHECK(!model.activation_alpha || std::isfinite(*model.activation_alpha), ValueError,
             "config: model.activation_alpha: expected a finite number, found ",
             model.activation_alpha.value_or(0));
  MLPX_CHECK(label_smoothing == 0.0 || loss == Loss::kCrossEntropy, ValueError,
             "config: loss.label_smoothing: expected 0 for ", loss_name(loss),
             " (label smoothing applies to cross_entropy), found ", label_smoothing);
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
    throw ValueError(std::string("config: ") + e.what());
  }
  try {
    schedule.validate();
  } catch (const ValueError& e) {
    throw ValueError(std::string("config: ") + e.what());
  }
}

}  // namespace mlpx
