// _mlpx: the C++ library's public API (include/mlpx) as a Python extension module, for the
// mlpx package (python/mlpx/__init__.py), which adds the Python-side conveniences (keyword
// arguments, progress bars, callbacks). Arrays come in without a copy where their layout
// allows (C-contiguous float32, through the buffer protocol or DLPack) and go out as numpy
// arrays that own the mlpx tensor. Training releases the GIL and checks for Ctrl-C after
// every step: a pending KeyboardInterrupt ends the epoch there and is raised.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <array>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mlpx/mlpx.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

// The Python exception types (created at import): mlpx.Error(RuntimeError), and
// mlpx.ConfigError and mlpx.DataError, each both an mlpx.Error and a ValueError.
PyObject* g_error = nullptr;
PyObject* g_config_error = nullptr;
PyObject* g_data_error = nullptr;

// Runs `f`, turning any mlpx::Error into `type` (a ConfigError for what parses a config, a
// DataError for what reads arrays), message unchanged.
template <typename F>
auto raising(PyObject* type, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const mlpx::Error& e) {
    PyErr_SetString(type, e.what());
    throw nb::python_error();
  }
}

// ---- arrays ---------------------------------------------------------------------------------

std::string dtype_str(const nb::dlpack::dtype& t) {
  const char* kind = "?";
  switch (static_cast<nb::dlpack::dtype_code>(t.code)) {
    case nb::dlpack::dtype_code::Int:
      kind = "int";
      break;
    case nb::dlpack::dtype_code::UInt:
      kind = "uint";
      break;
    case nb::dlpack::dtype_code::Float:
      kind = "float";
      break;
    case nb::dlpack::dtype_code::Bool:
      return "bool";
    case nb::dlpack::dtype_code::Complex:
      kind = "complex";
      break;
    default:
      break;
  }
  return kind + std::to_string(t.bits);
}

mlpx::Shape shape_of(const nb::ndarray<>& a) {
  mlpx::Shape shape;
  for (size_t d = 0; d < a.ndim(); ++d) shape.push_back(static_cast<int64_t>(a.shape(d)));
  return shape;
}

bool c_contiguous(const nb::ndarray<>& a) {
  int64_t expected = 1;
  for (size_t d = a.ndim(); d-- > 0;) {
    if (a.shape(d) != 1 && a.stride(d) != expected) return false;
    expected *= static_cast<int64_t>(a.shape(d));
  }
  return true;
}

mlpx::Device device_of(const nb::ndarray<>& a, const std::string& name) {
  if (a.device_type() == nb::device::cpu::value) return mlpx::Device::cpu();
  MLPX_CHECK(a.device_type() == nb::device::cuda::value, ShapeError, name,
             ": expected an array on the CPU or a CUDA device, found DLPack device type ",
             a.device_type());
  return mlpx::Device::cuda(a.device_id());
}

// Keeps a Python array alive for as long as a Tensor wraps its memory; the last Tensor handle
// may go away without the GIL (inside a training step), so the release takes it.
std::shared_ptr<void> keep_alive(const nb::ndarray<>& a) {
  return {new nb::ndarray<>(a), [](void* p) {
            nb::gil_scoped_acquire gil;
            delete static_cast<nb::ndarray<>*>(p);
          }};
}

// x: float32 [N, features], C-contiguous, on the CPU or a CUDA device: wrapped, not copied.
mlpx::Tensor features_tensor(const nb::ndarray<>& a, const std::string& name, int64_t features) {
  const nb::dlpack::dtype f32 = nb::dtype<float>();
  const bool ok = a.ndim() == 2 && a.dtype() == f32 && c_contiguous(a) &&
                  a.shape(1) == static_cast<size_t>(features) && a.shape(0) >= 1 &&
                  reinterpret_cast<uintptr_t>(a.data()) % alignof(float) == 0;
  MLPX_CHECK(ok, ShapeError, name, ": expected a C-contiguous float32 array [N, ", features,
             "] (N >= 1), found ", dtype_str(a.dtype()), " ", mlpx::shape_str(shape_of(a)),
             a.ndim() == 2 && a.dtype() == f32 && !c_contiguous(a) ? " (not C-contiguous)" : "");
  return mlpx::Tensor::wrap(const_cast<void*>(a.data()), {shape_of(a)[0], shape_of(a)[1]},
                            mlpx::DType::kFloat32, device_of(a, name), keep_alive(a));
}

