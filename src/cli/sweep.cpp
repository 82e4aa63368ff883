// mlpx sweep: a hyperparameter search on the validation split (run_sweep in mlpx/sweep.h), a
// line per finished trial, the ranked table, DIR/sweep.png, and with --final the one read of
// the test split: the best config retrained on train + validation.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "gnuplot.h"
#include "mlpx/mlpx.h"
#include "options.h"
#include "progress.h"

namespace mlpx::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct SweepArgs {
  std::string config, space, method = "random", out = "sweep", device, metric;
  std::optional<int64_t> trials;
  int jobs = 1;
  int eta = 3;
  uint64_t seed = 0;
  bool final = false;
  bool quiet = false;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MLPX_CHECK(in, IoError, path, ": cannot open for reading");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string fixed(double v, int digits) {
  if (std::isnan(v)) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

// A searched value as a table cell: numbers to 4 significant digits, strings bare.
std::string cell(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    std::ostringstream s;
    s << std::setprecision(4) << v.get<double>();
    return s.str();
  }
  return v.dump();
}

std::string trial_line(const TrialRecord& r, Metric metric, bool halving) {
  std::ostringstream line;
  line << "trial " << r.trial;
  if (halving) line << " rung " << r.rung;
  line << " (" << r.epochs.size() << (r.epochs.size() == 1 ? " epoch" : " epochs") << ", "
       << fixed(r.seconds, 1) << " s";
  if (!r.device.empty()) line << ", " << r.device;
  line << "): ";
  if (!r.error.empty()) {
    line << "failed: " << r.error;
  } else {
    line << metric_name(metric) << " " << fixed(r.score, 4) << " at epoch " << r.best_epoch;
  }
  const json params = json::parse(r.params);
  for (const auto& item : params.items()) line << "  " << item.key() << "=" << cell(item.value());
  return line.str();
}

void print_table(const SweepResult& result, const std::vector<SearchParam>& space, bool halving) {
  std::vector<std::string> header = {"rank", "trial"};
  if (halving) header.emplace_back("rung");
  for (const char* h : {"score", "best epoch", "epochs", "seconds"}) header.emplace_back(h);
  for (const SearchParam& p : space) header.push_back(p.key);
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < result.ranked.size(); ++i) {
    const TrialRecord& r = result.ranked[i];
    std::vector<std::string> row = {std::to_string(i + 1), std::to_string(r.trial)};
    if (halving) row.push_back(std::to_string(r.rung));
    row.push_back(r.error.empty() ? fixed(r.score, 4) : "failed");
    row.push_back(std::to_string(r.best_epoch));
    row.push_back(std::to_string(r.epochs.size()));
    row.push_back(fixed(r.seconds, 1));
    const json params = json::parse(r.params);
    for (const SearchParam& p : space) row.push_back(cell(params.at(p.key)));
    rows.push_back(row);
  }
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    for (size_t c = 0; c < row.size(); ++c) {
      std::cout << (c ? "  " : "") << std::setw(static_cast<int>(width[c])) << row[c];
    }
    std::cout << "\n";
  };
  std::cout << "score: " << metric_name(result.metric) << " on the validation split, "
            << (higher_is_better(result.metric) ? "higher" : "lower")
            << " is better (the best epoch's)\n";
  print_row(header);
  for (const auto& row : rows) print_row(row);
  std::cout << std::flush;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  MLPX_CHECK(out, IoError, path, ": cannot write");
}

