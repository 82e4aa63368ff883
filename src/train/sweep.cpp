#include "mlpx/sweep.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <utility>

#include "core/names.h"
#include "io/atomic_file.h"
#include "math/philox.h"
#include "mlpx/device.h"
#include "mlpx/error.h"
#include "mlpx/gemm.h"
#include "train/config_fields.h"

namespace mlpx {

using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const char* kind_name(SearchParam::Kind kind) {
  switch (kind) {
    case SearchParam::Kind::kUniform:
      return "uniform";
    case SearchParam::Kind::kLogUniform:
      return "loguniform";
    case SearchParam::Kind::kInt:
      return "int";
    case SearchParam::Kind::kChoice:
      break;
  }
  return "choice";
}

// The element of `doc` that `key` ("model.layers.0.units") names, created when only its last
// part is missing from an object (the config then says whether it knows the key). ValueError
// naming the key when a part before the last is missing or an index is out of range.
json& element_at(json& doc, const std::string& key) {
  json* node = &doc;
  std::istringstream parts(key);
  std::vector<std::string> names;
  for (std::string part; std::getline(parts, part, '.');) names.push_back(part);
  MLPX_CHECK(!names.empty() && std::none_of(names.begin(), names.end(),
                                            [](const std::string& n) { return n.empty(); }),
             ValueError, "space: '", key,
             "': expected a dotted config key (optimizer.lr, model.layers.0.units), found an "
             "empty part");
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    const bool last = i + 1 == names.size();
    if (node->is_array()) {
      const bool digits = std::all_of(name.begin(), name.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) != 0;
      });
      MLPX_CHECK(digits && name.size() < 10 && std::stoul(name) < node->size(), ValueError,
                 "space: ", key, ": expected an index below ", node->size(), " at '", name,
                 "', found none such in the base config");
      node = &(*node)[std::stoul(name)];
    } else if (node->is_object()) {
      MLPX_CHECK(last || node->contains(name), ValueError, "space: ", key,
                 ": unknown config key (the base config has no '", name, "')");
      node = &(*node)[name];
    } else {
      throw ValueError("space: " + key + ": unknown config key ('" + name +
                       "' inside a value that is not an object or array)");
    }
  }
  return *node;
}

