// Hyperparameter sweeps (`mlpx sweep`): a search space over config keys, grid / random /
// successive-halving search, each trial trained on the training split and scored on the
// validation split only (the test split is never read), results appended to DIR/trials.jsonl
// so that a killed sweep resumes where it stopped. Nothing here prints.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mlpx/config.h"
#include "mlpx/training.h"

namespace mlpx {

// One searched key. `key` is a dotted path into the config's JSON, array elements by index
// ("optimizer.lr", "model.layers.0.units"). choice: one of `choices` (JSON texts); uniform and
// loguniform: a real in [low, high] (loguniform: uniform in log); int: an integer in [low, high].
struct SearchParam {
  enum class Kind { kChoice, kUniform, kLogUniform, kInt };
  std::string key;
  Kind kind = Kind::kChoice;
  std::vector<std::string> choices;  // JSON text of each value
  double low = 0.0, high = 0.0;
};

// The space file: {"KEY": {"choice": [...]} | {"uniform": [lo, hi]} | {"loguniform": [lo, hi]}
// | {"int": [lo, hi]}, ...}. ValueError naming the key for an unknown key (one `base` does not
// accept), an empty choice, a bad range (lo > hi, loguniform lo <= 0, int bounds not integers),
// an unknown distribution, or a value the config refuses. Keys keep the file's order.
std::vector<SearchParam> parse_search_space(const std::string& json_text, const Config& base);

// One point of the space: JSON text of the value of each param, in the space's order.
using SearchPoint = std::vector<std::string>;

// Trial `index`'s draw of a random search: a function of (seed, index) alone, so a resumed
// sweep draws the same points.
SearchPoint random_point(const std::vector<SearchParam>& space, uint64_t seed, int64_t index);
// Every point of a grid search (the product of the choices, first key slowest); ValueError
// naming the first key that is not a choice.
std::vector<SearchPoint> grid_points(const std::vector<SearchParam>& space);
// `base` with the point's values set (via its JSON); ValueError naming the key when the config
// refuses a value.
Config apply_point(const Config& base, const std::vector<SearchParam>& space,
                   const SearchPoint& point);

// One rung of successive halving: the trials that run it and the epochs they have reached
// at its end.
struct Rung {
  int64_t trials = 0;
  int epochs = 0;
};
// The rungs for `trials` trials of at most `max_epochs` epochs with reduction factor `eta`:
// s = the most rungs past the first such that eta^s <= trials and eta^s <= max_epochs; rung i
// (0..s) keeps max(1, floor(trials / eta^i)) trials trained to round(max_epochs / eta^(s-i))
// epochs (the last rung: max_epochs). One rung when s is 0.
std::vector<Rung> halving_rungs(int64_t trials, int max_epochs, int eta = 3);

enum class SweepMethod { kGrid, kRandom, kHalving };
SweepMethod parse_sweep_method(const std::string& name);  // "grid", "random", "halving"
std::string sweep_method_name(SweepMethod method);

struct SweepOptions {
  Config base;                     // every trial's config before the point is applied
  std::vector<SearchParam> space;  // parse_search_space
  SweepMethod method = SweepMethod::kRandom;
  int64_t trials = 20;  // random and halving; grid: at most this many points (0: all)
  uint64_t seed = 0;    // of the random draws (not of training: that is base.seed)
  int eta = 3;          // halving's reduction factor
  // The score: a validation metric (default: val_accuracy, val_r2 for regression tasks).
  // A trial's score is its best epoch's value.
  std::optional<Metric> metric;
  std::string dir;  // where trials.jsonl, best.json and halving's checkpoints go
  int jobs = 1;     // trials run side by side (CPU: the cores split between them; CUDA: one
                    // device each, round robin)
};

// One finished trial (halving: one trial at one rung).
struct TrialRecord {
  int64_t trial = 0;                 // 0-based, in draw order
  int rung = 0;                      // halving's rung; 0 otherwise
  std::string params;                // JSON object: key -> value, the point
  std::string config;                // the trial's whole config, JSON
  std::vector<EpochMetrics> epochs;  // every epoch so far (halving: earlier rungs included)
  double seconds = 0.0;              // of this record's training (not earlier rungs)
  uint64_t seed = 0;                 // the config's seed (weights, shuffles, validation split)
  double score = 0.0;                // NaN when training failed
  int64_t best_epoch = 0;            // the epoch of the score
  std::string error;                 // why training failed; empty when it did not
  std::string device;                // where it ran
};

// trials.jsonl: one JSON line per finished trial. Reading tolerates (and truncates away) a last
// line cut short by a crash; any other bad line is an IoError naming the line.
std::vector<TrialRecord> read_trials(const std::string& path);
// Appends one line with a single write() and fsyncs it.
void append_trial(const std::string& path, const TrialRecord& record);
std::string trial_to_json(const TrialRecord& record);

struct SweepCallbacks {
  // Each trial (or rung) as it finishes, and the ones found in trials.jsonl at the start
  // (resumed true). Called from one thread at a time.
  std::function<void(const TrialRecord&, bool resumed)> on_trial;
  // Halving: before each rung starts.
  std::function<void(int rung, const Rung&)> on_rung;
};

struct SweepResult {
  // Each trial's last record (halving: its highest rung), best first (failed trials last).
  std::vector<TrialRecord> ranked;
  Metric metric = Metric::kValAccuracy;
  int64_t resumed = 0;  // records read back from trials.jsonl instead of trained
  double seconds = 0.0;
  std::vector<Rung> rungs;  // halving's schedule; empty otherwise
};

// Runs the sweep: trains the trials not yet in DIR/trials.jsonl, appends each as it finishes,
// and writes DIR/best.json (the best trial's config, with train.epochs set to the epochs it
// ran). A trial that fails (diverges) is recorded with its error and a NaN score.
SweepResult run_sweep(const SweepOptions& options, const SweepCallbacks& callbacks = {});

// The config that --final trains: `best` (a best.json) on train + validation
// (validation_split 0) with its early stopping and keep_best off.
Config final_config(const Config& best);

}  // namespace mlpx
