// mlpx config: the configuration without training. --defaults prints every key with its
// default (a starting point to edit); --check FILE parses and validates FILE the way
// `mlpx train --config FILE` would, and prints the config it resolves to; --keys lists every
// key with its type, default, range and what it is for (mlpx::config_fields()).
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "mlpx/mlpx.h"
#include "options.h"

namespace mlpx::cli {

namespace {

struct ConfigArgs {
  bool defaults = false;
  bool keys = false;
  std::string check;
};

// One key a line: path, type, default, then what it is for, its range and "sweep" when a
// sweep may search it; the first three columns aligned.
void print_keys() {
  const std::vector<ConfigField> fields = config_fields();
  size_t path_width = 0, type_width = 0, default_width = 0;
  for (const ConfigField& f : fields) {
    path_width = std::max(path_width, f.path.size());
    type_width = std::max(type_width, f.type.size());
    default_width = std::max(default_width, std::min<size_t>(f.default_json.size(), 24));
  }
  for (const ConfigField& f : fields) {
    // A long default (the layers) is shown in full, past its column.
    std::string line = f.path + std::string(path_width + 2 - f.path.size(), ' ') + f.type +
                       std::string(type_width + 2 - f.type.size(), ' ') + f.default_json;
    line += std::string(
        f.default_json.size() < default_width + 2 ? default_width + 2 - f.default_json.size() : 2,
        ' ');
    line += f.help;
    if (!f.range.empty()) line += " (" + f.range + ")";
    if (f.sweepable) line += " [sweep]";
    std::cout << line << "\n";
  }
  std::cout << std::flush;
}

void run_config(const ConfigArgs& args) {
  if (args.keys) {
    print_keys();
    return;
  }
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
          ->check(existing_file());
  auto* keys = cmd->add_flag("--keys", args->keys,
                             "List every key: type, default, range, what it is for, and whether "
                             "a sweep may search it");
  defaults->excludes(check);
  keys->excludes(defaults);
  keys->excludes(check);
  cmd->require_option(1);
  cmd->callback([args] { run_config(*args); });
}

}  // namespace mlpx::cli
