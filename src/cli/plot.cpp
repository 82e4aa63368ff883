// mlpx plot: loss and accuracy (regression: R^2) curves (train solid, validation dashed, learning
// rate on a second axis) of one or more training logs written by `mlpx train` (JSON lines), drawn
// by gnuplot.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "gnuplot.h"
#include "mlpx/error.h"

namespace mlpx::cli {

namespace {

namespace fs = std::filesystem;

struct PlotArgs {
  std::vector<std::string> logs;
  std::string out, title = "mlpx training curves";
};

// The score is accuracy for classification logs, R^2 for regression logs.
struct EpochRow {
  double epoch, lr, train_loss, train_score, val_loss, val_score;  // val: NaN when null
};

struct TrainingLog {
  std::string path, name;
  bool regression = false;  // its epoch lines hold train_r2/val_r2 instead of the accuracies
  std::vector<EpochRow> rows;
};

// `text` cut to 40 characters, control and non-ASCII bytes as \xNN: safe in a one-line error.
std::string printable(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < 40; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return text.size() > 40 ? out + "..." : out;
}

const char* json_type(const nlohmann::json& j) { return j.type_name(); }

TrainingLog read_log(const std::string& path) {
  std::ifstream in(path);
  MLPX_CHECK(in && !fs::is_directory(path), IoError, path, ": cannot open the training log");
  TrainingLog log;
  log.path = path;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw IoError(where +
                    "expected a JSON object (a line of a log written by mlpx train), found '" +
                    printable(line) + "'");
    }
    MLPX_CHECK(j.is_object(), IoError, where, "expected a JSON object, found a ", json_type(j));
    if (!j.contains("epoch")) {
      MLPX_CHECK(j.contains("test_loss"), IoError, where,
                 "expected an epoch line (keys epoch, lr, train_loss, train_accuracy or "
                 "train_r2, val_loss, val_accuracy or val_r2) or the final test line (test_loss, "
                 "...), found neither");
      continue;  // the final test line: not a curve
    }
    const bool regression = j.contains("train_r2");
    MLPX_CHECK(log.rows.empty() || regression == log.regression, IoError, where, "expected ",
               log.regression ? "train_r2" : "train_accuracy", " like the lines above, found ",
               regression ? "train_r2" : "train_accuracy");
    log.regression = regression;
    const char* keys[] = {"epoch",      "lr",
                          "train_loss", regression ? "train_r2" : "train_accuracy",
                          "val_loss",   regression ? "val_r2" : "val_accuracy"};
    double v[6];
    for (int k = 0; k < 6; ++k) {
      MLPX_CHECK(j.contains(keys[k]), IoError, where, "epoch line without key '", keys[k], "'");
      const nlohmann::json& x = j[keys[k]];
      // Validation figures are null without a validation set; R^2 is null when undefined.
      const bool nullable = k >= 4 || (k == 3 && regression);
      MLPX_CHECK(x.is_number() || (nullable && x.is_null()), IoError, where, "key '", keys[k],
                 "': expected a number", nullable ? " or null" : "", ", found a ", json_type(x));
      v[k] = x.is_null() ? std::numeric_limits<double>::quiet_NaN() : x.get<double>();
    }
    log.rows.push_back({v[0], v[1], v[2], v[3], v[4], v[5]});
  }
  MLPX_CHECK(!log.rows.empty(), IoError, path,
             ": no epoch lines (expected a JSON-lines training log written by mlpx train)");
  return log;
}

// Legend names: base names, or the last two path parts where base names collide.
void name_logs(std::vector<TrainingLog>& logs) {
  for (TrainingLog& log : logs) log.name = fs::path(log.path).filename().string();
  for (TrainingLog& log : logs) {
    const auto same = std::count_if(logs.begin(), logs.end(), [&](const TrainingLog& o) {
      return fs::path(o.path).filename() == fs::path(log.path).filename();
    });
    if (same > 1) {
      const fs::path p = fs::path(log.path);
      const std::string parent = p.parent_path().filename().string();
      log.name = (parent.empty() ? std::string() : parent + "/") + p.filename().string();
    }
  }
}

