// mlpx config: the configuration without training. --defaults prints every key with its
// default (a starting point to edit); --check FILE parses and validates FILE the way
// `mlpx train --config FILE` would, and prints the config it resolves to.
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "mlpx/mlpx.h"

namespace mlpx::cli {

namespace {

struct ConfigArgs {
  bool defaults = false;
  std::string check;
};

void run_config(const ConfigArgs& args) {
  // Config::load throws ValueError/IoError naming the file and the key: main() prints it.
  const Config config = args.check.empty() ? Config() : Config::load(args.check);
  std::cout << config.to_json() << std::endl;
  if (!args.check.empty()) std::cerr << args.check << ": ok" << std::endl;
}

}  // namespace

void add_config_command(CLI::App& app) {
  auto args = std::make_shared<ConfigArgs>();
  CLI::App* cmd = app.add_subcommand("config", "Print the default config, or check a config file");
  auto* defaults =
      cmd->add_flag("--defaults", args->defaults, "Print every key with its default value");
  auto* check =
      cmd->add_option("--check", args->check,
                      "Validate this config file and print it with every default filled in")
          ->check(CLI::ExistingFile);
  defaults->excludes(check);
  cmd->require_option(1);
  cmd->callback([args] { run_config(*args); });
}

}  // namespace mlpx::cli
