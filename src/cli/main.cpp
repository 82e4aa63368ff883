// The mlpx command line. Exit status 0 on success; on failure one line "error: ..." on
// stderr and status 1, or 2 when the command line itself is wrong (an unknown option, a
// missing value or subcommand): kExitUsage. mlpx train stopped by SIGTERM or SIGUSR1 exits
// with 128 + the signal's number, after saving where it stopped.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "openmp_wait_policy.h"
#include "options.h"

namespace {
constexpr int kExitUsage = 2;  // the command line is wrong

// The command that was parsed (the deepest subcommand given), else the app itself.
const CLI::App* parsed_command(const CLI::App& app) {
  for (const CLI::App* sub : app.get_subcommands()) return parsed_command(*sub);
  return &app;
}

// CLI11's message for a command line it refused, as one line: an unknown option with the
// nearest known one, a failed check as "--NAME: expected ..., found ...".
std::string usage_message(const CLI::App& app, const CLI::ParseError& error) {
  if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr) {
    const CLI::App* command = parsed_command(app);
    std::vector<std::string> known;
    for (const CLI::Option* option : command->get_options()) {
      for (const std::string& name : option->get_lnames()) known.push_back("--" + name);
    }
    return mlpx::cli::unexpected_arguments_message(command->remaining(), known);
  }
  std::string what = error.what();
  std::replace(what.begin(), what.end(), '\n', ' ');
  if (dynamic_cast<const CLI::ValidationError*>(&error) != nullptr) return what;
  return what + " (mlpx --help lists the commands, mlpx COMMAND --help their options)";
}
}  // namespace

int main(int argc, char** argv) {
  mlpx::cli::restart_with_passive_openmp_threads(argv);  // openmp_wait_policy.h: first of all
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
    std::cerr << "error: " << usage_message(app, e) << std::endl;
    return kExitUsage;
  } catch (const mlpx::cli::ExitStatus& status) {
    return status.code;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