// DIR/sweep.png: one panel per searched key (score against its value; a log axis for
// loguniform; choices by position) and the validation curves of the five best trials.
void draw(const SweepResult& result, const std::vector<SearchParam>& space,
          const std::string& png) {
  const std::string gnuplot = find_gnuplot();
  TempFolder work("mlpx-sweep");
  const size_t panels = space.size() + 1;
  const size_t columns = std::min<size_t>(3, panels), rows = (panels + columns - 1) / columns;
  std::ostringstream g;
  g << gnuplot_png_terminal(static_cast<int>(420 * columns), static_cast<int>(340 * rows), 9,
                            "sweep.png")
    << "set grid lc rgb '#dddddd'\nset datafile separator '\\t'\nunset key\n"
    << "set multiplot layout " << rows << "," << columns << " title "
    << gnuplot_quote("each trial's best " + metric_name(result.metric) + " (validation split)")
    << "\n";
  for (size_t k = 0; k < space.size(); ++k) {
    const SearchParam& p = space[k];
    std::ostringstream data;
    for (const TrialRecord& r : result.ranked) {
      if (std::isnan(r.score)) continue;
      const json v = json::parse(r.params).at(p.key);
      if (p.kind == SearchParam::Kind::kChoice) {
        const auto at = std::find(p.choices.begin(), p.choices.end(), v.dump());
        data << (at - p.choices.begin()) << "\t" << r.score << "\n";
      } else {
        data << v.get<double>() << "\t" << r.score << "\n";
      }
    }
    const std::string file = "param" + std::to_string(k) + ".dat";
    write_text(work.path() + "/" + file, data.str());
    g << "set title " << gnuplot_quote(p.key) << "\nset xlabel " << gnuplot_quote(p.key)
      << "\nset ylabel " << gnuplot_quote(metric_name(result.metric)) << "\n";
    g << (p.kind == SearchParam::Kind::kLogUniform ? "set logscale x\n" : "unset logscale x\n");
    if (p.kind == SearchParam::Kind::kChoice) {
      g << "set xrange [-0.5:" << p.choices.size() - 0.5 << "]\nset xtics (";
      for (size_t c = 0; c < p.choices.size(); ++c) {
        g << (c ? ", " : "") << gnuplot_quote(cell(json::parse(p.choices[c]))) << " " << c;
      }
      g << ")\n";
    } else {
      g << "set autoscale x\nset xtics autofreq\n";
    }
    g << "plot " << gnuplot_quote(file) << " using 1:2 with points pt 7 ps 1 lc rgb '#1f77b4'\n";
  }
  g << "unset logscale x\nset autoscale x\nset xtics autofreq\nset key below font ',8'\n"
    << "set title 'learning curves of the best trials'\nset xlabel 'epoch'\nset ylabel "
    << gnuplot_quote("validation " + metric_name(result.metric)) << "\nplot ";
  const size_t top = std::min<size_t>(5, result.ranked.size());
  for (size_t i = 0; i < top; ++i) {
    const TrialRecord& r = result.ranked[i];
    std::ostringstream data;
    for (const EpochMetrics& m : r.epochs) {
      const double v = result.metric == Metric::kValLoss       ? m.val_loss
                       : result.metric == Metric::kValAccuracy ? m.val_accuracy
                                                               : m.val_r2;
      if (std::isfinite(v)) data << m.epoch << "\t" << v << "\n";
    }
    const std::string file = "curve" + std::to_string(i) + ".dat";
    write_text(work.path() + "/" + file, data.str());
    g << (i ? ", " : "") << gnuplot_quote(file) << " using 1:2 with linespoints lw 2 pt 7 ps 0.6 "
      << "title " << gnuplot_quote("trial " + std::to_string(r.trial));
  }
  if (top == 0) g << "0 notitle";
  g << "\nunset multiplot\n";
  write_text(work.path() + "/sweep.gp", g.str());
  run_gnuplot_to_png(gnuplot, "sweep.gp", work.path(), png);
}