// Checks `key` against the config's table of keys (config_fields()): known, and a
// hyperparameter. An array index names any element: "model.layers.0.units" is the table's
// "model.layers[i].units". ValueError naming the key, with the nearest known one. A key with an
// empty part is left to element_at to name.
void check_searchable(const std::string& key) {
  std::string path;
  std::vector<std::string> indices;
  std::istringstream parts(key);
  for (std::string part; std::getline(parts, part, '.');) {
    if (part.empty()) return;
    const bool index = std::all_of(part.begin(), part.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c)) != 0;
    });
    if (index && !path.empty()) {
      path += "[i]";
      indices.push_back(part);
    } else {
      path += (path.empty() ? "" : ".") + part;
    }
  }
  if (path.empty() || key.back() == '.') return;
  static const std::vector<ConfigField> fields = config_fields();
  const auto field = std::find_if(fields.begin(), fields.end(),
                                  [&](const ConfigField& f) { return f.path == path; });
  if (field == fields.end()) {
    // The nearest key, spelled as the space spells it: "[i]" back to the key's own index.
    std::string hint = detail::nearest_config_key(path);
    size_t next = 0;
    for (size_t at; (at = hint.find("[i]")) != std::string::npos;) {
      hint.replace(at, 3, "." + (next < indices.size() ? indices[next++] : std::string("0")));
    }
    throw ValueError("space: " + key + ": unknown config key" +
                     (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
  }
  MLPX_CHECK(field->sweepable, ValueError, "space: ", key,
             ": expected a hyperparameter, found a key a sweep may not search (", field->help,
             "); `mlpx config --keys` marks the ones it may");
}

// A uniform double in [0, 1) from Philox: draw `param` of trial `index` under `seed`.
double uniform01(uint64_t seed, int64_t index, size_t param) {
  const auto i = static_cast<uint64_t>(index);
  const math::Philox4x32 counter{{static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32),
                                  static_cast<uint32_t>(param), 0x5eeb}};
  const math::Philox4x32 out =
      math::philox4x32_10(counter, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  const uint64_t bits = (static_cast<uint64_t>(out.v[0]) << 32 | out.v[1]) >> 11;
  return static_cast<double>(bits) * 0x1.0p-53;
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double number_or_nan(const json& v) { return v.is_number() ? v.get<double>() : kNaN; }

json epoch_to_json(const EpochMetrics& m) {
  return {{"epoch", m.epoch},
          {"lr", m.lr},
          {"train_loss", number_or_null(m.train_loss)},
          {"train_accuracy", number_or_null(m.train_accuracy)},
          {"train_r2", number_or_null(m.train_r2)},
          {"val_loss", number_or_null(m.val_loss)},
          {"val_accuracy", number_or_null(m.val_accuracy)},
          {"val_r2", number_or_null(m.val_r2)},
          {"regression", m.regression},
          {"steps", m.steps},
          {"samples_per_s", m.samples_per_s},
          {"elapsed_s", m.elapsed_s}};
}

EpochMetrics epoch_from_json(const json& j) {
  EpochMetrics m;
  m.epoch = j.at("epoch").get<int64_t>();
  m.lr = number_or_nan(j.at("lr"));
  m.train_loss = number_or_nan(j.at("train_loss"));
  m.train_accuracy = number_or_nan(j.at("train_accuracy"));
  m.train_r2 = number_or_nan(j.at("train_r2"));
  m.val_loss = number_or_nan(j.at("val_loss"));
  m.val_accuracy = number_or_nan(j.at("val_accuracy"));
  m.val_r2 = number_or_nan(j.at("val_r2"));
  m.regression = j.at("regression").get<bool>();
  m.steps = j.at("steps").get<int64_t>();
  m.samples_per_s = number_or_nan(j.at("samples_per_s"));
  m.elapsed_s = number_or_nan(j.at("elapsed_s"));
  return m;
}

TrialRecord trial_from_json(const json& j) {
  TrialRecord r;
  r.trial = j.at("trial").get<int64_t>();
  r.rung = j.at("rung").get<int>();
  r.params = j.at("params").dump();
  r.config = j.at("config").dump();
  for (const json& e : j.at("epochs")) r.epochs.push_back(epoch_from_json(e));
  r.seconds = j.at("seconds").get<double>();
  r.seed = j.at("seed").get<uint64_t>();
  r.score = number_or_nan(j.at("score"));
  r.best_epoch = j.at("best_epoch").get<int64_t>();
  r.error = j.value("error", "");
  r.device = j.value("device", "");
  return r;
}

double metric_of(const EpochMetrics& m, Metric metric) {
  switch (metric) {
    case Metric::kValAccuracy:
      return m.val_accuracy;
    case Metric::kValR2:
      return m.val_r2;
    case Metric::kValLoss:
      break;
  }
  return m.val_loss;
}

// The score of a record's epochs: the best epoch's value (NaN values never win).
void score(TrialRecord& r, Metric metric) {
  r.score = kNaN;
  r.best_epoch = 0;
  for (const EpochMetrics& m : r.epochs) {
    const double v = metric_of(m, metric);
    if (std::isnan(v)) continue;
    if (std::isnan(r.score) || (higher_is_better(metric) ? v > r.score : v < r.score)) {
      r.score = v;
      r.best_epoch = m.epoch;
    }
  }
}

// Best first: a higher rung, then a better score, then the earlier trial; NaN scores last.
bool ranks_before(const TrialRecord& a, const TrialRecord& b, Metric metric) {
  if (a.rung != b.rung) return a.rung > b.rung;
  const bool a_nan = std::isnan(a.score), b_nan = std::isnan(b.score);
  if (a_nan != b_nan) return b_nan;
  if (!a_nan && a.score != b.score)
    return higher_is_better(metric) ? a.score > b.score : a.score < b.score;
  return a.trial < b.trial;
}

json params_json(const std::vector<SearchParam>& space, const SearchPoint& point) {
  json params = json::object();
  for (size_t i = 0; i < space.size(); ++i) params[space[i].key] = json::parse(point[i]);
  return params;
}

}  // namespace

std::vector<SearchParam> parse_search_space(const std::string& json_text, const Config& base) {
  // Ordered: the keys keep the file's order (the table's columns, the plot's panels).
  nlohmann::ordered_json doc;
  try {
    doc = nlohmann::ordered_json::parse(json_text);
  } catch (const json::exception& e) {
    throw ValueError(std::string("space: expected valid JSON, found a syntax error: ") + e.what());
  }
  MLPX_CHECK(doc.is_object() && !doc.empty(), ValueError,
             "space: expected an object of config keys, each with one distribution, found ",
             doc.is_object() ? "an empty object" : doc.dump());
  std::vector<SearchParam> space;
  for (const auto& item : doc.items()) {
    const std::string& key = item.key();
    const nlohmann::ordered_json& dist = item.value();
    MLPX_CHECK(dist.is_object() && dist.size() == 1, ValueError, "space: ", key,
               ": expected one distribution ({\"choice\": [...]}, {\"uniform\": [lo, hi]}, "
               "{\"loguniform\": [lo, hi]} or {\"int\": [lo, hi]}), found ",
               dist.dump());
    check_searchable(key);
    SearchParam p;
    p.key = key;
    const std::string kind = dist.begin().key();
    const nlohmann::ordered_json& args = dist.begin().value();
    if (kind == "choice") {
      MLPX_CHECK(args.is_array() && !args.empty(), ValueError, "space: ", key,
                 ": expected a non-empty array of choices, found ", args.dump());
      for (const auto& v : args) p.choices.push_back(v.dump());
    } else if (kind == "uniform" || kind == "loguniform" || kind == "int") {
      p.kind = kind == "uniform"      ? SearchParam::Kind::kUniform
               : kind == "loguniform" ? SearchParam::Kind::kLogUniform
                                      : SearchParam::Kind::kInt;
      const bool ints = p.kind == SearchParam::Kind::kInt;
      MLPX_CHECK(args.is_array() && args.size() == 2 &&
                     std::all_of(args.begin(), args.end(),
                                 [&](const nlohmann::ordered_json& v) {
                                   return ints ? v.is_number_integer() : v.is_number();
                                 }),
                 ValueError, "space: ", key, ": expected ", kind, " bounds [low, high] as two ",
                 ints ? "integers" : "numbers", ", found ", args.dump());
      p.low = args[0].get<double>();
      p.high = args[1].get<double>();
      MLPX_CHECK(std::isfinite(p.low) && std::isfinite(p.high) && p.low <= p.high, ValueError,
                 "space: ", key, ": expected low <= high (both inclusive), found ", args.dump());
      MLPX_CHECK(p.kind != SearchParam::Kind::kLogUniform || p.low > 0, ValueError, "space: ", key,
                 ": expected loguniform bounds > 0, found ", args.dump());
    } else {
      throw ValueError("space: " + key + ": unknown distribution '" + kind +
                       "'; expected choice, uniform, loguniform or int");
    }
    space.push_back(p);
  }
  // Every key, and each end of its range (every choice), must be a value the config accepts.
  for (const SearchParam& p : space) {
    std::vector<std::string> values = p.choices;
    if (p.kind == SearchParam::Kind::kInt) {
      values = {json(static_cast<int64_t>(p.low)).dump(),
                json(static_cast<int64_t>(p.high)).dump()};
    } else if (p.kind != SearchParam::Kind::kChoice) {
      values = {json(p.low).dump(), json(p.high).dump()};
    }
    for (const std::string& v : values) apply_point(base, {p}, {v});
  }
  return space;
}

SearchPoint random_point(const std::vector<SearchParam>& space, uint64_t seed, int64_t index) {
  SearchPoint point;
  for (size_t i = 0; i < space.size(); ++i) {
    const SearchParam& p = space[i];
    const double u = uniform01(seed, index, i);
    switch (p.kind) {
      case SearchParam::Kind::kChoice: {
        const auto n = static_cast<double>(p.choices.size());
        point.push_back(p.choices[std::min(p.choices.size() - 1, static_cast<size_t>(u * n))]);
        break;
      }
      case SearchParam::Kind::kUniform:
        point.push_back(json(std::clamp(p.low + u * (p.high - p.low), p.low, p.high)).dump());
        break;
      case SearchParam::Kind::kLogUniform: {
        const double v = std::exp(std::log(p.low) + u * (std::log(p.high) - std::log(p.low)));
        point.push_back(json(std::clamp(v, p.low, p.high)).dump());
        break;
      }
      case SearchParam::Kind::kInt: {
        const auto low = static_cast<int64_t>(p.low), high = static_cast<int64_t>(p.high);
        const auto v = low + static_cast<int64_t>(u * static_cast<double>(high - low + 1));
        point.push_back(json(std::min(v, high)).dump());
        break;
      }
    }
  }
  return point;
}

std::vector<SearchPoint> grid_points(const std::vector<SearchParam>& space) {
  for (const SearchParam& p : space) {
    MLPX_CHECK(p.kind == SearchParam::Kind::kChoice, ValueError, "space: ", p.key,
               ": a grid search expects every key to be a choice, found ", kind_name(p.kind));
  }
  std::vector<SearchPoint> points{SearchPoint{}};
  for (const SearchParam& p : space) {
    std::vector<SearchPoint> next;
    for (const SearchPoint& head : points) {
      for (const std::string& v : p.choices) {
        next.push_back(head);
        next.back().push_back(v);
      }
    }
    points = std::move(next);
  }
  return points;
}

Config apply_point(const Config& base, const std::vector<SearchParam>& space,
                   const SearchPoint& point) {
  MLPX_CHECK(point.size() == space.size(), ValueError, "space: expected ", space.size(),
             " values, found ", point.size());
  json doc = json::parse(base.to_json());
  for (size_t i = 0; i < space.size(); ++i) element_at(doc, space[i].key) = json::parse(point[i]);
  try {
    return Config::from_json(doc.dump());
  } catch (const ValueError& e) {
    std::string keys;
    for (const SearchParam& p : space) keys += (keys.empty() ? "" : ", ") + p.key;
    throw ValueError("space: " + keys + ": " + e.what());
  }
}

std::vector<Rung> halving_rungs(int64_t trials, int max_epochs, int eta) {
  MLPX_CHECK(eta >= 2, ValueError, "halving: expected eta >= 2, found ", eta);
  MLPX_CHECK(trials >= 1 && max_epochs >= 1, ValueError,
             "halving: expected at least 1 trial and 1 epoch, found ", trials, " and ", max_epochs);
  int s = 0;
  for (int64_t power = eta; power <= trials && power <= max_epochs; power *= eta) ++s;
  std::vector<Rung> rungs;
  int64_t divisor = 1;
  for (int i = 0; i <= s; ++i) {
    int64_t shrink = 1;
    for (int k = i; k < s; ++k) shrink *= eta;
    const int epochs = std::max(1, static_cast<int>(std::lround(static_cast<double>(max_epochs) /
                                                                static_cast<double>(shrink))));
    rungs.push_back({std::max<int64_t>(1, trials / divisor), i == s ? max_epochs : epochs});
    divisor *= eta;
  }
  return rungs;
}

SweepMethod parse_sweep_method(const std::string& name) {
  if (name == "grid") return SweepMethod::kGrid;
  if (name == "random") return SweepMethod::kRandom;
  if (name == "halving") return SweepMethod::kHalving;
  throw ValueError("sweep method: expected grid, random or halving, found '" + name + "'");
}

std::string sweep_method_name(SweepMethod method) {
  switch (method) {
    case SweepMethod::kGrid:
      return "grid";
    case SweepMethod::kHalving:
      return "halving";
    case SweepMethod::kRandom:
      break;
  }
  return "random";
}

std::string trial_to_json(const TrialRecord& r) {
  json epochs = json::array();
  for (const EpochMetrics& m : r.epochs) epochs.push_back(epoch_to_json(m));
  json line = {{"trial", r.trial},
               {"rung", r.rung},
               {"params", json::parse(r.params)},
               {"score", number_or_null(r.score)},
               {"best_epoch", r.best_epoch},
               {"seconds", r.seconds},
               {"seed", r.seed},
               {"device", r.device},
               {"epochs", epochs},
               {"config", json::parse(r.config)}};
  if (!r.error.empty()) line["error"] = r.error;
  return line.dump();
}

std::vector<TrialRecord> read_trials(const std::string& path) {
  std::vector<TrialRecord> records;
  std::ifstream in(path, std::ios::binary);
  if (!in) return records;  // no sweep has finished a trial here yet
  std::ostringstream text;
  text << in.rdbuf();
  in.close();
  const std::string all = text.str();
  size_t start = 0, good_end = 0;
  int line_number = 0;
  while (start < all.size()) {
    ++line_number;
    const size_t end = all.find('\n', start);
    const bool torn_candidate = end == std::string::npos || end + 1 == all.size();
    const std::string line = all.substr(start, end == std::string::npos ? end : end - start);
    try {
      MLPX_CHECK(end != std::string::npos, IoError, "no line end");
      records.push_back(trial_from_json(json::parse(line)));
      good_end = end + 1;
    } catch (const std::exception& e) {
      // A crash can cut only the last line short (each line is one write()): drop it.
      if (torn_candidate) break;
      throw IoError(path + ": line " + std::to_string(line_number) +
                    ": expected a trial record (one JSON object), found " + e.what());
    }
    start = end + 1;
  }
  if (good_end < all.size()) {
    MLPX_CHECK(::truncate(path.c_str(), static_cast<off_t>(good_end)) == 0, IoError, path,
               ": cannot cut off its torn last line: ", std::strerror(errno));
  }
  return records;
}

void append_trial(const std::string& path, const TrialRecord& record) {
  const std::string line = trial_to_json(record) + "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  MLPX_CHECK(fd >= 0, IoError, path, ": cannot open for appending: ", std::strerror(errno));
  const ssize_t written = ::write(fd, line.data(), line.size());
  const int write_errno = errno;
  const bool synced = written == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  MLPX_CHECK(synced, IoError, path, ": cannot append a trial record: ",
             written < 0 ? std::strerror(write_errno) : "short write or failed fsync");
}

Config final_config(const Config& best) {
  Config c = best;
  c.data.validation_split = 0.0;
  c.train.early_stopping.reset();
  c.output.keep_best = false;
  return c;
}

namespace {

struct Task {
  int64_t trial = 0;
  int rung = 0;
  int epochs = 0;
  const TrialRecord* previous = nullptr;  // halving: this trial's record at the rung before
  int previous_epochs = 0;                // and the epochs that rung trained to
};

class Sweep {
 public:
  Sweep(const SweepOptions& options, const SweepCallbacks& callbacks)
      : options_(options),
        callbacks_(callbacks),
        trials_path_((std::filesystem::path(options.dir) / "trials.jsonl").string()),
        checkpoints_((std::filesystem::path(options.dir) / "checkpoints").string()) {}

  SweepResult run() {
    const auto start = std::chrono::steady_clock::now();
    std::filesystem::create_directories(options_.dir);
    lock_folder();
    if (options_.method == SweepMethod::kHalving) std::filesystem::create_directories(checkpoints_);
    make_points();
    for (TrialRecord& r : read_trials(trials_path_)) {
      // Trials past this run's --trials (an earlier run drew more) take no part.
      if (r.trial < 0 || r.trial >= static_cast<int64_t>(points_.size())) continue;
      MLPX_CHECK(json::parse(r.params) == params_json(options_.space, points_[r.trial]), ValueError,
                 trials_path_, ": trial ", r.trial,
                 " was run with other values than this sweep draws (", r.params,
                 "): the folder holds another sweep; use another --out");
      score_record(r);
      if (callbacks_.on_trial) callbacks_.on_trial(r, true);
      done_[{r.trial, r.rung}] = std::move(r);
      ++result_.resumed;
    }
    const int max_epochs = options_.base.train.epochs;
    std::vector<Rung> rungs = {{static_cast<int64_t>(points_.size()), max_epochs}};
    if (options_.method == SweepMethod::kHalving) {
      rungs = halving_rungs(static_cast<int64_t>(points_.size()), max_epochs, options_.eta);
      result_.rungs = rungs;
    }
    std::vector<int64_t> entrants(points_.size());
    for (size_t i = 0; i < entrants.size(); ++i) entrants[i] = static_cast<int64_t>(i);
    for (size_t rung = 0; rung < rungs.size(); ++rung) {
      if (callbacks_.on_rung) callbacks_.on_rung(static_cast<int>(rung), rungs[rung]);
      entrants.resize(std::min<size_t>(entrants.size(), rungs[rung].trials));
      std::vector<Task> tasks;
      for (const int64_t t : entrants) {
        const Task task{t, static_cast<int>(rung), rungs[rung].epochs,
                        rung == 0 ? nullptr : &done_.at({t, static_cast<int>(rung) - 1}),
                        rung == 0 ? 0 : rungs[rung - 1].epochs};
        if (!done_.count({t, task.rung})) tasks.push_back(task);
      }
      run_tasks(tasks);
      std::vector<const TrialRecord*> standing;
      for (const int64_t t : entrants) standing.push_back(&done_.at({t, static_cast<int>(rung)}));
      std::sort(standing.begin(), standing.end(), [&](const TrialRecord* a, const TrialRecord* b) {
        return ranks_before(*a, *b, metric_);
      });
      entrants.clear();
      for (const TrialRecord* r : standing) entrants.push_back(r->trial);
      // The rung before is no longer needed for resuming: drop its checkpoints.
      if (rung > 0) remove_checkpoints(static_cast<int>(rung) - 1);
    }
    if (!rungs.empty()) remove_checkpoints(static_cast<int>(rungs.size()) - 1);
    std::error_code ignored;
    std::filesystem::remove(checkpoints_, ignored);  // only when empty

    std::map<int64_t, const TrialRecord*> last;
    for (const auto& [key, r] : done_) {
      last[key.first] = &r;  // the map runs in rung order: the highest rung stays
    }
    for (const auto& [trial, r] : last) result_.ranked.push_back(*r);
    std::sort(
        result_.ranked.begin(), result_.ranked.end(),
        [&](const TrialRecord& a, const TrialRecord& b) { return ranks_before(a, b, metric_); });
    result_.metric = metric_;
    if (!result_.ranked.empty() && !std::isnan(result_.ranked.front().score)) {
      const TrialRecord& best = result_.ranked.front();
      Config config = Config::from_json(best.config);
      config.train.epochs = static_cast<int>(best.best_epoch);
      config.device = options_.base.device;
      config.output = options_.base.output;
      detail::write_file_atomic((std::filesystem::path(options_.dir) / "best.json").string(),
                                config.to_json() + "\n");
    }
    result_.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result_;
  }

 private:
  void make_points() {
    if (options_.method == SweepMethod::kGrid) {
      points_ = grid_points(options_.space);
      if (options_.trials > 0 && options_.trials < static_cast<int64_t>(points_.size()))
        points_.resize(static_cast<size_t>(options_.trials));
    } else {
      MLPX_CHECK(options_.trials >= 1, ValueError, "sweep: expected --trials >= 1, found ",
                 options_.trials);
      for (int64_t i = 0; i < options_.trials; ++i)
        points_.push_back(random_point(options_.space, options_.seed, i));
    }
    // Unset, the first scored record decides between accuracy and R^2 (score_record).
    metric_ = options_.metric.value_or(Metric::kValAccuracy);
  }

  std::string checkpoint_path(int64_t trial, int rung) const {
    return (std::filesystem::path(checkpoints_) /
            ("trial-" + std::to_string(trial) + "-rung-" + std::to_string(rung) + ".safetensors"))
        .string();
  }

  void remove_checkpoints(int rung) {
    std::error_code ignored;
    for (size_t t = 0; t < points_.size(); ++t)
      std::filesystem::remove(checkpoint_path(static_cast<int64_t>(t), rung), ignored);
  }

  // The device of job `job`: CUDA jobs take one device each, round robin.
  std::string job_device(int job) const {
    const Device device = Device::parse(options_.base.device);
    if (!device.is_cuda() || options_.jobs == 1) return device.str();
    const int count = std::max(1, cuda_device_count());
    return Device::cuda(job % count).str();
  }

  TrialRecord train(const Task& task, const std::string& device) {
    TrialRecord r;
    r.trial = task.trial;
    r.rung = task.rung;
    r.params = params_json(options_.space, points_[task.trial]).dump();
    r.device = device;
    Config config = apply_point(options_.base, options_.space, points_[task.trial]);
    config.device = device;
    config.train.epochs = task.epochs;
    config.output.log.clear();
    config.output.init_checkpoint.clear();
    config.output.keep_best = false;
    config.output.checkpoint_every = 0;
    const bool halving = options_.method == SweepMethod::kHalving;
    config.output.checkpoint = halving ? checkpoint_path(task.trial, task.rung) : "";
    r.seed = config.seed;
    r.config = config.to_json();
    RunOptions run;
    run.read_test = false;
    run.callbacks.on_epoch = [&r](const EpochMetrics& m) { r.epochs.push_back(m); };
    if (task.previous) {
      r.epochs = task.previous->epochs;
      const bool ended = !task.previous->error.empty() ||
                         static_cast<int>(task.previous->epochs.size()) < task.previous_epochs;
      if (ended) {
        // Stopped early (or failed) at the rung before: it stays as it was.
        r.error = task.previous->error;
        if (task.previous->error.empty()) {
          std::filesystem::copy_file(checkpoint_path(task.trial, task.rung - 1),
                                     config.output.checkpoint,
                                     std::filesystem::copy_options::overwrite_existing);
        }
        return r;
      }
      run.resume = checkpoint_path(task.trial, task.rung - 1);
      run.history = task.previous->epochs;
    }
    const auto start = std::chrono::steady_clock::now();
    try {
      run_training(config, run);
    } catch (const IoError&) {
      throw;  // the data or the folder, not the trial: every trial would fail the same way
    } catch (const Error& e) {
      r.error = e.what();  // a diverged trial (or a config the trainer refuses): ranked last
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
  }

  // Scores a record; the first one with epochs tells a regression task (no accuracy) apart.
  // Called with the records' lock held.
  void score_record(TrialRecord& r) {
    if (!options_.metric && !r.epochs.empty() && r.epochs.front().regression)
      metric_ = Metric::kValR2;
    score(r, metric_);
  }

  void run_tasks(const std::vector<Task>& tasks) {
    const int jobs = std::max(1, std::min<int>(options_.jobs, static_cast<int>(tasks.size())));
    std::atomic<size_t> next{0};
    std::exception_ptr failure;
    std::mutex mutex;
    auto worker = [&](int job) {
      const std::string device = job_device(job);
      for (size_t i = next++; i < tasks.size(); i = next++) {
        try {
          TrialRecord r = train(tasks[i], device);
          const std::lock_guard<std::mutex> lock(mutex);
          if (failure) return;
          score_record(r);
          append_trial(trials_path_, r);
          if (callbacks_.on_trial) callbacks_.on_trial(r, false);
          done_[{r.trial, r.rung}] = std::move(r);
        } catch (...) {
          const std::lock_guard<std::mutex> lock(mutex);
          if (!failure) failure = std::current_exception();
          next = tasks.size();
          return;
        }
      }
    };
    if (jobs == 1) {
      worker(0);
    } else {
      std::vector<std::thread> threads;
      for (int j = 0; j < jobs; ++j) threads.emplace_back(worker, j);
      for (std::thread& t : threads) t.join();
    }
    if (failure) std::rethrow_exception(failure);
  }

  // Two sweeps appending to one trials.jsonl would train the same trials twice: the second is
  // refused while the first holds the folder's lock (released when its process ends, however).
  void lock_folder() {
    const std::string path = (std::filesystem::path(options_.dir) / ".lock").string();
    lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    MLPX_CHECK(lock_fd_ >= 0, IoError, path, ": cannot open: ", std::strerror(errno));
    MLPX_CHECK(::flock(lock_fd_, LOCK_EX | LOCK_NB) == 0, IoError, options_.dir,
               ": expected no other sweep running in this folder, found one (its lock file ", path,
               " is held)");
  }

 public:
  ~Sweep() {
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }
  Sweep(const Sweep&) = delete;
  Sweep& operator=(const Sweep&) = delete;

 private:
  int lock_fd_ = -1;
  const SweepOptions& options_;
  const SweepCallbacks& callbacks_;
  std::string trials_path_, checkpoints_;
  std::vector<SearchPoint> points_;
  std::map<std::pair<int64_t, int>, TrialRecord> done_;
  Metric metric_ = Metric::kValAccuracy;
  SweepResult result_;
};

}  // namespace

SweepResult run_sweep(const SweepOptions& options, const SweepCallbacks& callbacks) {
  MLPX_CHECK(options.base.data.validation_split > 0, ValueError,
             "sweep: expected a validation split to score the trials on (data.validation_split "
             "> 0), found 0");
  MLPX_CHECK(options.jobs >= 1, ValueError, "sweep: expected --jobs >= 1, found ", options.jobs);
  MLPX_CHECK(!options.dir.empty(), ValueError, "sweep: expected an output folder, found none");
  // On the CPU the cores are split between the jobs (each GEMM's OpenBLAS threads).
  const bool cpu = !Device::parse(options.base.device).is_cuda();
  const int threads = cpu_threads();
  if (cpu && options.jobs > 1) set_cpu_threads(std::max(1, threads / options.jobs));
  try {
    SweepResult result = Sweep(options, callbacks).run();
    if (cpu && options.jobs > 1) set_cpu_threads(threads);
    return result;
  } catch (...) {
    if (cpu && options.jobs > 1) set_cpu_threads(threads);
    throw;
  }
}

}  // namespace mlpx
