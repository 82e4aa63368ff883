// mlpx init-study: how weight initialisation shapes the activations of a deep sigmoid / tanh /
// relu stack (see mlpx/init_study.h). Writes DIR/init_study.csv, and DIR/init_study.png (one
// row of per-layer histograms per init/activation pair) through gnuplot.
#include "tune/init_study.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "gnuplot.h"
#include "mlpx/error.h"
#include "options.h"

namespace mlpx::cli {

namespace {

namespace fs = std::filesystem;

struct InitStudyArgs {
  std::string out, device = "cpu";
  std::vector<std::string> inits, activations;
  int depth = 5;
  int64_t width = 100, samples = 1000, features = 100;
  uint64_t seed = 0;
  bool quiet = false;
};

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  MLPX_CHECK(out, IoError, path, ": cannot write");
}

// One block per (pair, layer), in the order of `stats`, separated by two blank lines so that
// gnuplot's `index k` picks block k: bin centre and the fraction of values in the bin.
std::string histogram_data(const std::vector<LayerStats>& stats) {
  std::ostringstream d;
  d << "# init_study histograms: one block per (init, activation, layer) as in init_study.csv;\n"
    << "# columns: bin centre, fraction of all values in the bin\n";
  for (const LayerStats& s : stats) {
    d << "# " << s.init << " " << activation_name(s.activation) << " layer " << s.layer << "\n";
    const double w = (s.hist_hi - s.hist_lo) / s.histogram.size();
    for (size_t b = 0; b < s.histogram.size(); ++b) {
      d << fmt("%.6g", s.hist_lo + (b + 0.5) * w) << " " << fmt("%.6g", s.histogram[b]) << "\n";
    }
    d << "\n\n";
  }
  return d.str();
}

std::string panel_note(const LayerStats& s) {
  std::string note = "std " + fmt("%.3g", s.std);
  if (s.activation == Activation::kRelu) {
    note += "  zeros " + fmt("%.0f%%", 100 * s.frac_near_0);
    if (s.above > 0) note += "  >" + fmt("%g", s.hist_hi) + ": " + fmt("%.0f%%", 100 * s.above);
  } else {
    note += std::string(s.activation == Activation::kTanh ? "  near -1/+1 " : "  near 0/1 ") +
            fmt("%.0f%%", 100 * (s.frac_near_0 + s.frac_near_1));
  }
  return note + "\\n|dW| " + fmt("%.2g", s.grad_rms);
}

// The grid: one row per pair, one column per layer; x shared per activation, y shared per row.
std::string histogram_script(const std::vector<LayerStats>& stats, int depth,
                             const std::string& data_file) {
  const int rows = static_cast<int>(stats.size()) / depth;
  const int width = std::max(900, 300 * depth), height = std::max(400, 200 * rows + 60);
  std::ostringstream g;
  g << "# mlpx init-study: per-layer activation histograms. Redraw with\n"
    << "#   gnuplot init_study.gp   (in this folder; writes init_study.png)\n"
    << gnuplot_png_terminal(width, height, 9, "init_study.png")
    << "set datafile commentschars '#'\n"
    << "unset key\nset style fill solid 0.85 noborder\nset boxwidth 0.9 relative\n"
    << "set tics scale 0.5 front\nset ytics format '%g%%' font ',8'\n"
    << "set xtics font ',8'\nset grid ytics lc rgb '#dddddd'\n"
    << "set multiplot layout " << rows << "," << depth
    << " title 'Activations per hidden layer: fraction of values per bin (relu: zeros left "
       "out). Rows: init + activation; columns: layers 1.."
    << depth << "' font ',12' margins 0.04,0.99,0.02," << fmt("%.4f", 1.0 - 45.0 / height)
    << " spacing 0.035," << fmt("%.4f", 45.0 / height) << "\n";
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c"};  // sigmoid, tanh, relu
  for (int r = 0; r < rows; ++r) {
    double ymax = 0;
    for (int l = 0; l < depth; ++l) {
      for (double f : stats[r * depth + l].histogram) ymax = std::max(ymax, f);
    }
    ymax = std::max(ymax * 100 * 1.35, 1.0);
    for (int l = 0; l < depth; ++l) {
      const size_t k = r * depth + l;
      const LayerStats& s = stats[k];
      const int color = s.activation == Activation::kSigmoid ? 0
                        : s.activation == Activation::kTanh  ? 1
                                                             : 2;
      g << "set title "
        << gnuplot_quote(init_choice_label(s.init) + " + " + activation_name(s.activation) +
                         ", layer " + std::to_string(s.layer))
        << " offset 0,-0.6\n"
        << "set xrange [" << s.hist_lo << ":" << s.hist_hi << "]\nset yrange [0:" << ymax
        << "]\nset label 1 \"" << panel_note(s)
        << "\" at graph 0.97, graph 0.92 right front font ',8'\n"
        << "plot " << gnuplot_quote(data_file) << " index " << k
        << " using 1:($2*100) with boxes lc rgb '" << colors[color] << "'\n";
    }
  }
  g << "unset multiplot\n";
  return g.str();
}

void print_table(std::ostream& out, const std::vector<LayerStats>& stats) {
  out << "init            activation  layer       mean        std  low_end  high_end   grad_rms\n";
  for (const LayerStats& s : stats) {
    char line[160];
    std::snprintf(line, sizeof line, "%-15s %-10s  %5d  %9.4g  %9.4g   %5.1f%%    %5.1f%%  %9.3g\n",
                  s.init.c_str(), activation_name(s.activation).c_str(), s.layer, s.mean, s.std,
                  100 * s.frac_near_0, 100 * s.frac_near_1, s.grad_rms);
    out << line;
  }
  out << "low_end, high_end: values within 0.02 of 0 and 1 (tanh: of -1 and +1; relu low_end: "
         "exact zeros)\ngrad_rms: RMS of the layer's weight gradient after one backward pass of "
         "mse against a standard normal target\n";
}

void run_init_study_command(const InitStudyArgs& args) {
  InitStudyOptions options;
  if (!args.inits.empty()) {
    options.inits.clear();
    for (const std::string& name : args.inits) options.inits.push_back(parse_init_choice(name));
  }
  if (!args.activations.empty()) {
    options.activations.clear();
    for (const std::string& name : args.activations) {
      options.activations.push_back(parse_activation(name));
    }
  }
  options.depth = args.depth;
  options.width = args.width;
  options.samples = args.samples;
  options.features = args.features;
  options.seed = args.seed;
  options.device = Device::parse(args.device);

  const std::vector<LayerStats> stats = run_init_study(options);
  std::error_code ec;
  fs::create_directories(args.out, ec);
  MLPX_CHECK(!ec && fs::is_directory(args.out), IoError, args.out,
             ": cannot create the output folder", ec ? ": " + ec.message() : std::string());

  const std::string dir = fs::path(args.out).string();
  const std::string csv = (fs::path(dir) / "init_study.csv").string();
  write_init_study_csv(csv, stats);
  write_text((fs::path(dir) / "init_study.dat").string(), histogram_data(stats));
  const std::string script = (fs::path(dir) / "init_study.gp").string();
  write_text(script, histogram_script(stats, options.depth, "init_study.dat"));
  if (!args.quiet) {
    std::cout << "init study: " << options.samples << " standard normal inputs of "
              << options.features << " features through " << options.depth << " layers of "
              << options.width << " units (seed " << options.seed << ", " << options.device.str()
              << ")\n";
    print_table(std::cout, stats);
    std::cout << "wrote " << csv << std::endl;
  }

  const std::string gnuplot = find_gnuplot();
  if (gnuplot.empty()) {
    std::cerr << "note: gnuplot not found; wrote init_study.csv (and the plot's data and script) "
                 "in "
              << dir << "; install " << kGnuplotPackage << " for the picture" << std::endl;
    return;
  }
  const std::string png = (fs::path(dir) / "init_study.png").string();
  run_gnuplot_to_png(gnuplot, "init_study.gp", dir, png);
  if (!args.quiet) std::cout << "wrote " << png << std::endl;
}

}  // namespace

