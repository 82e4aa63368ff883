// The mlpx command line. Exit status 0 on success; on failure one line "error: ..." on
// stderr and status 1 (CLI11's own codes for bad command-line usage).
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"mlpx: train multilayer perceptrons on NVIDIA GPUs (and CPUs)", "mlpx"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mlpx " MLPX_VERSION);  // MLPX_VERSION: src/cli/CMakeLists.txt
  mlpx::cli::add_train_command(app);
  mlpx::cli::add_eval_command(app);
  mlpx::cli::add_predict_command(app);
  mlpx::cli::add_init_study_command(app);
  mlpx::cli::add_plot_command(app);
  mlpx::cli::add_bench_command(app);
  try {
    app.parse(argc, argv);  // runs the chosen subcommand's callback
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