void run_sweep_command(const SweepArgs& args) {
  Config base = Config::load(args.config);
  if (!args.device.empty()) base.device = args.device;
  base.validate();
  SweepOptions options;
  options.base = base;
  try {
    options.space = parse_search_space(read_text(args.space), base);
  } catch (const ValueError& e) {
    throw ValueError(args.space + ": " + e.what());
  }
  options.method = parse_sweep_method(args.method);
  const bool halving = options.method == SweepMethod::kHalving;
  options.trials = args.trials.value_or(options.method == SweepMethod::kGrid ? 0 : 20);
  options.seed = args.seed;
  options.eta = args.eta;
  options.jobs = args.jobs;
  options.dir = args.out;
  if (!args.metric.empty()) {
    const std::vector<Metric> all = {Metric::kValLoss, Metric::kValAccuracy, Metric::kValR2};
    const auto it = std::find_if(all.begin(), all.end(),
                                 [&](Metric m) { return metric_name(m) == args.metric; });
    MLPX_CHECK(it != all.end(), ValueError,
               "--metric: expected val_loss, val_accuracy or val_r2, found '", args.metric, "'");
    options.metric = *it;
  }

  SweepCallbacks show;
  Metric shown_metric = options.metric.value_or(Metric::kValAccuracy);
  if (!args.quiet) {
    show.on_trial = [&](const TrialRecord& r, bool resumed) {
      if (!r.epochs.empty() && r.epochs.front().regression && !options.metric)
        shown_metric = Metric::kValR2;
      std::cout << (resumed ? "done before: " : "") << trial_line(r, shown_metric, halving)
                << std::endl;
    };
    show.on_rung = [&](int rung, const Rung& r) {
      if (!halving) return;
      std::cout << "rung " << rung << ": " << r.trials << (r.trials == 1 ? " trial" : " trials")
                << " to epoch " << r.epochs << std::endl;
    };
  }
  const SweepResult result = run_sweep(options, show);
  const fs::path dir(args.out);
  if (!args.quiet) {
    std::cout << "\n";
    print_table(result, options.space, halving);
    std::cout << result.ranked.size() << " trials (" << result.resumed << " records read back from "
              << (dir / "trials.jsonl").string() << "), " << fixed(result.seconds, 1) << " s\n";
  }
  if (result.ranked.empty() || std::isnan(result.ranked.front().score)) {
    throw Error("sweep: every trial failed; see " + (dir / "trials.jsonl").string());
  }
  const TrialRecord& best = result.ranked.front();
  const std::string best_path = (dir / "best.json").string();
  if (!args.quiet) {
    std::cout << "best: trial " << best.trial << ", validation " << metric_name(result.metric)
              << " " << fixed(best.score, 4) << " at epoch " << best.best_epoch << "; config in "
              << best_path << std::endl;
  }
  if (find_gnuplot().empty()) {
    // The results stand without the picture: say so rather than fail the sweep.
    std::cerr << "note: gnuplot not found: no " << (dir / "sweep.png").string()
              << " (install the Debian package " << kGnuplotPackage << ")" << std::endl;
  } else {
    draw(result, options.space, fs::absolute(dir / "sweep.png").string());
    if (!args.quiet) std::cout << "wrote " << (dir / "sweep.png").string() << std::endl;
  }

  if (!args.final) return;
  Config final = final_config(Config::load(best_path));
  final.output.checkpoint = fs::absolute(dir / "final.safetensors").string();
  final.output.log = fs::absolute(dir / "final.jsonl").string();
  final.output.init_checkpoint.clear();
  const RunResult run = run_training(final);
  std::cout << "final: trial " << best.trial << "'s config retrained on train + validation for "
            << final.train.epochs << (final.train.epochs == 1 ? " epoch" : " epochs") << " ("
            << final.output.checkpoint << ")\n";
  if (run.test.samples == 0) {
    std::cout << "final: the data has no test split: nothing to report" << std::endl;
    return;
  }
  std::cout << "final TEST score (the sweep's only read of the test split): "
            << test_line(run.test, run.seconds) << std::endl;
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  auto args = std::make_shared<SweepArgs>();
  CLI::App* cmd = app.add_subcommand(
      "sweep", "Search hyperparameters on the validation split (grid, random, successive halving)");
  cmd->add_option("--config", args->config, "The base config (JSON) every trial starts from")
      ->required()
      ->check(existing_file());
  cmd->add_option("--space", args->space,
                  "The search space (JSON): {\"optimizer.lr\": {\"loguniform\": [1e-4, 1e-1]}, "
                  "...}; distributions choice, uniform, loguniform, int (inclusive bounds)")
      ->required()
      ->check(existing_file());
  cmd->add_option("--method", args->method, "grid, random or halving (successive halving)")
      ->check(CLI::IsMember({"grid", "random", "halving"}));
  cmd->add_option("--trials", args->trials,
                  "Trials to draw (random, halving: default 20; grid: at most this many points, "
                  "default all)")
      ->check(integer_at_least(1));
  cmd->add_option("--jobs", args->jobs,
                  "Trials side by side (CPU: the cores split between them; CUDA: a device each)")
      ->check(integer_at_least(1));
  cmd->add_option("--out", args->out,
                  "Folder of trials.jsonl, best.json and sweep.png (default: sweep); rerunning "
                  "the same command there resumes");
  cmd->add_option("--seed", args->seed, "Seed of the random draws (training uses the config's)");
  cmd->add_option("--eta", args->eta, "Successive halving's reduction factor (default 3)")
      ->check(integer_in(2, 100));
  cmd->add_option("--metric", args->metric,
                  "val_loss, val_accuracy or val_r2 (default: val_accuracy; val_r2 for "
                  "regression)");
  cmd->add_option("--device", args->device, "auto, cpu, cuda or cuda:N (default: the config's)")
      ->check(device_name());
  cmd->add_flag("--final", args->final,
                "Retrain the best config on train + validation and report its test score");
  cmd->add_flag("--quiet", args->quiet, "Print only the final test score and errors");
  cmd->callback([args] { run_sweep_command(*args); });
}

}  // namespace mlpx::cli
