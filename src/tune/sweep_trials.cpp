#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "mlpx/error.h"
#include "mlpx/sweep.h"
#include "tune/sweep_parts.h"

// Trial records: one JSON line per finished trial in trials.jsonl (written with one write() and
// an fsync, read back tolerating a torn last line), their scores and their ranking.
namespace mlpx {

using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

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

}  // namespace

// The score of a record's epochs: the best epoch's value (NaN values never win).
void detail::score(TrialRecord& r, Metric metric) {
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
bool detail::ranks_before(const TrialRecord& a, const TrialRecord& b, Metric metric) {
  if (a.rung != b.rung) return a.rung > b.rung;
  const bool a_nan = std::isnan(a.score), b_nan = std::isnan(b.score);
  if (a_nan != b_nan) return b_nan;
  if (!a_nan && a.score != b.score)
    return higher_is_better(metric) ? a.score > b.score : a.score < b.score;
  return a.trial < b.trial;
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

}  // namespace mlpx
