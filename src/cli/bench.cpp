// mlpx bench: sweeps batch sizes (SGD .. mini-batch .. full-batch GD) and reports, per batch
// size, training-step throughput, the time of one epoch and the time to a test accuracy; a
// table, JSON lines (--json) and a gnuplot picture (--plot).
#include "tune/bench.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "gnuplot.h"
#include "mlpx/mlpx.h"
#include "options.h"

namespace mlpx::cli {

namespace {

std::string fixed(double v, int precision) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", precision, v);
  return buf;
}

// The human-readable table: a header and one line per batch size.
std::string table_header(bool regression) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%-8s %10s %13s %12s %10s %14s %9s", "device", "batch",
                "samples/s", "updates/s", "epoch s", "to target s", regression ? "r2" : "accuracy");
  return buf;
}

std::string table_line(const BenchRow& row) {
  std::string target = "-";
  if (row.target_accuracy > 0) {
    target = row.reached ? fixed(row.time_to_target_s, 2) : "not reached";
  }
  char buf[200];
  std::snprintf(buf, sizeof(buf), "%-8s %10lld %13s %12s %10s %14s %9s", row.device.c_str(),
                static_cast<long long>(row.batch_size), fixed(row.samples_per_s, 0).c_str(),
                fixed(row.updates_per_s, 1).c_str(),
                ((row.epoch_measured ? "" : "~") + fixed(row.epoch_s, 3)).c_str(), target.c_str(),
                fixed(row.final_accuracy, 4).c_str());
  return buf;
}

struct BenchArgs {
  std::string config, device, batch_sizes = "1,8,32,128,512,2048,8192,full", plot;
  double target = 0.85, max_seconds = 60.0, seconds = 1.0;
  int64_t warmup = 3;
  int64_t count_steps = 3;
  std::optional<uint64_t> seed;
  bool json = false;
  bool count_only = false;
  bool count_detail = false;
};

// The counting pass's figures under a row of the table (the JSON row carries them as keys).
std::string counters_line(const BenchRow& row) {
  std::string line = "  per step: " + std::to_string(row.kernels_per_step) + " kernels, " +
                     std::to_string(row.host_syncs_per_step) + " host waits (" +
                     std::to_string(row.host_syncs_per_epoch) + " in the counting epoch)";
  if (row.device_work_counted) {
    line += ", " + fixed(row.device_bytes_per_step / 1e6, 3) + " MB, " +
            fixed(row.gemm_flops_per_step / 1e9, 3) + " GEMM GFLOP; H200 model " +
            fixed(row.projected_h200_us, 1) + " us (a model, not a measurement)";
  }
  return line;
}

// Two log-log panels: samples/s (and updates/s) and the training time to the target, against
// the batch size; one panel when the target run was skipped. Drawn through gnuplot.h.
void write_plot(const std::vector<BenchRow>& rows, const std::string& png) {
  const std::string gnuplot = find_gnuplot();
  MLPX_CHECK(!gnuplot.empty(), IoError,
             "--plot: gnuplot was not found; install it (Debian package ", kGnuplotPackage, ")");
  TempFolder tmp("mlpx-bench-plot");
  {
    std::ofstream d(tmp.path() + "/sweep.dat");
    MLPX_CHECK(d, IoError, tmp.path(), "/sweep.dat: cannot write the plot's data");
    d << "# batch samples_per_s updates_per_s time_to_target_s\n";
    for (const BenchRow& r : rows) {
      d << r.batch_size << ' ' << r.samples_per_s << ' ' << r.updates_per_s << ' '
        << (std::isfinite(r.time_to_target_s) ? std::to_string(r.time_to_target_s) : "NaN") << '\n';
    }
  }
  const bool any_target = !rows.empty() && rows.front().target_accuracy > 0;
  const std::string device = rows.empty() ? "" : rows.front().device;
  std::ostringstream g;
  g << gnuplot_png_terminal(any_target ? 1200 : 700, 500, 10) << "set datafile missing 'NaN'\n"
    << "set logscale xy\nset grid xtics ytics mxtics mytics\nset key top left\n"
    << "set xlabel 'batch size (largest = full batch)'\n";
  if (!rows.empty()) {
    // The same x range in both panels, a little wider than the batch sizes.
    int64_t lo = rows.front().batch_size, hi = lo;
    for (const BenchRow& r : rows) lo = std::min(lo, r.batch_size), hi = std::max(hi, r.batch_size);
    g << "set xrange [" << lo / 2.0 << ":" << hi * 2.0 << "]\n";
  }
  if (any_target) {
    g << "set multiplot layout 1,2 title " << gnuplot_quote("mlpx bench on " + device) << "\n";
  }
  g << "set title 'training throughput'\nset ylabel 'per second'\n"
    << "plot 'sweep.dat' using 1:2 with linespoints lw 2 pt 7 title 'samples/s', "
    << "'sweep.dat' using 1:3 with linespoints lw 2 pt 5 title 'updates/s'\n";
  if (any_target) {
    char title[96];
    std::snprintf(title, sizeof(title), "time to test accuracy %.3g (missing: not reached)",
                  rows.front().target_accuracy);
    g << "set title " << gnuplot_quote(title) << "\n"
      << "set ylabel 'seconds of training'\nunset key\n"
      << "plot 'sweep.dat' using 1:4 with linespoints lw 2 pt 7 lc 3\n"
      << "unset multiplot\n";
  }
  {
    std::ofstream script(tmp.path() + "/sweep.gp");
    script << g.str();
  }
  run_gnuplot_to_png(gnuplot, "sweep.gp", tmp.path(), png);
}

