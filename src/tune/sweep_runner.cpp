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
#include "mlpx/device.h"
#include "mlpx/error.h"
#include "mlpx/gemm.h"
#include "mlpx/sweep.h"
#include "tune/sweep_parts.h"

// The sweep itself: the trials, run side by side (--jobs) under a lock on the folder, resumed
// from trials.jsonl, rung by rung for halving; and the names of the methods.
namespace mlpx {

using detail::params_json;
using detail::ranks_before;
using detail::score;
using nlohmann::json;

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