// y: class indices [N] or float targets [N] / [N, K], as a file would hold them (copied).
mlpx::Array target_array(const nb::ndarray<nb::ro, nb::c_contig, nb::device::cpu>& a,
                         const std::string& name) {
  using mlpx::ElementType;
  const nb::dlpack::dtype t = a.dtype();
  std::optional<ElementType> type;
  const auto code = static_cast<nb::dlpack::dtype_code>(t.code);
  if (code == nb::dlpack::dtype_code::Int) {
    if (t.bits == 8) type = ElementType::kInt8;
    if (t.bits == 16) type = ElementType::kInt16;
    if (t.bits == 32) type = ElementType::kInt32;
    if (t.bits == 64) type = ElementType::kInt64;
  } else if (code == nb::dlpack::dtype_code::UInt) {
    if (t.bits == 8) type = ElementType::kUint8;
    if (t.bits == 16) type = ElementType::kUint16;
    if (t.bits == 32) type = ElementType::kUint32;
    if (t.bits == 64) type = ElementType::kUint64;
  } else if (code == nb::dlpack::dtype_code::Float) {
    if (t.bits == 16) type = ElementType::kFloat16;
    if (t.bits == 32) type = ElementType::kFloat32;
    if (t.bits == 64) type = ElementType::kFloat64;
  }
  mlpx::Shape shape;
  for (size_t d = 0; d < a.ndim(); ++d) shape.push_back(static_cast<int64_t>(a.shape(d)));
  MLPX_CHECK(type && (a.ndim() == 1 || a.ndim() == 2) && a.size() > 0, ShapeError, name,
             ": expected class indices [N] (integers) or float targets [N] or [N, K], found ",
             dtype_str(t), " ", mlpx::shape_str(shape));
  mlpx::Array array;
  array.shape = shape;
  array.type = *type;
  array.source = name;
  const auto* bytes = static_cast<const unsigned char*>(a.data());
  array.bytes.assign(bytes, bytes + a.nbytes());
  for (size_t i = 0;
       i < array.bytes.size() && (*type == ElementType::kFloat32 || *type == ElementType::kFloat64);
       i += mlpx::element_size(*type)) {
    const double v = *type == ElementType::kFloat32
                         ? *reinterpret_cast<const float*>(&array.bytes[i])
                         : *reinterpret_cast<const double*>(&array.bytes[i]);
    MLPX_CHECK(std::isfinite(v), ValueError, name, ": expected finite values, found ", v,
               " at element ", i / mlpx::element_size(*type));
  }
  return array;
}

using NumpyArray = nb::ndarray<nb::numpy, float>;

// A CPU float32 tensor as a numpy array that owns a handle to it (no copy).
NumpyArray to_numpy(const mlpx::Tensor& tensor) {
  const mlpx::Tensor t = tensor.to(mlpx::Device::cpu());
  auto* keep = new mlpx::Tensor(t);
  nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<mlpx::Tensor*>(p); });
  std::vector<size_t> shape(t.shape().begin(), t.shape().end());
  return {t.data<float>(), shape.size(), shape.data(), owner};
}

// A CUDA float32 tensor as a DLPack tensor for torch (no copy).
nb::ndarray<nb::pytorch, float> to_torch_device(const mlpx::Tensor& t) {
  auto* keep = new mlpx::Tensor(t);
  nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<mlpx::Tensor*>(p); });
  std::vector<size_t> shape(t.shape().begin(), t.shape().end());
  return {
      t.data<float>(),         shape.size(),    shape.data(), owner, nullptr, nb::dtype<float>(),
      nb::device::cuda::value, t.device().index};
}

// An array file's contents (load_array: .npy, .csv, IDX) as a numpy array of its element type.
nb::ndarray<nb::numpy> load_array(const std::string& path) {
  using mlpx::ElementType;
  auto* array = new mlpx::Array(mlpx::load_array(path));
  nb::capsule owner(array, [](void* p) noexcept { delete static_cast<mlpx::Array*>(p); });
  const auto code = [&] {
    switch (array->type) {
      case ElementType::kFloat16:
      case ElementType::kFloat32:
      case ElementType::kFloat64:
        return nb::dlpack::dtype_code::Float;
      case ElementType::kUint8:
      case ElementType::kUint16:
      case ElementType::kUint32:
      case ElementType::kUint64:
        return nb::dlpack::dtype_code::UInt;
      default:
        return nb::dlpack::dtype_code::Int;
    }
  }();
  const nb::dlpack::dtype type{static_cast<uint8_t>(code),
                               static_cast<uint8_t>(8 * mlpx::element_size(array->type)), 1};
  std::vector<size_t> shape(array->shape.begin(), array->shape.end());
  return {array->bytes.data(), shape.size(), shape.data(), owner, nullptr, type};
}

// ---- the model ------------------------------------------------------------------------------

