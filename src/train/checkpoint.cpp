#include "mlpx/checkpoint.h"

#include <cctype>
#include <functional>
#include <map>
#include <optional>
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

// What load_checkpoint would refuse in a checkpoint whose config is `config` (already
// validated: parsed back from its JSON), whose model takes `inputs` inputs, and whose parameter
// tensors have the shapes `shape_of` gives (nullopt: the file has no such tensor); "" when
// nothing. load_checkpoint builds the model from the config alone, so the config must describe
// the parameters. save_checkpoint asks the same before it writes anything.
std::string checkpoint_model_problem(
    const Config& config, int64_t inputs,
    const std::function<std::optional<Shape>(const std::string&)>& shape_of) {
  if (inputs <= 0) return "__metadata__.inputs: expected > 0, found " + std::to_string(inputs);
  std::vector<Parameter> layout;
  try {
    layout = Sequential::parameter_layout(inputs, config.model.layers);
  } catch (const Error& e) {
    return std::string("__metadata__.config: model.layers: ") + e.what();
  }
  for (const Parameter& p : layout) {
    const std::optional<Shape> found = shape_of(p.name);
    if (!found) return "expected tensor '" + p.name + "', found none";
    if (*found != p.shape) {
      return "'" + p.name + "': expected " + shape_str(p.shape) +
             " from the config in __metadata__, found " + shape_str(*found);
    }
  }
  return "";
}

}  // namespace

void save_checkpoint(const std::string& path, const Sequential& model, const Optimizer* optimizer,
                     const Config& config, const TrainingProgress& progress,
                     const Standardization& standardization) {
  save_checkpoint(path, model, optimizer ? optimizer->config().type : config.optimizer.type,
                  optimizer ? optimizer->state() : std::vector<std::pair<std::string, Tensor>>{},
                  config, progress, standardization);
}

