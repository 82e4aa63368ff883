// The subcommands of the mlpx binary. Each add_*_command registers one on the app with a
// callback that runs it; failures are exceptions (mlpx::Error), which main() turns into one
// line "error: ..." and exit status 1 (2 for a wrong command line).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "mlpx/config.h"

namespace mlpx::cli {
// Thrown by a command that ends on purpose with a status other than 0 or 1 after saying why
// (mlpx train stopped by a preemption signal: 128 + the signal's number); main() returns it.
struct ExitStatus {
  int code = 0;
};

// The config of a train or bench run: the file `path`, else the built-in Fashion-MNIST recipe
// (configs/fashion-mnist.json), switched to the synthetic set with a note on stderr when
// Fashion-MNIST's files are missing. `doing` ("training") words the note.
Config config_or_recipe(const std::string& path, const std::string& doing);

void add_train_command(CLI::App& app);    // mlpx train
void add_eval_command(CLI::App& app);     // mlpx eval
void add_predict_command(CLI::App& app);  // mlpx predict
void add_export_command(CLI::App& app);   // mlpx export (ONNX)
void add_bench_command(CLI::App& app);    // mlpx bench
void add_config_command(CLI::App& app);   // mlpx config
void add_sweep_command(CLI::App& app);    // mlpx sweep
// mlpx init-study and mlpx plot (pictures through gnuplot, see gnuplot.h)
void add_init_study_command(CLI::App& app);
void add_plot_command(CLI::App& app);
}  // namespace mlpx::cli