// A model with what it needs around it: its config (layers, loss, optimizer defaults; saved in
// checkpoints) and the input statistics it applies (a checkpoint's data.normalize
// "standardize"), so that fit, evaluate and predict see inputs as its training did.
struct Net {
  mlpx::Sequential model;
  mlpx::Config config;
  mlpx::Standardization standardization;
  // A checkpoint's training state (Net.load): its epoch and step counts and the optimizer's
  // buffers, from which a fit with the checkpoint's optimizer and schedule goes on as
  // `mlpx train --resume` does. Zero and empty for a new model.
  mlpx::TrainingProgress progress{};
  std::vector<std::pair<std::string, mlpx::Tensor>> optimizer_state{};

  // x as the model takes it: wrapped, or a standardized copy.
  mlpx::Tensor inputs(const nb::ndarray<>& x, const std::string& name) const {
    mlpx::Tensor t =
        raising(g_data_error, [&] { return features_tensor(x, name, model.inputs()); });
    if (standardization.defined()) {
      t = t.to(mlpx::Device::cpu()).clone();
      standardization.apply(t);
    }
    return t.to(model.device());
  }
};

Net make_net(const mlpx::Config& config, int64_t inputs) {
  return raising(g_config_error, [&] {
    config.validate();
    mlpx::Sequential model(inputs, config.model.resolved_layers(), mlpx::DType::kFloat32,
                           mlpx::Device::parse(config.device));
    model.set_precision(config.precision);
    model.set_fused(config.train.fused);
    model.set_gemm_epilogues(config.train.gemm_epilogues);
    model.init(config.model.init, config.model.init_std, config.seed);
    return Net{std::move(model), config, {}};
  });
}

// A data set on the model's device, built once (fit's training and validation sets).
struct Data {
  mlpx::Dataset set;
};

Data make_data(
    const Net& net, const mlpx::Config& config, const nb::ndarray<>& x,
    const nb::ndarray<nb::ro, nb::c_contig, nb::device::cpu>& y, const std::string& x_name,
    const std::string& y_name, const std::string& name,
    const std::optional<nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>>&
        sample_weight) {
  mlpx::Tensor xt = net.inputs(x, x_name);
  return raising(g_data_error, [&] {
    mlpx::Dataset set = mlpx::dataset_from(xt, x_name, target_array(y, y_name), config.loss,
                                           config.data.task, net.model.outputs(), name);
    if (sample_weight) {
      const float* w = sample_weight->data();
      mlpx::set_sample_weights(
          set,
          mlpx::Tensor::from_vector(std::vector<float>(w, w + sample_weight->shape(0)),
                                    {static_cast<int64_t>(sample_weight->shape(0))}),
          "sample_weight");
    }
    set = set.to(net.model.device());
    if (set.regression) set.target_variance = mlpx::target_variance(set.targets);
    return Data{std::move(set)};
  });
}

nb::dict metrics_dict(const mlpx::EpochMetrics& m) {
  nb::dict d;
  d["epoch"] = m.epoch;
  d["lr"] = m.lr;
  d["train_loss"] = m.train_loss;
  d["train_accuracy"] = m.train_accuracy;
  d["train_r2"] = m.train_r2;
  d["val_loss"] = m.val_loss;
  d["val_accuracy"] = m.val_accuracy;
  d["val_r2"] = m.val_r2;
  d["samples_per_s"] = m.samples_per_s;
  d["elapsed_s"] = m.elapsed_s;
  d["steps"] = m.steps;
  d["skipped_steps"] = m.skipped_steps;
  if (!std::isnan(m.grad_norm)) d["grad_norm"] = m.grad_norm;
  d["samples"] = m.samples;
  d["completed"] = m.completed;
  return d;
}

nb::dict evaluation_dict(const mlpx::Evaluation& e) {
  nb::dict d;
  d["loss"] = e.loss;
  d["accuracy"] = e.accuracy;
  d["r2"] = e.r2;
  d["mse"] = e.mse;
  d["samples"] = e.samples;
  return d;
}

// The progress callback of a training run with the GIL released: after each step it takes the
// GIL, raises pending signals (Ctrl-C) and calls `on_step(batch, batches, samples, seconds,
// loss)` (loss NaN except every `loss_every` batches and at the epoch's end). Any Python
// exception ends the epoch after that step and is kept for rethrow() with the GIL held.
class StepHook {
 public:
  StepHook(nb::object on_step, int64_t loss_every)
      : on_step_(std::move(on_step)), loss_every_(loss_every) {}

