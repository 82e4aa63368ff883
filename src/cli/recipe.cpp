// The run's config when none is given: the shipped recipe, compiled in from
// configs/fashion-mnist.json (see CMakeLists.txt).
#include "recipe.h"

#include <iostream>

#include "commands.h"
#include "mlpx/dataset.h"

namespace mlpx::cli {

Config config_or_recipe(const std::string& path, const std::string& doing) {
  if (!path.empty()) return Config::load(path);
  Config config = Config::from_json(kFashionMnistRecipe);
  if (!fashion_mnist_available(config.data.dir)) {
    std::cerr << "note: Fashion-MNIST not found in " << config.data.dir
              << " (Debian package dataset-fashion-mnist); " << doing
              << " on the built-in synthetic data set instead\n";
    config.data.source = DataSource::kSynthetic;
  }
  return config;
}

}  // namespace mlpx::cli