void save_checkpoint(const std::string& path, const Sequential& model, OptimizerType optimizer,
                     const std::vector<std::pair<std::string, Tensor>>& optimizer_state,
                     const Config& config, const TrainingProgress& progress,
                     const Standardization& standardization) {
  MLPX_CHECK(model.dtype() == DType::kFloat32, ShapeError,
             "save_checkpoint: expected a float32 model, found ", dtype_name(model.dtype()));
  // Refuse to write what load_checkpoint would refuse (or rebuild as another model): it reads
  // the config back from its JSON and builds the model from that config alone.
  Config written;
  try {
    written = Config::from_json(config.to_json());
  } catch (const ValueError& e) {
    throw ValueError("save_checkpoint: " + path + ": the config would not load back: " + e.what());
  }
  const auto views = model.named_views(model.params());
  const std::string problem =
      checkpoint_model_problem(written, model.inputs(), [&](const std::string& name) {
        for (const auto& [view_name, view] : views) {
          if (view_name == name) return std::optional<Shape>(view.shape());
        }
        return std::optional<Shape>();
      });
  MLPX_CHECK(problem.empty(), ValueError, "save_checkpoint: ", path,
             ": the config does not describe this model (load_checkpoint would refuse the file: ",
             problem, "); pass the config the model was built from");
  // Same shapes, other activations: the file would load as another function.
  const auto config_layers = written.model.resolved_layers();
  const auto describe = [](const LayerSpec& layer) {
    return activation_name(layer.activation) + " (alpha " + std::to_string(layer.alpha.value()) +
           ")";
  };
  for (size_t i = 0; i < model.num_layers(); ++i) {
    const LayerSpec& built = model.layer(i);
    const LayerSpec& described = config_layers[i];
    MLPX_CHECK(built.activation == described.activation && built.alpha == described.alpha,
               ValueError, "save_checkpoint: ", path,
               ": the config does not describe this model (load_checkpoint would rebuild "
               "another one): model.layers[",
               i, "]: expected activation ", describe(built), " as the model has, found ",
               describe(described), "; pass the config the model was built from");
  }
  auto tensors = model_tensors(model, model.params(), "");
  // The batch norms' running statistics; num_batches_tracked as an integer, as torch keeps it.
  for (const auto& [name, view] : model.named_buffers()) {
    const Tensor cpu = view.to(Device::cpu());
    const std::string count_suffix = ".num_batches_tracked";
    if (name.size() > count_suffix.size() &&
        name.compare(name.size() - count_suffix.size(), count_suffix.size(), count_suffix) == 0) {
      const int32_t count = static_cast<int32_t>(cpu.to_vector<float>()[0]);
      tensors.emplace_back(name, Tensor::from_vector(std::vector<int32_t>{count}, {1}));
    } else {
      tensors.emplace_back(name, cpu);
    }
  }
  for (const auto& [name, buffer] : optimizer_state) {
    MLPX_CHECK(buffer.numel() == model.num_params(), ShapeError, "save_checkpoint: expected ",
               "optimizer state '", name, "' of ", model.num_params(), " elements, found ",
               buffer.describe());
    for (auto& entry : model_tensors(model, buffer, "optimizer." + name + ".")) {
      tensors.push_back(std::move(entry));
    }
  }
  if (standardization.defined()) {
    tensors.emplace_back("input.shift", standardization.shift.to(Device::cpu()));
    tensors.emplace_back("input.scale", standardization.scale.to(Device::cpu()));
  }
  if (progress.epoch_batch > 0) {
    MLPX_CHECK(static_cast<int64_t>(progress.batch_losses.size()) == progress.epoch_batch,
               ShapeError, "save_checkpoint: expected ", progress.epoch_batch,
               " batch losses of the epoch in progress, found ", progress.batch_losses.size());
    tensors.emplace_back("progress.batch_losses",
                         Tensor::from_vector(progress.batch_losses, {progress.epoch_batch}));
    // Bit for bit: the sum and the group's gradients go as tensors, not as text.
    tensors.emplace_back("progress.grad_norm_sum",
                         Tensor::from_vector(std::vector<double>{progress.grad_norm_sum}, {1}));
    if (!progress.layer_grad_norm_sums.empty()) {
      const auto layers = static_cast<int64_t>(progress.layer_grad_norm_sums.size());
      tensors.emplace_back("progress.layer_grad_norm_sums",
                           Tensor::from_vector(progress.layer_grad_norm_sums, {layers}));
    }
    if (progress.accumulated_grads.defined()) {
      MLPX_CHECK(progress.accumulated_grads.numel() == model.num_params(), ShapeError,
                 "save_checkpoint: expected accumulated gradients of ", model.num_params(),
                 " elements, found ", progress.accumulated_grads.describe());
      tensors.emplace_back("progress.accumulated_grads",
                           progress.accumulated_grads.to(Device::cpu()));
    }
  }
  std::map<std::string, std::string> metadata = {
      {"format", kFormat},
      {"config", config.to_json()},
      {"inputs", std::to_string(model.inputs())},
      {"epoch", std::to_string(progress.epoch)},
      {"step", std::to_string(progress.step)},
      // Philox is counter-based: its whole state is the seed plus the epoch counter above.
      {"generator", "philox4x32-10"},
      {"seed", std::to_string(config.seed)},
      {"optimizer", optimizer_state.empty() ? "" : optimizer_name(optimizer)},
  };
  if (progress.epoch_batch > 0) {
    // Written only mid-epoch: an epoch-end checkpoint stays as it always was.
    metadata["epoch_batch"] = std::to_string(progress.epoch_batch);
    metadata["epoch_correct"] = std::to_string(static_cast<int64_t>(progress.correct));
    metadata["epoch_skipped"] = std::to_string(progress.skipped);
  }
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
  TrainingProgress progress;
  progress.epoch = parse_counter(file.metadata, "epoch", path);
  progress.step = parse_counter(file.metadata, "step", path);
  if (file.metadata.count("epoch_batch") != 0) {
    progress.epoch_batch = parse_counter(file.metadata, "epoch_batch", path);
    progress.correct = static_cast<double>(parse_counter(file.metadata, "epoch_correct", path));
    progress.skipped = parse_counter(file.metadata, "epoch_skipped", path);
  }

  // The metadata's sizes are claims: check them against the tensors the file really holds
  // before allocating a model of that size.
  const std::string problem =
      checkpoint_model_problem(config, inputs, [&](const std::string& name) {
        return file.contains(name) ? std::optional<Shape>(file.get(name).shape()) : std::nullopt;
      });
  MLPX_CHECK(problem.empty(), IoError, path, ": ", problem);
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
  for (const Parameter& b : Sequential::buffer_layout(config.model.layers)) {
    Tensor view = model.buffers().flat_view(b.offset, b.shape);
    if (b.shape == Shape{1}) {
      MLPX_CHECK(file.contains(b.name), IoError, path, ": expected tensor '", b.name,
                 "', found none");
      const Tensor& t = file.get(b.name);
      MLPX_CHECK(t.shape() == b.shape && t.dtype() == DType::kInt32, IoError, path, ": '", b.name,
                 "': expected [1] int32, found ", t.describe());
      expected.insert(b.name);
      view.copy_from(Tensor::from_vector(
          std::vector<float>{static_cast<float>(t.to_vector<int32_t>()[0])}, {1}));
    } else {
      view.copy_from(take(b.name, view));
    }
  }
  Standardization standardization;
  if (file.contains("input.shift") || file.contains("input.scale")) {
    const Tensor like({inputs});
    standardization.shift = take("input.shift", like).clone();
    standardization.scale = take("input.scale", like).clone();
  }
  if (progress.epoch_batch > 0) {
    const std::string name = "progress.batch_losses";
    MLPX_CHECK(file.contains(name), IoError, path, ": expected tensor '", name,
               "' (__metadata__.epoch_batch is ", progress.epoch_batch, "), found none");
    const Tensor& losses = file.get(name);
    MLPX_CHECK(losses.shape() == Shape{progress.epoch_batch} && losses.dtype() == DType::kFloat64,
               IoError, path, ": '", name, "': expected [", progress.epoch_batch,
               "] float64, found ", losses.describe());
    progress.batch_losses = losses.to_vector<double>();
    expected.insert(name);
    // Written by this version onwards; an older mid-epoch checkpoint had no clipping.
    if (file.contains("progress.grad_norm_sum")) {
      const Tensor& sum = file.get("progress.grad_norm_sum");
      MLPX_CHECK(sum.shape() == Shape{1} && sum.dtype() == DType::kFloat64, IoError, path,
                 ": 'progress.grad_norm_sum': expected [1] float64, found ", sum.describe());
      progress.grad_norm_sum = sum.to_vector<double>()[0];
      expected.insert("progress.grad_norm_sum");
    }
    if (file.contains("progress.layer_grad_norm_sums")) {
      const Tensor& sums = file.get("progress.layer_grad_norm_sums");
      const auto layers = static_cast<int64_t>(model.num_layers());
      MLPX_CHECK(sums.shape() == Shape{layers} && sums.dtype() == DType::kFloat64, IoError, path,
                 ": 'progress.layer_grad_norm_sums': expected [", layers, "] float64, found ",
                 sums.describe());
      progress.layer_grad_norm_sums = sums.to_vector<double>();
      expected.insert("progress.layer_grad_norm_sums");
    }
    if (file.contains("progress.accumulated_grads")) {
      progress.accumulated_grads = take("progress.accumulated_grads", model.params()).clone();
    }
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

namespace {

// One Linear module's tensors in a weights file, by the module's index in its Sequential.
struct LinearTensors {
  const Tensor* weight = nullptr;
  const Tensor* bias = nullptr;
  std::string weight_name, bias_name;
};

// Splits "net.2.weight" into the prefix "net.", the index 2 and the field "weight"; false when
// the name is not <prefix><index>.<weight|bias> with a prefix empty or ending in '.'.
bool parse_linear_name(const std::string& name, std::string& prefix, int64_t& index,
                       std::string& field) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot == 0) return false;
  field = name.substr(dot + 1);
  if (field != "weight" && field != "bias") return false;
  size_t digits = dot;
  while (digits > 0 && std::isdigit(static_cast<unsigned char>(name[digits - 1]))) --digits;
  if (digits == dot || dot - digits > 9) return false;
  if (digits > 0 && name[digits - 1] != '.') return false;
  prefix = name.substr(0, digits);
  index = std::stoll(name.substr(digits, dot - digits));
  return true;
}

// `src` (float32 or float64, CPU) into `view` (float32, CPU).
void copy_converting(const Tensor& src, Tensor& view) {
  float* out = view.data<float>();
  if (src.dtype() == DType::kFloat64) {
    const double* in = src.data<double>();
    for (int64_t i = 0; i < src.numel(); ++i) out[i] = static_cast<float>(in[i]);
  } else {
    view.copy_from(src);
  }
}

}  // namespace