  mlpx::ProgressCallback callback() {
    return [this](const mlpx::BatchProgress& p) {
      const bool want_loss = !on_step_.is_none() && loss_every_ > 0 &&
                             (p.batch % loss_every_ == 0 || p.batch == p.batches);
      // The loss is read before taking the GIL: it may wait for the device.
      const double loss = want_loss && p.last_loss ? p.last_loss() : std::nan("");
      nb::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() != 0) {
        error_ = std::make_unique<nb::python_error>();
        return false;
      }
      if (on_step_.is_none()) return true;
      try {
        const nb::object go = on_step_(p.epoch, p.batch, p.batches, p.samples, p.seconds, loss);
        return !(go.is(nb::bool_(false)));
      } catch (nb::python_error& e) {
        error_ = std::make_unique<nb::python_error>(std::move(e));
        return false;
      }
    };
  }
  // Raises what the callback caught; call with the GIL held.
  void rethrow() {
    if (error_) {
      std::unique_ptr<nb::python_error> e = std::move(error_);
      e->restore();
      throw nb::python_error();
    }
  }

 private:
  nb::object on_step_;
  int64_t loss_every_;
  std::unique_ptr<nb::python_error> error_;
};

// One model's training on one data set: an mlpx::Trainer and the data it holds.
class Fit {
 public:
  Fit(Net& net, const mlpx::Config& config, const Data& train)
      : net_(net), config_(config), train_(train.set) {
    trainer_ = raising(g_config_error, [&] {
      config.optimizer.validate();
      return std::make_unique<mlpx::Trainer>(config, net.model, train_);
    });
    // onecycle: each step's rate from the plan over this fit's train.epochs.
    if (config.schedule.type == mlpx::ScheduleType::kOneCycle) {
      raising(g_config_error, [&] {
        trainer_->set_one_cycle(mlpx::one_cycle_plan(
            config.schedule, config.optimizer.lr,
            static_cast<int64_t>(config.train.epochs) * trainer_->steps_per_epoch()));
      });
    }
  }

  // plateau: takes the epoch's validation figure; returns the rate of the next epoch.
  double plateau_step(double value) {
    plateau_.step(config_.schedule, value);
    return plateau_.lr;
  }

  nb::dict run_epoch(double lr, nb::object on_step, int64_t loss_every) {
    StepHook hook(std::move(on_step), loss_every);
    mlpx::EpochMetrics m;
    {
      nb::gil_scoped_release release;
      m = trainer_->run_epoch(lr, hook.callback());
    }
    hook.rethrow();
    return metrics_dict(m);
  }

  // Goes on from `previous`, an earlier fit of the same model with the same optimizer and
  // schedule: its epoch count (which seeds the shuffles and the dropout masks), its step count
  // and a copy of its optimizer state. Only then does a fit in several calls take the steps of
  // one fit of all the epochs.
  void continue_from(Fit& previous) {
    raising(g_config_error, [&] {
      trainer_->restore(previous.epoch(), previous.steps(), previous.trainer_->optimizer_state());
    });
  }
  // The same from the checkpoint the model was loaded from (Net.progress, Net.optimizer_state).
  void continue_from_checkpoint() {
    raising(g_config_error, [&] {
      trainer_->restore(net_.progress.epoch, net_.progress.step, net_.optimizer_state);
    });
  }

  void save(const std::string& path) {
    const auto state = trainer_->optimizer_state();
    mlpx::save_checkpoint(path, net_.model, config_.optimizer.type, state,
                          config_.with_absolute_paths(),
                          {trainer_->epoch(), trainer_->optimizer().steps()}, net_.standardization);
  }
  int64_t epoch() const { return trainer_->epoch(); }
  int64_t steps() const { return trainer_->optimizer().steps(); }
  int64_t batch_size() const { return trainer_->batch_size(); }

 private:
  Net& net_;
  mlpx::Config config_;
  mlpx::Dataset train_;
  std::unique_ptr<mlpx::Trainer> trainer_;
  mlpx::PlateauState plateau_ = mlpx::PlateauState::start(config_.optimizer.lr);
};

// The model as an ONNX file (mlpx/onnx.h) whose inputs are scaled as `input_scale` says
// ("none": what predict() takes), with `epoch` and `step` as its training progress
// and `metrics` (a JSON object's text, or "") in the metadata. {"bytes", "output", "nodes"}.
nb::dict export_onnx(const Net& net, const std::string& path, int64_t opset,
                     const std::string& output, const std::string& input_scale,
                     const std::string& metrics, int64_t epoch, int64_t step) {
  mlpx::OnnxExportOptions options;
  options.opset = opset;
  options.input_scale =
      raising(g_config_error, [&] { return mlpx::parse_onnx_input_scale(input_scale); });
  options.output = raising(g_config_error, [&] { return mlpx::parse_onnx_output(output); });
  options.metrics_json = metrics;
  mlpx::OnnxExport result;
  {
    nb::gil_scoped_release release;
    const mlpx::Checkpoint checkpoint{net.config.with_absolute_paths(),
                                      {epoch, step},
                                      net.model.to(mlpx::Device::cpu()),
                                      {},
                                      net.standardization};
    result = mlpx::export_onnx(checkpoint, path, options);
  }
  nb::dict out;
  out["bytes"] = static_cast<int64_t>(result.model.size());
  out["output"] = mlpx::onnx_output_name(result.output);
  out["nodes"] = result.nodes;
  return out;
}

