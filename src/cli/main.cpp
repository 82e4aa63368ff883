// The mlpx command line. Exit status 0 on success; on failure one line "error: ..." on
// stderr and status 1, or 2 when the command line itself is wrong (an unknown option, a
// missing value or subcommand): kExitUsage. mlpx train stopped by SIGTERM or SIGUSR1 exits
// with 128 + the signal's number, after saving where it stopped.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <exception>
#include <iostream>
#include <string>

#include "commands.h"

namespace {
constexpr int kExitUsage = 2;  // the command line is wrong
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mlpx: train multilayer perceptrons on NVIDIA GPUs (and CPUs)", "mlpx"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mlpx " MLPX_VERSION);  // MLPX_VERSION: src/cli/CMakeLists.txt
  mlpx::cli::add_train_command(app);
  mlpx::cli::add_eval_command(app);
  mlpx::cli::add_predict_command(app);
  mlpx::cli::add_export_command(app);
  mlpx::cli::add_init_study_command(app);
  mlpx::cli::add_plot_command(app);
  mlpx::cli::add_bench_command(app);
  mlpx::cli::add_config_command(app);
  mlpx::cli::add_sweep_command(app);
  try {
    app.parse(argc, argv);  // runs the chosen subcommand's callback
  } catch (const CLI::ParseError& e) {
    // --help and --version end parsing with an "error" whose exit code is 0: print them.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    std::cerr << "error: " << what << " (mlpx --help lists the commands, mlpx COMMAND --help "
              << "their options)" << std::endl;
    return kExitUsage;
  } catch (const mlpx::cli::ExitStatus& status) {
    return status.code;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