void load_named_tensors(Sequential& model,
                        const std::vector<std::pair<std::string, Tensor>>& tensors,
                        const std::string& source) {
  const std::vector<Parameter>& params = model.parameters();
  const auto buffers = model.named_buffers();
  // Slot k < params.size(): parameter k; then buffer k - params.size().
  std::vector<const Tensor*> found(params.size() + buffers.size(), nullptr);
  size_t buffers_found = 0;
  for (const auto& [name, tensor] : tensors) {
    size_t k = 0;
    while (k < params.size() && params[k].name != name) ++k;
    if (k == params.size()) {
      size_t b = 0;
      while (b < buffers.size() && buffers[b].first != name) ++b;
      MLPX_CHECK(b < buffers.size(), IoError, source, ": unexpected tensor '", name,
                 "'; expected the model's names (", params.front().name, ", ...",
                 buffers.empty() ? "" : ", its batch norms' running statistics", ")");
      k = params.size() + b;
    }
    MLPX_CHECK(found[k] == nullptr, IoError, source, ": '", name, "' given twice");
    const bool buffer = k >= params.size();
    const Shape& expected = buffer ? buffers[k - params.size()].second.shape() : params[k].shape;
    const bool count = buffer && name.size() > 20 &&
                       name.compare(name.size() - 20, 20, ".num_batches_tracked") == 0;
    if (count) {
      MLPX_CHECK(tensor.dtype() == DType::kInt32 && tensor.numel() == 1 && tensor.dim() <= 1,
                 IoError, source, ": '", name, "': expected int32 [1] or [], found ",
                 tensor.describe());
    } else {
      MLPX_CHECK((tensor.dtype() == DType::kFloat32 || tensor.dtype() == DType::kFloat64) &&
                     tensor.shape() == expected,
                 IoError, source, ": '", name, "': expected float32 or float64 ",
                 shape_str(expected), ", found ", tensor.describe());
    }
    found[k] = &tensor;
    if (buffer) ++buffers_found;
  }
  for (size_t k = 0; k < params.size(); ++k) {
    MLPX_CHECK(found[k] != nullptr, IoError, source, ": missing '", params[k].name, "'");
  }
  for (size_t b = 0; b < buffers.size() && buffers_found > 0; ++b) {
    MLPX_CHECK(found[params.size() + b] != nullptr, IoError, source, ": missing '",
               buffers[b].first, "' (the running statistics go all together or not at all)");
  }
  Tensor flat = model.params().to(Device::cpu()).clone();
  const auto views = model.named_views(flat);
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor view = views[k].second;
    copy_converting(*found[k], view);
  }
  if (buffers_found > 0) {
    Tensor buffer_flat = model.buffers().to(Device::cpu()).clone();
    int64_t offset = 0;  // the buffers lie one after another, in named_buffers()' order
    for (size_t b = 0; b < buffers.size(); ++b) {
      const Tensor& src = *found[params.size() + b];
      Tensor view = buffer_flat.flat_view(offset, buffers[b].second.shape());
      offset += buffers[b].second.numel();
      if (src.dtype() == DType::kInt32) {
        view.data<float>()[0] = static_cast<float>(src.data<int32_t>()[0]);
      } else {
        copy_converting(src, view);
      }
    }
    model.buffers().copy_from(buffer_flat);
  }
  model.params().copy_from(flat);
}