nb::dict evaluate(const Net& net, const Data& data, int64_t batch) {
  mlpx::Evaluation e;
  {
    nb::gil_scoped_release release;
    e = mlpx::evaluate(net.model, net.config.loss, data.set, batch);
  }
  return evaluation_dict(e);
}

// The model's outputs for x as `mlpx predict` gives them: class probabilities for cross_entropy
// (softmax over each row) and bce (sigmoid of each output), the same library call the command
// makes; raw outputs otherwise, and for `raw` (Model.logits).
mlpx::Tensor outputs(const Net& net, const mlpx::Tensor& x, bool raw) {
  mlpx::Tensor y = net.model.predict(x);
  const mlpx::Activation head =
      raw ? mlpx::Activation::kIdentity : mlpx::prediction_activation(net.config.loss);
  if (head != mlpx::Activation::kIdentity) mlpx::activation_forward(head, y, y);
  return y;
}

NumpyArray predict(const Net& net, const nb::ndarray<>& x, bool raw) {
  const mlpx::Tensor xt = net.inputs(x, "x");
  mlpx::Tensor y;
  {
    nb::gil_scoped_release release;
    y = outputs(net, xt, raw).to(mlpx::Device::cpu());
  }
  return to_numpy(y);
}

nb::ndarray<nb::pytorch, float> predict_on_device(const Net& net, const nb::ndarray<>& x,
                                                  bool raw) {
  const mlpx::Tensor xt = net.inputs(x, "x");
  mlpx::Tensor y;
  {
    nb::gil_scoped_release release;
    y = outputs(net, xt, raw);
    mlpx::synchronize(y.device());
  }
  return to_torch_device(y);
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A CPU float32 or int32 tensor as a numpy array of its dtype that owns a handle to it.
nb::ndarray<nb::numpy> to_numpy_typed(const mlpx::Tensor& t) {
  auto* keep = new mlpx::Tensor(t);
  nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<mlpx::Tensor*>(p); });
  std::vector<size_t> shape(t.shape().begin(), t.shape().end());
  const bool ints = t.dtype() == mlpx::DType::kInt32;
  return {ints ? static_cast<void*>(t.data<int32_t>()) : static_cast<void*>(t.data<float>()),
          shape.size(),
          shape.data(),
          owner,
          nullptr,
          ints ? nb::dtype<int32_t>() : nb::dtype<float>()};
}

// The parameters, then the batch norms' running statistics, named and typed as a checkpoint
// holds them (num_batches_tracked: int32 [1]).
std::vector<std::pair<std::string, nb::ndarray<nb::numpy>>> state_dict(const Net& net) {
  std::vector<std::pair<std::string, nb::ndarray<nb::numpy>>> out;
  const mlpx::Tensor params = net.model.params().to(mlpx::Device::cpu()).clone();
  for (const auto& [name, view] : net.model.named_views(params))
    out.emplace_back(name, to_numpy_typed(view));
  if (net.model.num_buffers() > 0) {
    const mlpx::Tensor buffers = net.model.buffers().to(mlpx::Device::cpu()).clone();
    const mlpx::Sequential& model = net.model;
    int64_t offset = 0;  // the buffers lie one after another, in named_buffers()' order
    for (const auto& [name, like] : model.named_buffers()) {
      const mlpx::Tensor view = buffers.flat_view(offset, like.shape());
      offset += like.numel();
      if (ends_with(name, ".num_batches_tracked")) {
        const auto count = static_cast<int32_t>(view.to_vector<float>()[0]);
        out.emplace_back(
            name, to_numpy_typed(mlpx::Tensor::from_vector(std::vector<int32_t>{count}, {1})));
      } else {
        out.emplace_back(name, to_numpy_typed(view));
      }
    }
  }
  return out;
}