void run_bench(const BenchArgs& args) {
  Config config = config_or_recipe(args.config, "benchmarking");
  if (!args.device.empty()) config.device = args.device;
  if (args.seed) config.seed = *args.seed;
  config.validate();

  BenchOptions options;
  options.batch_sizes = parse_batch_sizes(args.batch_sizes);
  options.target_accuracy = args.target;
  options.max_seconds = args.max_seconds;
  options.throughput_seconds = args.seconds;
  options.warmup_steps = args.warmup;
  options.count_steps = args.count_steps;
  options.count_only = args.count_only;
  bool header_printed = args.json;
  options.on_row = [&](const BenchRow& row) {
    // The first row tells whether the score is accuracy or R^2.
    if (!header_printed && row.precision != "fp32") {
      std::cout << "precision " << row.precision << ": GEMMs through " << row.gemm_engine
                << std::endl;
    }
    if (!header_printed) std::cout << table_header(row.regression) << std::endl;
    header_printed = true;
    std::cout << (args.json ? bench_row_json(row) : table_line(row)) << std::endl;
    if (!args.json && row.counted) std::cout << counters_line(row) << std::endl;
    if (args.count_detail) {
      // One line per piece of the counted step: bytes read + written, FLOPs, what it is.
      for (const DeviceWork& w : row.step_work) {
        std::cout << "  work " << fixed((w.bytes_read + w.bytes_written) / 1e6, 3) << " MB "
                  << fixed(w.flops / 1e9, 3) << " GFLOP " << w.name << std::endl;
      }
    }
  };
  const std::vector<BenchRow> rows = run_batch_sweep(config, options);
  if (!args.plot.empty()) {
    write_plot(rows, args.plot);
    if (!args.json) std::cout << "plot: " << args.plot << std::endl;
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Sweep batch sizes (SGD .. full-batch GD): throughput and time to an accuracy");
  cmd->add_option("--config", args->config,
                  "JSON config file (default: configs/fashion-mnist.json, built in)")
      ->check(existing_file());
  cmd->add_option("--device", args->device, "auto, cpu, cuda or cuda:N")->check(device_name());
  cmd->add_option("--batch-sizes", args->batch_sizes,
                  "Comma-separated batch sizes; full = the whole training set (GD)")
      ->capture_default_str();
  cmd->add_option("--target", args->target, "Test accuracy to reach; 0 skips the time-to-target")
      ->check(number_in(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--max-seconds", args->max_seconds,
                  "Cap on each batch size's training time to the target (and its one-epoch run)")
      ->check(number_at_least(0.0, true))
      ->capture_default_str();
  cmd->add_option("--seconds", args->seconds,
                  "Time each batch size's throughput measurement aims at (after warm-up)")
      ->check(number_at_least(0.0, true))
      ->capture_default_str();
  cmd->add_option("--warmup", args->warmup, "Untimed steps before the throughput measurement")
      ->check(integer_at_least(0))
      ->capture_default_str();
  cmd->add_option("--count-steps", args->count_steps,
                  "On a CUDA device: steps of the counting pass (kernels, host waits, and on the "
                  "simulator bytes, FLOPs and the H200 model per step); 0 skips it")
      ->check(integer_at_least(0))
      ->capture_default_str();
  cmd->add_flag("--count-only", args->count_only,
                "Run only the counting pass (no throughput, target or epoch timing)");
  cmd->add_flag("--count-detail", args->count_detail,
                "With the simulator's counts: one line per piece of the counted step");
  cmd->add_option("--seed", args->seed, "Seed of the weights and shuffles");
  cmd->add_flag("--json", args->json, "One JSON object per batch size instead of the table");
  cmd->add_option("--plot", args->plot, "Draw throughput and time-to-target to this PNG file");
  cmd->callback([args] { run_bench(*args); });
}

}  // namespace mlpx::cli
