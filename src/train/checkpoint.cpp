#include "mlpx/checkpoint.h"

#include <map>
#include <set>

#include "mlpx/error.h"
#include "mlpx/safetensors.h"

namespace mlpx {

namespace {

constexpr const char* kFormat = "mlpx-checkpoint-1";

// The model's tensors in checkpoint order, named `prefix` + the model's parameter names, as
// views of a CPU copy of `flat` (params or an optimizer state buffer).
std::vector<std::pair<std::string, Tensor>> model_tensors(const Sequential& model,
                                                          const Tensor& flat,
                                                          const std::string& prefix) {
  auto views = model.named_views(flat.to(Device::cpu()));
  for (auto& [name, view] : views) name = prefix + name;
  return views;
}

int64_t parse_counter(const std::map<std::string, std::string>& metadata, const std::string& key,
                      const std::string& path) {
  auto it = metadata.find(key);
  MLPX_CHECK(it != metadata.end(), IoError, path, ": expected __metadata__.", key,
             " in an mlpx checkpoint, found none");
  try {
    size_t used = 0;
    const long long value = std::stoll(it->second, &used);
    if (used == it->second.size() && value >= 0) return value;
  } catch (const std::exception&) {
  }
  throw IoError(path + ": __metadata__." + key + ": expected a count >= 0, found '" + it->second +
                "'");
}

}  // namespace

void save_checkpoint(const std::string& path, const Sequential& model, const Optimizer* optimizer,
                     const Config& config, const TrainingProgress& progress,
                     const Standardization& standardization) {
  MLPX_CHECK(model.dtype() == DType::kFloat32, ShapeError,
             "save_checkpoint: expected a float32 model, found ", dtype_name(model.dtype()));
  auto tensors = model_tensors(model, model.params(), "");
  if (optimizer != nullptr) {
    for (const auto& [name, buffer] : optimizer->state()) {
      for (auto& entry : model_tensors(model, buffer, "optimizer." + name + ".")) {
        tensors.push_back(std::move(entry));
      }
    }
  }
  if (standardization.defined()) {
    tensors.emplace_back("input.shift", standardization.shift.to(Device::cpu()));
    tensors.emplace_back("input.scale", standardization.scale.to(Device::cpu()));
  }
  const std::map<std::string, std::string> metadata = {
      {"format", kFormat},
      {"config", config.to_json()},
      {"inputs", std::to_string(model.inputs())},
      {"epoch", std::to_string(progress.epoch)},
      {"step", std::to_string(progress.step)},
      // Philox is counter-based: its whole state is the seed plus the epoch counter above.
      {"generator", "philox4x32-10"},
      {"seed", std::to_string(config.seed)},
      {"optimizer", optimizer ? optimizer_name(optimizer->config().type) : ""},
  };
  save_safetensors(path, tensors, metadata);
}

Checkpoint load_checkpoint(const std::string& path) {
  const SafetensorsFile file = load_safetensors(path);
  auto format = file.metadata.find("format");
  MLPX_CHECK(format != file.metadata.end() && format->second == kFormat, IoError, path,
             ": expected __metadata__.format '", kFormat, "', found ",
             format == file.metadata.end() ? "none" : "'" + format->second + "'");
  auto config_text = file.metadata.find("config");
  MLPX_CHECK(config_text != file.metadata.end(), IoError, path,
             ": expected __metadata__.config, found none");
  Config config;
  try {
    config = Config::from_json(config_text->second);
  } catch (const ValueError& e) {
    throw IoError(path + ": __metadata__.config: " + e.what());
  }
  const int64_t inputs = parse_counter(file.metadata, "inputs", path);
  MLPX_CHECK(inputs > 0, IoError, path, ": __metadata__.inputs: expected > 0, found ", inputs);
  TrainingProgress progress{parse_counter(file.metadata, "epoch", path),
                            parse_counter(file.metadata, "step", path)};

  // The metadata's sizes are claims: check them against the tensors the file really holds
  // before allocating a model of that size.
  const std::vector<Parameter> layout = Sequential::parameter_layout(inputs, config.model.layers);
  for (const Parameter& p : layout) {
    MLPX_CHECK(file.contains(p.name), IoError, path, ": expected tensor '", p.name,
               "', found none");
    MLPX_CHECK(file.get(p.name).shape() == p.shape, IoError, path, ": '", p.name, "': expected ",
               shape_str(p.shape), " from the config in __metadata__, found ",
               shape_str(file.get(p.name).shape()));
  }
  Sequential model(inputs, config.model.resolved_layers());

  // Every tensor the model needs must be there with its exact shape and dtype; every other
  // name must be optimizer state of the same layout.
  std::set<std::string> expected;
  auto take = [&](const std::string& name, const Tensor& like) -> const Tensor& {
    MLPX_CHECK(file.contains(name), IoError, path, ": expected tensor '", name, "', found none");
    const Tensor& t = file.get(name);
    MLPX_CHECK(t.shape() == like.shape() && t.dtype() == DType::kFloat32, IoError, path, ": '",
               name, "': expected ", shape_str(like.shape()), " float32, found ", t.describe());
    expected.insert(name);
    return t;
  };
  // Fills a flat buffer of the model's layout from the tensors `prefix` + parameter name.
  auto load_flat = [&](Tensor& flat, const std::string& prefix) {
    for (auto& [name, view] : model.named_views(flat)) view.copy_from(take(prefix + name, view));
  };
  load_flat(model.params(), "");
  Standardization standardization;
  if (file.contains("input.shift") || file.contains("input.scale")) {
    const Tensor like({inputs});
    standardization.shift = take("input.shift", like).clone();
    standardization.scale = take("input.scale", like).clone();
  }
  std::set<std::string> state_names;
  for (const auto& [name, tensor] : file.tensors) {
    if (expected.count(name)) continue;
    const std::string prefix = "optimizer.";
    const size_t dot = name.find('.', prefix.size());
    MLPX_CHECK(name.rfind(prefix, 0) == 0 && dot != std::string::npos, IoError, path,
               ": unexpected tensor '", name, "' in an mlpx checkpoint");
    state_names.insert(name.substr(prefix.size(), dot - prefix.size()));
  }
  std::vector<std::pair<std::string, Tensor>> optimizer_state;
  for (const std::string& state : state_names) {
    Tensor flat = Tensor::zeros({model.num_params()});
    load_flat(flat, "optimizer." + state + ".");
    optimizer_state.emplace_back(state, flat);
  }
  for (const auto& [name, tensor] : file.tensors) {
    MLPX_CHECK(expected.count(name), IoError, path, ": unexpected tensor '", name,
               "' in an mlpx checkpoint of this model");
  }
  return Checkpoint{config, progress, std::move(model), std::move(optimizer_state),
                    standardization};
}

}  // namespace mlpx