// Sets every parameter, and the batch norms' running statistics when given (all or none), from
// (name, array) pairs named as state_dict() names them: float32 arrays, num_batches_tracked
// int32 or int64 [1] or [] (torch's scalar); checks all of them before changing anything.
void load_state_dict(Net& net, const std::vector<std::pair<std::string, nb::ndarray<>>>& state) {
  raising(g_data_error, [&] {
    std::vector<std::pair<std::string, mlpx::Tensor>> tensors;
    const auto buffers = net.model.named_buffers();
    for (const auto& [name, array] : state) {
      const mlpx::Shape* expected = nullptr;
      for (const mlpx::Parameter& p : net.model.parameters()) {
        if (p.name == name) expected = &p.shape;
      }
      for (const auto& [buffer, view] : buffers) {
        if (buffer == name) expected = &view.shape();
      }
      const bool on_cpu = c_contiguous(array) && array.device_type() == nb::device::cpu::value;
      if (expected != nullptr && ends_with(name, ".num_batches_tracked")) {
        const bool ok =
            on_cpu && array.size() == 1 && array.ndim() <= 1 &&
            (array.dtype() == nb::dtype<int32_t>() || array.dtype() == nb::dtype<int64_t>());
        MLPX_CHECK(ok, ShapeError, "load_state_dict: '", name,
                   "': expected an int32 or int64 CPU array [1] or [], found ",
                   dtype_str(array.dtype()), " ", mlpx::shape_str(shape_of(array)));
        const int64_t count = array.dtype() == nb::dtype<int32_t>()
                                  ? *static_cast<const int32_t*>(array.data())
                                  : *static_cast<const int64_t*>(array.data());
        tensors.emplace_back(name, mlpx::Tensor::from_vector(
                                       std::vector<int32_t>{static_cast<int32_t>(count)}, {1}));
        continue;
      }
      if (expected != nullptr) {
        const bool ok =
            array.dtype() == nb::dtype<float>() && on_cpu && shape_of(array) == *expected;
        MLPX_CHECK(ok, ShapeError, "load_state_dict: '", name,
                   "': expected a C-contiguous float32 CPU array ", mlpx::shape_str(*expected),
                   ", found ", dtype_str(array.dtype()), " ", mlpx::shape_str(shape_of(array)));
      }
      // An unexpected name is the library's to report (with what it expected).
      tensors.emplace_back(name, expected == nullptr
                                     ? mlpx::Tensor::zeros({1})
                                     : mlpx::Tensor::wrap(const_cast<void*>(array.data()),
                                                          *expected, mlpx::DType::kFloat32,
                                                          mlpx::Device::cpu(), keep_alive(array)));
    }
    mlpx::load_named_tensors(net.model, tensors, "load_state_dict");
  });
}

nb::list layers_of(const mlpx::Sequential& model) {
  nb::list out;
  for (size_t i = 0; i < model.num_layers(); ++i) {
    const mlpx::LayerSpec& l = model.layer(i);
    out.append(nb::make_tuple(l.units, mlpx::activation_name(l.activation), l.alpha.value_or(0)));
  }
  return out;
}

mlpx::Config parse_config(const std::string& json) {
  return raising(g_config_error, [&] {
    mlpx::Config c = mlpx::Config::from_json(json);
    c.validate();
    return c;
  });
}

mlpx::Config load_config(const std::string& path) {
  return raising(g_config_error, [&] {
    mlpx::Config c = mlpx::Config::load(path);
    c.validate();
    return c;
  });
}

// The preemption signal train() received (0: none); the handler only stores it.
volatile std::sig_atomic_t g_preemption_signal = 0;

extern "C" void store_preemption_signal(int signal) { g_preemption_signal = signal; }

