// Sequential: a stack of Linear + activation layers whose parameters live in ONE flat
// buffer (each layer's weight [out, in] and bias [out] are views into it), and whose
// gradients live in a second buffer of the same layout. So one optimizer launch updates the
// whole model and a checkpoint is a few contiguous blobs.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mlpx/activation.h"
#include "mlpx/gemm.h"
#include "mlpx/init.h"
#include "mlpx/tensor.h"

namespace mlpx {

// One Linear layer and the activation after it (the config file's model.layers[i]).
struct LayerSpec {
  LayerSpec() = default;
  LayerSpec(int64_t units_, Activation activation_, std::optional<double> alpha_ = std::nullopt,
            double dropout_ = 0.0)
      : units(units_), activation(activation_), alpha(alpha_), dropout(dropout_) {}

  int64_t units = 0;
  Activation activation = Activation::kRelu;
  // The slope of leaky_relu, the scale of elu; unset: default_activation_alpha(activation)
  // (0.01 and 1.0, as PyTorch's nn.LeakyReLU and nn.ELU).
  std::optional<double> alpha;
  // The probability, in [0, 1), that training drops an element of this layer's output (after
  // the activation; kept elements scale by 1 / (1 - p)), as nn.Dropout(p) after it. 0: none.
  // The output layer may have one too (applied before the loss, as in torch).
  double dropout = 0.0;
};

// The training step a forward() draws its dropout masks for: layer i's mask is DropoutMask
// {layer(i).dropout, seed, i, step, step_offset, first_row * layer(i).units} (mlpx/dropout.h).
struct DropoutStep {
  uint64_t seed = 0;
  int64_t step = 0;
  Tensor step_offset;     // optional int32 [1] on the model's device, added when forward runs
  int64_t first_row = 0;  // the row of the whole batch that x's first row is (data parallel)
};

// One tensor of the flat parameter buffer: its checkpoint name ("layers.{i}.weight" [out, in],
// "layers.{i}.bias" [out]), where it starts (in elements) and its shape.
struct Parameter {
  std::string name;
  int64_t offset = 0;
  Shape shape;
  // Linear weight, bias or norm parameter: optimizer.decay "weights" decays kWeight only.
  ParameterKind kind = ParameterKind::kWeight;
};

class Sequential {
 public:
  // A model taking [B, inputs] rows through `layers`; parameters uninitialised until init().
  // dtype float32 (any device) or float64 (CPU, for gradient checks). A layer without an
  // alpha gets its activation's default (layer(i).alpha is then set). ValueError for a
  // dropout outside [0, 1).
  Sequential(int64_t inputs, std::vector<LayerSpec> layers, DType dtype = DType::kFloat32,
             Device device = Device::cpu());

  // The layout of the flat buffer of a model with `inputs` inputs and `layers`: each layer's
  // weight then its bias, layer by layer. ShapeError for sizes < 1 (nothing is allocated).
  static std::vector<Parameter> parameter_layout(int64_t inputs,
                                                 const std::vector<LayerSpec>& layers);

  // Weights drawn by `init` (param: its std or bound, see init.h) from Philox stream
  // kStreamInit + layer; biases zero. The same seed gives the same weights on every device.
  void init(Init init, double param, uint64_t seed);

  // Training forward pass: keeps what backward() needs. x: [B, inputs] on the model's
  // device. Returns the output [B, outputs] (a view valid until the next forward()). Layers
  // with a dropout drop with the masks of `step`: the same step gives the same masks, so a
  // training loop passes each step its own (the Trainer passes its global step).
  Tensor forward(const Tensor& x, const DropoutStep& step = {});
  // From doutput [B, outputs] (d loss / d output of the last forward()), overwrites the
  // gradient buffer (grads()). Dropout masks are the last forward()'s, regenerated.
  // `after_layer(i)`, when given, is called as soon as layer i's weight and bias gradients are
  // enqueued, last layer first (data parallel: their all-reduce can start while the layers
  // below are still running their backward).
  void backward(const Tensor& doutput,
                const std::function<void(size_t layer)>& after_layer = nullptr);
  // Allocates the training buffers for batches of up to `batch` rows now, so that forward()
  // and backward() allocate nothing (required while a CUDA graph is being captured).
  void reserve(int64_t batch) { ensure_batch(batch); }
  // Inference: output [B, outputs] in a new tensor; touches neither gradients nor the
  // training activations. No dropout (as torch's eval mode).
  Tensor predict(const Tensor& x) const;

  int64_t inputs() const { return inputs_; }
  int64_t outputs() const { return layers_.back().units; }
  size_t num_layers() const { return layers_.size(); }
  const LayerSpec& layer(size_t i) const { return layers_[i]; }
  int64_t num_params() const { return params_.numel(); }
  DType dtype() const { return params_.dtype(); }
  Device device() const { return params_.device(); }
  // The arithmetic of the model's GEMMs (forward, backward and predict); kFp32 by default,
  // kTf32 on a CUDA device only, kBf16 on every device (ValueError elsewhere, and for a
  // float64 model). Parameters, gradients and optimizer state keep the model's dtype.
  void set_precision(Precision precision);
  Precision precision() const { return precision_; }

  Tensor& params() { return params_; }  // flat [num_params]
  const Tensor& params() const { return params_; }
  Tensor& grads() { return grads_; }  // flat [num_params], same layout
  // Views into params() / grads(): weight [out_i, in_i], bias [out_i].
  Tensor weight(size_t i) const;
  Tensor bias(size_t i) const;
  Tensor weight_grad(size_t i) const;
  Tensor bias_grad(size_t i) const;
  // The tensors of parameter_layout(), in order.
  const std::vector<Parameter>& parameters() const { return layout_; }
  // Named views of `flat` (params(), grads() or an optimizer state buffer: [num_params], any
  // dtype and device), shaped as parameters().
  std::vector<std::pair<std::string, Tensor>> named_views(const Tensor& flat) const;

  // A copy of the model on another device (parameters copied; buffers fresh).
  Sequential to(Device device) const;

  // A table of the layers, their shapes and parameter counts.
  std::string summary() const;

 private:
  int64_t in_features(size_t i) const { return i == 0 ? inputs_ : layers_[i - 1].units; }
  // Tensor k of parameter_layout() as a view of `flat`.
  Tensor parameter_view(const Tensor& flat, size_t k) const;
  void ensure_batch(int64_t batch);

  int64_t inputs_;
  std::vector<LayerSpec> layers_;  // every alpha set
  Precision precision_ = Precision::kFp32;
  std::vector<Parameter> layout_;  // weight i is layout_[2 i], bias i layout_[2 i + 1]
  Tensor params_, grads_;

  // Training buffers for up to `capacity_` rows; batches use row views of them.
  int64_t capacity_ = 0;
  Tensor input_;              // the last forward()'s x (a handle, not a copy)
  DropoutStep dropout_step_;  // the last forward()'s masks, for backward()
  // Per layer: z = linear output, a = f(z), out = a after dropout (the next layer's input;
  // out is a without a dropout, and a is out with one, except after softmax, whose backward
  // reads a).
  std::vector<Tensor> pre_, act_, out_;
  std::vector<Tensor> grad_;  // per layer: d loss / d out_i, then d loss / d z_i in place
};

}  // namespace mlpx