std::string num(double v) {
  if (!std::isfinite(v)) return "?";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string log_data(const TrainingLog& log) {
  std::ostringstream d;
  d << "# " << log.path << "\n# epoch lr train_loss train_" << (log.regression ? "r2" : "accuracy")
    << " val_loss val_" << (log.regression ? "r2" : "accuracy") << "\n";
  for (const EpochRow& r : log.rows) {
    d << num(r.epoch) << " " << num(r.lr) << " " << num(r.train_loss) << " " << num(r.train_score)
      << " " << num(r.val_loss) << " " << num(r.val_score) << "\n";
  }
  return d.str();
}

std::string plot_script(const std::vector<TrainingLog>& logs, const std::string& title) {
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                 "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};
  double lr_min = std::numeric_limits<double>::infinity(), lr_max = 0, epoch_max = 0;
  double loss_min = std::numeric_limits<double>::infinity(), loss_max = 0;
  for (const TrainingLog& log : logs) {
    for (const EpochRow& r : log.rows) {
      if (r.lr > 0) lr_min = std::min(lr_min, r.lr);
      lr_max = std::max(lr_max, r.lr);
      epoch_max = std::max(epoch_max, r.epoch);
      for (double l : {r.train_loss, r.val_loss}) {
        if (std::isfinite(l)) {
          loss_min = std::min(loss_min, l);
          loss_max = std::max(loss_max, l);
        }
      }
    }
  }
  const bool lr_log = lr_min > 0 && lr_max / lr_min >= 10;
  const bool loss_log = loss_min > 0 && loss_max / loss_min >= 100;

  std::ostringstream g;
  const int rows_in_key = static_cast<int>(logs.size());
  g << gnuplot_png_terminal(1500, 620 + 22 * rows_in_key, 10, "curves.png")
    << "set datafile missing '?'\nset grid lc rgb '#dddddd'\nset xlabel 'epoch'\n"
    << "set key below maxcols 3 font ',9'\nset ytics nomirror\nset y2tics font ',8'\n"
    << "set y2label 'learning rate (dotted)'\nset format y2 '%.1e'\n";
  if (lr_log) g << "set logscale y2\n";
  if (lr_max > 0) {
    const double lo = lr_log ? lr_min / 1.5 : 0, hi = lr_log ? lr_max * 1.5 : lr_max * 1.15;
    g << "set y2range [" << num(lo) << ":" << num(hi) << "]\n";
  }
  g << "set xrange [" << (epoch_max <= 1 ? 0 : 1) << ":" << num(std::max(epoch_max, 2.0)) << "]\n";
  if (epoch_max <= 15) g << "set xtics 1\n";
  g << "set multiplot layout 1,2 title " << gnuplot_quote(title) << " font ',13'\n";
  const struct {
    const char* label;
    int train_col, val_col;
    bool log_scale;
  } panels[] = {{"loss", 3, 5, loss_log},
                {logs.front().regression ? "R^2" : "accuracy", 4, 6, false}};
  for (const auto& p : panels) {
    g << "set title '" << p.label << "'\nset ylabel '" << p.label << "'\n"
      << (p.log_scale ? "set logscale y\n" : "unset logscale y\n") << "plot ";
    for (size_t i = 0; i < logs.size(); ++i) {
      const std::string file = gnuplot_quote("log" + std::to_string(i) + ".dat");
      const std::string color = std::string("lc rgb '") + colors[i % 8] + "'";
      const bool has_val = std::any_of(logs[i].rows.begin(), logs[i].rows.end(),
                                       [](const EpochRow& r) { return std::isfinite(r.val_loss); });
      if (i > 0) g << ", \\\n     ";
      g << file << " using 1:" << p.train_col << " with linespoints " << color
        << " dt 1 lw 2 pt 7 ps 0.6 title " << gnuplot_quote(logs[i].name + " train");
      if (has_val) {
        g << ", \\\n     " << file << " using 1:" << p.val_col << " with linespoints " << color
          << " dt 2 lw 2 pt 6 ps 0.6 title " << gnuplot_quote(logs[i].name + " validation");
      }
      g << ", \\\n     " << file << " using 1:2 axes x1y2 with lines " << color
        << " dt 3 lw 1 title " << gnuplot_quote(logs[i].name + " lr");
    }
    g << "\n";
  }
  g << "unset multiplot\n";
  return g.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  MLPX_CHECK(out, IoError, path, ": cannot write");
}

void run_plot(const PlotArgs& args) {
  std::vector<TrainingLog> logs;
  for (const std::string& path : args.logs) {
    logs.push_back(read_log(path));
    MLPX_CHECK(logs.back().regression == logs.front().regression, ValueError, "plot: ", path,
               ": expected a ", logs.front().regression ? "regression" : "classification",
               " log like ", logs.front().path, " (one panel shows one score), found a ",
               logs.back().regression ? "regression" : "classification", " log");
  }
  name_logs(logs);

  const std::string gnuplot = find_gnuplot();
  MLPX_CHECK(!gnuplot.empty(), Error, "plot: gnuplot not found; install the Debian package ",
             kGnuplotPackage, " (apt-get install ", kGnuplotPackage, ")");
  const fs::path out = fs::absolute(args.out);
  MLPX_CHECK(fs::is_directory(out.parent_path()), IoError, args.out,
             ": cannot write the picture: folder '", out.parent_path().string(), "' is missing");

  TempFolder work("mlpx-plot");
  for (size_t i = 0; i < logs.size(); ++i) {
    write_text(work.path() + "/log" + std::to_string(i) + ".dat", log_data(logs[i]));
  }
  write_text(work.path() + "/plot.gp", plot_script(logs, args.title));
  run_gnuplot_to_png(gnuplot, "plot.gp", work.path(), out.string());
  std::cout << "wrote " << args.out << " (" << logs.size() << (logs.size() == 1 ? " log" : " logs")
            << ")" << std::endl;
}

}  // namespace

void add_plot_command(CLI::App& app) {
  auto args = std::make_shared<PlotArgs>();
  CLI::App* cmd = app.add_subcommand(
      "plot", "Draw loss and accuracy curves of training logs (mlpx train's --log) into a PNG");
  cmd->add_option("logs", args->logs, "Training logs (JSON lines); several overlay")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--out", args->out, "The PNG to write")->required();
  cmd->add_option("--title", args->title, "Title above the two panels");
  cmd->callback([args] { run_plot(*args); });
}

}  // namespace mlpx::cli