void add_init_study_command(CLI::App& app) {
  auto args = std::make_shared<InitStudyArgs>();
  CLI::App* cmd = app.add_subcommand(
      "init-study",
      "Show how weight init shapes activations and gradients layer by layer (CSV + PNG)");
  cmd->add_option("--out", args->out, "Output folder for init_study.csv and init_study.png")
      ->required();
  cmd->add_option("--inits", args->inits,
                  "Comma list: normal_std<S> (e.g. normal_std1, normal_std0.01), lecun_normal "
                  "(the lecture's Xavier), lecun_uniform, xavier_normal (Glorot), "
                  "xavier_uniform, he_normal, he_uniform, torch_default")
      ->delimiter(',');
  cmd->add_option("--activations", args->activations, "Comma list of sigmoid, tanh, relu")
      ->delimiter(',');
  cmd->add_option("--depth", args->depth, "Hidden layers")->check(integer_at_least(1));
  cmd->add_option("--width", args->width, "Units per hidden layer")->check(integer_at_least(1));
  cmd->add_option("--samples", args->samples, "Input rows")->check(integer_at_least(1));
  cmd->add_option("--features", args->features, "Input columns")->check(integer_at_least(1));
  cmd->add_option("--seed", args->seed, "Seed of inputs, targets and weights");
  cmd->add_option("--device", args->device, "cpu (default), cuda, cuda:N or auto")
      ->check(device_name());
  cmd->add_flag("--quiet", args->quiet, "Print nothing but errors and notes");
  cmd->callback([args] { run_init_study_command(*args); });
}

}  // namespace mlpx::cli