void load_weights(Sequential& model, const std::string& path) {
  const SafetensorsFile file = load_safetensors(path);
  const auto format = file.metadata.find("format");
  const bool mlpx_checkpoint = format != file.metadata.end() && format->second == kFormat;
  bool plain = true;  // every layer a Linear with a bias and no norm: torch's names work too
  for (size_t i = 0; i < model.num_layers(); ++i) {
    plain = plain && model.layer(i).bias && model.layer(i).norm == Norm::kNone;
  }
  if (!plain) {
    std::vector<std::pair<std::string, Tensor>> named;
    for (const auto& [name, tensor] : file.tensors) {
      if (mlpx_checkpoint && (name.rfind("optimizer.", 0) == 0 || name.rfind("input.", 0) == 0 ||
                              name.rfind("progress.", 0) == 0)) {
        continue;
      }
      named.emplace_back(name, tensor);
    }
    load_named_tensors(model, named, path);
    return;
  }
  std::map<int64_t, LinearTensors> modules;
  std::string prefix;
  bool first = true;
  for (const auto& [name, tensor] : file.tensors) {
    // An mlpx checkpoint's optimizer state and input statistics are not weights.
    if (mlpx_checkpoint && (name.rfind("optimizer.", 0) == 0 || name.rfind("input.", 0) == 0 ||
                            name.rfind("progress.", 0) == 0)) {
      continue;
    }
    std::string this_prefix, field;
    int64_t index = 0;
    MLPX_CHECK(parse_linear_name(name, this_prefix, index, field), IoError, path,
               ": expected Linear layers' tensors named as nn.Sequential's state_dict() names "
               "them ('0.weight', '0.bias', '2.weight', ...) or as mlpx does "
               "('layers.0.weight'), found '",
               name, "'");
    MLPX_CHECK(first || this_prefix == prefix, IoError, path,
               ": expected every tensor under one prefix ('", prefix, "'), found '", name, "'");
    first = false;
    prefix = this_prefix;
    MLPX_CHECK(tensor.dtype() == DType::kFloat32 || tensor.dtype() == DType::kFloat64, IoError,
               path, ": '", name, "': expected float32 or float64, found ",
               dtype_name(tensor.dtype()));
    LinearTensors& module = modules[index];
    (field == "weight" ? module.weight : module.bias) = &tensor;
    (field == "weight" ? module.weight_name : module.bias_name) = name;
  }
  const int64_t layers = static_cast<int64_t>(model.num_layers());
  MLPX_CHECK(static_cast<int64_t>(modules.size()) == layers, IoError, path, ": expected ", layers,
             " Linear layers (the model's), found ", modules.size());
  // The modules in index order are the model's layers; every shape is checked before any
  // parameter changes.
  Tensor flat({model.num_params()});
  int64_t layer = 0;
  for (const auto& [index, module] : modules) {
    const std::string stem = prefix + std::to_string(index);
    MLPX_CHECK(module.weight && module.bias, IoError, path, ": expected '", stem, ".weight' and '",
               stem, ".bias', found only '", module.weight ? stem + ".weight" : stem + ".bias",
               "' (mlpx layers always have a bias)");
    Tensor weight = model.weight(static_cast<size_t>(layer));
    Tensor bias = model.bias(static_cast<size_t>(layer));
    MLPX_CHECK(module.weight->shape() == weight.shape(), IoError, path, ": '", module.weight_name,
               "': expected ", shape_str(weight.shape()), " (layer ", layer,
               "'s weight [out, in]), found ", shape_str(module.weight->shape()));
    MLPX_CHECK(module.bias->numel() == bias.numel() && module.bias->dim() == 1, IoError, path,
               ": '", module.bias_name, "': expected ", shape_str(bias.shape()), " (layer ", layer,
               "'s bias), found ", shape_str(module.bias->shape()));
    ++layer;
  }
  const auto views = model.named_views(flat);  // layers.{i}.weight, layers.{i}.bias, in order
  layer = 0;
  for (const auto& [index, module] : modules) {
    Tensor weight_view = views[2 * layer].second, bias_view = views[2 * layer + 1].second;
    copy_converting(*module.weight, weight_view);
    copy_converting(*module.bias, bias_view);
    ++layer;
  }
  model.params().copy_from(flat);
}

}  // namespace mlpx