// SIGTERM and SIGUSR1 end a train() run after its current step while it lives, as they end
// `mlpx train`, where nobody handles them otherwise (Python's default for both ends the
// interpreter at once): a signal with a Python handler (signal.signal) keeps it. The old
// dispositions come back after.
class PreemptionWatch {
 public:
  PreemptionWatch() {
    g_preemption_signal = 0;
    struct sigaction action {};
    action.sa_handler = store_preemption_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (size_t i = 0; i < kSignals.size(); ++i) {
      struct sigaction old {};
      if (sigaction(kSignals[i], nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;
      if (sigaction(kSignals[i], &action, &old_[i]) == 0) watched_[i] = true;
    }
  }
  ~PreemptionWatch() {
    for (size_t i = 0; i < kSignals.size(); ++i) {
      if (watched_[i]) sigaction(kSignals[i], &old_[i], nullptr);
    }
  }
  PreemptionWatch(const PreemptionWatch&) = delete;
  PreemptionWatch& operator=(const PreemptionWatch&) = delete;

 private:
  static constexpr std::array<int, 2> kSignals = {SIGTERM, SIGUSR1};
  std::array<struct sigaction, 2> old_{};
  std::array<bool, 2> watched_{};
};

// run_training (the whole `mlpx train` job) with the callbacks in Python.
nb::tuple run_training(const mlpx::Config& config, const std::string& resume,
                       const std::string& init_weights, nb::object on_start, nb::object on_step,
                       int64_t loss_every, nb::object on_epoch) {
  StepHook hook(std::move(on_step), loss_every);
  std::unique_ptr<nb::python_error> epoch_error;
  mlpx::RunOptions options;
  options.resume = resume;
  options.init_weights = init_weights;
  options.callbacks.on_batch = hook.callback();
  if (!on_start.is_none()) {
    options.callbacks.on_start = [&](const std::vector<std::string>& lines) {
      nb::gil_scoped_acquire gil;
      try {
        on_start(lines);
      } catch (nb::python_error& e) {
        epoch_error = std::make_unique<nb::python_error>(std::move(e));
      }
    };
  }
  // An exception in on_epoch cannot stop run_training by itself: the next step's hook sees
  // it through the flag and stops there.
  bool stop = false;
  if (!on_epoch.is_none()) {
    options.callbacks.on_epoch = [&](const mlpx::EpochMetrics& m) {
      nb::gil_scoped_acquire gil;
      try {
        const nb::object go = on_epoch(metrics_dict(m));
        if (go.is(nb::bool_(false))) stop = true;
      } catch (nb::python_error& e) {
        epoch_error = std::make_unique<nb::python_error>(std::move(e));
        stop = true;
      }
    };
    const mlpx::ProgressCallback step = options.callbacks.on_batch;
    options.callbacks.on_batch = [&stop, step](const mlpx::BatchProgress& p) {
      return !stop && step(p);
    };
  }
  mlpx::RunResult result;
  {
    const PreemptionWatch watch;
    options.stop_signal = &g_preemption_signal;
    nb::gil_scoped_release release;
    result = mlpx::run_training(config, options);
  }
  hook.rethrow();
  if (epoch_error) {
    std::unique_ptr<nb::python_error> e = std::move(epoch_error);
    e->restore();
    throw nb::python_error();
  }
  nb::list epochs;
  for (const mlpx::EpochMetrics& m : result.epochs) epochs.append(metrics_dict(m));
  nb::object test = result.test.samples > 0 ? nb::object(evaluation_dict(result.test)) : nb::none();
  nb::object net = nb::none();
  if (result.model) {
    net = nb::cast(Net{*result.model, config, result.standardization});
  }
  // Preempted: (signal, step, epoch, batch in the epoch, checkpoint) for the stop line.
  nb::object preempted = nb::none();
  if (result.signal > 0) {
    preempted = nb::make_tuple(result.signal, result.position.step, result.position.epoch,
                               result.position.epoch_batch, result.checkpoint);
  }
  return nb::make_tuple(epochs, test, net, result.stopped, result.seconds, preempted);
}

}  // namespace

NB_MODULE(_mlpx, m) {
  m.doc() = "mlpx's C++ library (include/mlpx); use it through the mlpx package";

  g_error = PyErr_NewException("mlpx.Error", PyExc_RuntimeError, nullptr);
  nb::object error = nb::steal(g_error);
  nb::object config_bases = nb::make_tuple(error, nb::handle(PyExc_ValueError));
  g_config_error = PyErr_NewException("mlpx.ConfigError", config_bases.ptr(), nullptr);
  g_data_error = PyErr_NewException("mlpx.DataError", config_bases.ptr(), nullptr);
  m.attr("Error") = error;
  m.attr("ConfigError") = nb::steal(g_config_error);
  m.attr("DataError") = nb::steal(g_data_error);
  // The module keeps the three types alive; the translator reads them through these pointers.
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const mlpx::ShapeError& e) {
      PyErr_SetString(g_data_error, e.what());
    } catch (const mlpx::ValueError& e) {
      PyErr_SetString(g_data_error, e.what());
    } catch (const mlpx::Error& e) {
      PyErr_SetString(g_error, e.what());
    }
  });

  m.def("version", [] { return std::string(MLPX_VERSION); });
  m.def("cuda_available", &mlpx::cuda_available);
  m.def("built_with_cuda", &mlpx::built_with_cuda);
  m.def("onnx_export_available", &mlpx::onnx_export_available);
  m.def("cuda_device_count", &mlpx::cuda_device_count);
  // The config file's keys, one dict each, from the one table (mlpx::config_fields()).
  m.def("config_fields", [] {
    nb::list out;
    for (const mlpx::ConfigField& f : mlpx::config_fields()) {
      nb::dict d;
      d["path"] = f.path;
      d["type"] = f.type;
      d["default"] = f.default_json;
      d["range"] = f.range;
      d["help"] = f.help;
      d["sweepable"] = f.sweepable;
      out.append(d);
    }
    return out;
  });

  nb::class_<mlpx::Config>(m, "NativeConfig")
      .def_static("from_json", &parse_config, "text"_a)
      .def_static("load", &load_config, "path"_a)
      .def("to_json", &mlpx::Config::to_json)
      .def("with_absolute_paths", &mlpx::Config::with_absolute_paths)
      .def(
          "scheduled_lr",
          [](const mlpx::Config& c, int epoch) {
            return mlpx::scheduled_lr(c.schedule, c.optimizer.lr, epoch);
          },
          "epoch"_a);

  nb::class_<Net>(m, "Net")
      .def(nb::new_(&make_net), "config"_a, "inputs"_a)
      .def_static(
          "load",
          [](const std::string& path) {
            mlpx::Checkpoint c = mlpx::load_checkpoint(path);
            return Net{std::move(c.model), std::move(c.config), std::move(c.standardization),
                       c.progress, std::move(c.optimizer_state)};
          },
          "path"_a)
      .def(
          "to",
          [](const Net& net, const std::string& device) {
            const mlpx::Device d =
                raising(g_config_error, [&] { return mlpx::Device::parse(device); });
            mlpx::Config config = net.config;
            config.device = device;
            return Net{net.model.to(d), std::move(config), net.standardization};
          },
          "device"_a)
      .def(
          "save",
          [](const Net& net, const std::string& path) {
            // A loaded checkpoint's training state is written back with it.
            if (net.optimizer_state.empty()) {
              mlpx::save_checkpoint(path, net.model, nullptr, net.config.with_absolute_paths(),
                                    net.progress, net.standardization);
            } else {
              mlpx::save_checkpoint(path, net.model, net.config.optimizer.type, net.optimizer_state,
                                    net.config.with_absolute_paths(), net.progress,
                                    net.standardization);
            }
          },
          "path"_a)
      .def(
          "load_weights",
          [](Net& net, const std::string& path) { mlpx::load_weights(net.model, path); }, "path"_a)
      .def("predict", &predict, "x"_a, "raw"_a)
      .def("predict_on_device", &predict_on_device, "x"_a, "raw"_a)
      .def("export_onnx", &export_onnx, "path"_a, "opset"_a, "output"_a, "input_scale"_a,
           "metrics"_a, "epoch"_a, "step"_a)
      .def("state_dict", &state_dict)
      .def("load_state_dict", &load_state_dict, "state"_a)
      .def_prop_rw(
          "config", [](const Net& net) { return net.config; },
          [](Net& net, const mlpx::Config& config) { net.config = config; })
      .def_prop_ro("inputs", [](const Net& net) { return net.model.inputs(); })
      .def_prop_ro("outputs", [](const Net& net) { return net.model.outputs(); })
      .def_prop_ro("num_params", [](const Net& net) { return net.model.num_params(); })
      .def_prop_ro("device", [](const Net& net) { return net.model.device().str(); })
      .def_prop_ro("standardized", [](const Net& net) { return net.standardization.defined(); })
      .def_prop_ro(
          "progress",
          [](const Net& net) { return std::make_pair(net.progress.epoch, net.progress.step); })
      .def_prop_ro("layers", [](const Net& net) { return layers_of(net.model); })
      .def("summary", [](const Net& net) { return net.model.summary(); });

  nb::class_<Data>(m, "Data")
      .def(nb::new_(&make_data), "net"_a, "config"_a, "x"_a, "y"_a, "x_name"_a, "y_name"_a,
           "name"_a, "sample_weight"_a = nb::none())
      .def_prop_ro("size", [](const Data& d) { return d.set.size(); })
      .def_prop_ro("regression", [](const Data& d) { return d.set.regression; });

  nb::class_<Fit>(m, "Fit")
      .def(nb::init<Net&, const mlpx::Config&, const Data&>(), "net"_a, "config"_a, "train"_a,
           nb::keep_alive<1, 2>())
      .def("run_epoch", &Fit::run_epoch, "lr"_a, "on_step"_a.none(), "loss_every"_a)
      .def("plateau_step", &Fit::plateau_step, "value"_a)
      .def("save", &Fit::save, "path"_a)
      .def("continue_from", &Fit::continue_from, "previous"_a)
      .def("continue_from_checkpoint", &Fit::continue_from_checkpoint)
      .def_prop_ro("epoch", &Fit::epoch)
      .def_prop_ro("steps", &Fit::steps)
      .def_prop_ro("batch_size", &Fit::batch_size);

  m.def("load_array", &load_array, "path"_a);
  m.def("evaluate", &evaluate, "net"_a, "data"_a, "batch"_a);
  m.def("run_training", &run_training, "config"_a, "resume"_a, "init_weights"_a,
        "on_start"_a.none(), "on_step"_a.none(), "loss_every"_a, "on_epoch"_a.none());
}
