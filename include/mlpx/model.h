// Sequential: a stack of Linear (+ norm) + activation layers whose parameters live in ONE flat
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
#include "mlpx/linear.h"
#include "mlpx/tensor.h"

namespace mlpx {

struct FusedLayer;         // src/ops/fused_mlp.h
struct FusedCrossEntropy;  // src/ops/fused_mlp.h

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
  // The norm between the Linear and the activation (nn.LayerNorm(units, norm_eps) or
  // nn.BatchNorm1d(units, norm_eps, norm_momentum)); its weight starts at 1, its bias at 0.
  Norm norm = Norm::kNone;
  double norm_eps = 1e-5;
  double norm_momentum = 0.1;  // batch norm's running statistics
  // false: the Linear has no bias (nn.Linear(bias=False), as before a norm).
  bool bias = true;
  // true: the layer's output is its input plus dropout(act(norm(linear(x)))); units must equal
  // the layer's input width.
  bool residual = false;
};

// The training step a forward() draws its dropout masks for: layer i's mask is DropoutMask
// {layer(i).dropout, seed, i, step, step_offset, first_row * layer(i).units} (mlpx/dropout.h).
struct DropoutStep {
  uint64_t seed = 0;
  int64_t step = 0;
  Tensor step_offset;     // optional int32 [1] on the model's device, added when forward runs
  int64_t first_row = 0;  // the row of the whole batch that x's first row is (data parallel)
  // The rows of the whole batch over the ranks (data parallel), over which synchronised batch
  // norms take their statistics (set_norm_sync); 0: x's own rows.
  int64_t batch_rows = 0;
};

// One tensor of the flat parameter buffer: its checkpoint name ("layers.{i}.weight" [out, in],
// "layers.{i}.bias" [out]), where it starts (in elements) and its shape.
struct Parameter {
  std::string name;
  int64_t offset = 0;
  Shape shape;
  // Linear weight, bias or norm parameter: optimizer.decay "weights" decays kWeight only.
  ParameterKind kind = ParameterKind::kWeight;
  size_t layer = 0;  // the layer it belongs to
};

class Sequential {
 public:
  // A model taking [B, inputs] rows through `layers`; parameters uninitialised until init().
  // dtype float32 (any device) or float64 (CPU, for gradient checks). A layer without an
  // alpha gets its activation's default (layer(i).alpha is then set). ValueError for a
  // dropout outside [0, 1).
  Sequential(int64_t inputs, std::vector<LayerSpec> layers, DType dtype = DType::kFloat32,
             Device device = Device::cpu());

  // The layout of the flat buffer of a model with `inputs` inputs and `layers`: layer by layer,
  // its weight, its bias (unless the layer has none), then its norm's weight and bias
  // ("layers.{i}.norm.weight" [units], ".norm.bias"). ShapeError for sizes < 1, ValueError for
  // a residual layer whose units differ from its input width (nothing is allocated).
  static std::vector<Parameter> parameter_layout(int64_t inputs,
                                                 const std::vector<LayerSpec>& layers);
  // The layout of the batch norms' buffers (buffers()): per batch-norm layer i,
  // "layers.{i}.norm.running_mean" [units], ".running_var" [units] and ".num_batches_tracked"
  // [1] (a count, kept as a float), PyTorch's names. Empty without batch norms.
  static std::vector<Parameter> buffer_layout(const std::vector<LayerSpec>& layers);

  // Weights drawn by `init` (param: its std or bound, see init.h) from Philox stream
  // kStreamInit + layer; biases zero; norms' weights 1 and biases 0; running means 0, running
  // variances 1, batch counts 0. The same seed gives the same weights on every device.
  void init(Init init, double param, uint64_t seed);

  // Training forward pass: keeps what backward() needs. x: [B, inputs] on the model's
  // device. Returns the output [B, outputs] (a view valid until the next forward()). Layers
  // with a dropout drop with the masks of `step`: the same step gives the same masks, so a
  // training loop passes each step its own (the Trainer passes its global step).
  Tensor forward(const Tensor& x, const DropoutStep& step = {});
  // The same, then the softmax-cross-entropy of the output inside the fused forward kernel
  // (its loss, gradient and correct count; src/ops/fused_mlp.h). Needs fuses_cross_entropy().
  Tensor forward(const Tensor& x, const DropoutStep& step, const FusedCrossEntropy& loss);
  // From doutput [B, outputs] (d loss / d output of the last forward()), overwrites the
  // gradient buffer (grads()). Dropout masks are the last forward()'s, regenerated.
  // `after_layer(i)`, when given, is called as soon as layer i's weight and bias gradients are
  // enqueued, last layer first (data parallel: their all-reduce can start while the layers
  // below are still running their backward).
  void backward(const Tensor& doutput,
                const std::function<void(size_t layer)>& after_layer = nullptr);
  // backward() after a forward() of one row, without the weight gradients: layer i's is the
  // outer product dz^T x of the two rows weight_grad_factors(i) gives, which the optimizer forms
  // inside its update (Optimizer::step_outer), so it is never written and read back. The bias
  // gradients are written as backward() writes them; the weights' part of grads() is left as
  // it was. ShapeError after a forward() of more rows.
  void backward_outer(const Tensor& doutput);
  // After backward_outer(): layer i's weight gradient [out_i, in_i] as its factors
  // {dz [out_i], x [in_i]} (views valid until the next forward()).
  std::pair<Tensor, Tensor> weight_grad_factors(size_t i) const;
  // Data-parallel batch norm (train.sync_batchnorm): `sum` sums a buffer over the ranks in place
  // (every rank calls it at the same points). Training forward() and backward() then take the
  // batch norms' statistics over the whole batch (DropoutStep::batch_rows rows), so that N ranks
  // normalize as one process does. Unset (the default): each rank uses its own rows.
  void set_norm_sync(std::function<void(Tensor&)> sum) { norm_sync_ = std::move(sum); }
  bool norm_synced() const { return static_cast<bool>(norm_sync_); }
  // A training step of a rank with no rows of the batch: joins the synchronised batch norms'
  // sums (contributing nothing) and updates the running statistics as the other ranks do. No-op
  // without set_norm_sync() or batch norms.
  void norm_sync_without_rows(const DropoutStep& step);
  // Allocates the training buffers for batches of up to `batch` rows now, so that forward()
  // and backward() allocate nothing (required while a CUDA graph is being captured).
  void reserve(int64_t batch) { ensure_batch(batch); }
  // Inference: output [B, outputs] in a new tensor; touches neither gradients nor the
  // training activations. No dropout, and batch norms use their running statistics (as torch's
  // eval mode).
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
  // Why the fused narrow-MLP kernels cannot run layers 1..L-1 of this model on its device in
  // its precision ("" when they can: a CUDA device, float32, fp32 or bf16, 2 to 8 layers,
  // elementwise activations, no dropout, widths <= 128, or <= 256 on compute capability 9.x).
  std::string fused_unfit_reason() const;
  // Runs forward() and backward() of layers 1..L-1 through the fused kernels (fp32 SIMT for
  // precision fp32, bf16 tensor cores for bf16); ValueError with fused_unfit_reason() when they
  // cannot. Off by default and after to().
  void set_fused(bool on);
  // train.fused: kOn is set_fused(true), kAuto fuses where fused_unfit_reason() is "", kOff not.
  void set_fused(FusedMode mode);
  bool fused() const { return fused_; }
  // Whether forward() can take the cross-entropy into its fused kernel: a fused model whose last
  // layer is identity (the logits).
  bool fuses_cross_entropy() const;
  // On a CUDA device in fp32 or tf32, a layer's bias, ReLU or gelu_tanh, their backward and the
  // bias gradient run in its GEMMs' cuBLASLt epilogues where the activation table allows (on by
  // default; the bias gradient is then cuBLASLt's sum, not sum_rows's fixed order:
  // docs/gpu-speed.md). Off: every layer takes the plain path (GEMMs, then separate bias,
  // activation and sum kernels). Kept by to().
  void set_gemm_epilogues(bool on) { gemm_epilogues_ = on; }
  bool gemm_epilogues() const { return gemm_epilogues_; }

  // flat [num_params]. Every write to the parameters goes through params() (or init()): the
  // non-const access marks the model's bf16 copy stale (see bf16_params_).
  Tensor& params() {
    bf16_params_current_ = false;
    return params_;
  }
  const Tensor& params() const { return params_; }
  Tensor& grads() { return grads_; }  // flat [num_params], same layout
  // Views into params() / grads(): weight [out_i, in_i], bias [out_i] (an undefined Tensor for
  // a layer without a bias), the norm's weight and bias [out_i] (undefined without a norm). A
  // weight view of a non-const model may be written: taking it marks the bf16 copy stale, as
  // params() does (a view kept and written after the next forward() must be taken again first).
  Tensor weight(size_t i) const;
  Tensor weight(size_t i) {
    bf16_params_current_ = false;
    return weight_view(i);
  }
  Tensor bias(size_t i) const;
  Tensor weight_grad(size_t i) const;
  Tensor bias_grad(size_t i) const;
  Tensor norm_weight(size_t i) const;
  Tensor norm_bias(size_t i) const;
  Tensor norm_weight_grad(size_t i) const;
  Tensor norm_bias_grad(size_t i) const;
  // Where layer i's tensors start in the flat buffer (they are contiguous, layer by layer).
  int64_t layer_offset(size_t i) const;
  // The batch norms' running statistics and batch counts, flat [num_buffers] in
  // buffer_layout()'s order (empty without batch norms); updated by every training forward().
  Tensor& buffers() { return buffers_; }
  const Tensor& buffers() const { return buffers_; }
  int64_t num_buffers() const { return buffers_.defined() ? buffers_.numel() : 0; }
  // Named views of buffers(), shaped as buffer_layout().
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  // The tensors of parameter_layout(), in order.
  const std::vector<Parameter>& parameters() const { return layout_; }
  // Named views of `flat` (params(), grads() or an optimizer state buffer: [num_params], any
  // dtype and device), shaped as parameters().
  std::vector<std::pair<std::string, Tensor>> named_views(const Tensor& flat) const;

  // For the optimizer step of a float32 model in precision kBf16: the copy of params() rounded
  // to bfloat16 ([num_params] bits on the model's device, host memory on the CPU; made current
  // first, on a GPU by a kernel on the device's stream), which the step overwrites from the new
  // params in its own pass; nullptr for any other model. After the step, call
  // bf16_params_written() (the step's params() access marked the copy stale).
  uint16_t* bf16_params_for_step();
  void bf16_params_written() { bf16_params_current_ = bf16_params_data() != nullptr; }

  // A copy of the model on another device (parameters copied; buffers fresh).
  Sequential to(Device device) const;

  // A table of the layers, their shapes and parameter counts.
  std::string summary() const;

 private:
  int64_t in_features(size_t i) const { return i == 0 ? inputs_ : layers_[i - 1].units; }
  // Tensor k of parameter_layout() as a view of `flat`.
  Tensor parameter_view(const Tensor& flat, size_t k) const;
  Tensor buffer_view(size_t layer, size_t k) const;  // running_mean, running_var, count
  void ensure_batch(int64_t batch);
  std::vector<FusedLayer> fused_layers(int64_t batch) const;
  void ensure_fused_workspace(int64_t batch);
  Tensor weight_view(size_t i) const;  // weight(i) without marking the bf16 copy stale
  bool keeps_bf16_params() const;
  // The copy's first element (bf16_params_ on the CPU, bf16_params_device_ on a GPU), or
  // nullptr before it is allocated.
  uint16_t* bf16_params_data();
  const uint16_t* bf16_params_data() const;
  // Layer i's weight in bf16_params_, or nullptr while the copy is not current (the GEMM then
  // rounds the weight itself: the same bits).
  const uint16_t* weight_bf16(size_t i) const;
  // Whether layer i runs as src/ops/linear_bf16.h in a training step: a CPU model that keeps
  // bf16_params_, the layer plain (no norm, dropout or residual add).
  bool bf16_plain_layer(size_t i) const;
  // bf16_inputs_[i] (resized for `batch` rows) for a bf16_plain_layer(i), else nullptr.
  uint16_t* bf16_input_bits(size_t i, int64_t batch);
  // A layer's Linear, forward (z = h W^T + b) and backward (dW, db and, given dx, dx = dz W),
  // in the model's precision. bf16 on a GPU: each GEMM operand is rounded once per step
  // (bf16_operands_), where linear_forward / linear_backward round each GEMM's own; the
  // same bits.
  void layer_linear_forward(size_t i, const Tensor& h, Tensor& z);
  void layer_linear_backward(size_t i, const Tensor& below, const Tensor& dz, Tensor& dweight,
                             Tensor& dbias, Tensor* dx);
  bool rounds_operands_once() const;
  // bf16 on a GPU, unfused (epilogue_of(i) not plain there): whether layer i's forward GEMM
  // writes only the bf16 bits of its output, into layer i + 1's operand buffer, for a batch
  // of `batch` rows: a hidden layer whose output no later step reads in float32 (the layer
  // above adds no residual; a one-row batch, which backward_outer may follow, keeps fp32).
  bool emits_bf16_output(size_t i, int64_t batch) const;
  // In a training backward of that kind: whether layer i's dz comes out of layer i + 1's
  // input-gradient GEMM as bf16 bits (its ReLU backward in that GEMM's DRELU epilogue, or
  // none for identity), in the dz buffer layer i's GEMMs read (bf16_dz_bits(i)).
  bool bf16_dz_from_gemm_above(size_t i) const;
  // bf16_operands_ for capacity_ rows (allocated once; see there), and their bits.
  void ensure_bf16_operands();
  uint16_t* bf16_operand_bits(size_t k);
  uint16_t* bf16_dz_bits(size_t i);
  void backward_layers(const Tensor& doutput, const std::function<void(size_t layer)>& after_layer,
                       bool weight_grads);
  // The epilogue layer_epilogue() chooses for layer i in this model's state.
  LinearEpilogue epilogue_of(size_t i) const;
  // Whether layer i's ReLU backward runs in layer i + 1's input-gradient GEMM (DRELU, reading
  // the mask layer i's forward wrote), in a training backward (not backward_outer's).
  bool relu_backward_in_gemm_above(size_t i) const;
  // The same for a gelu_tanh layer i (DGELU_BGRAD: its backward and its bias gradient).
  bool gelu_backward_in_gemm_above(size_t i) const;
  // The norm of layer i on z [B, units] into n (may be z): in training (batch statistics, kept
  // for backward(); running statistics updated), or in eval form (running statistics).
  Tensor forward_pass(const Tensor& x, const DropoutStep& step, const FusedCrossEntropy* loss);
  void norm_forward(size_t i, const Tensor& z, Tensor& n);
  void norm_eval(size_t i, const Tensor& z, Tensor& n) const;
  // dn [B, units] -> dz (may be dn), with the norm's parameter gradients.
  void norm_backward(size_t i, const Tensor& z, const Tensor& dn, Tensor& dz);

  // Per layer, the indices into layout_ of its tensors (-1: absent).
  struct LayerTensors {
    int weight = -1, bias = -1, norm_weight = -1, norm_bias = -1;
    int buffers = -1;  // into buffer_layout(): its running_mean (then running_var, count)
  };

  int64_t inputs_;
  std::vector<LayerSpec> layers_;  // every alpha set
  Precision precision_ = Precision::kFp32;
  bool fused_ = false;
  bool gemm_epilogues_ = true;
  std::vector<Parameter> layout_;
  std::vector<LayerTensors> tensors_;
  std::vector<Parameter> buffer_layout_;
  Tensor params_, grads_;
  Tensor buffers_;
  // A float32 model in precision kBf16: params_ rounded to bfloat16 (math::bf16_bits), the
  // operand its GEMMs read for a weight instead of rounding it on every call. The optimizer
  // step writes it beside the float32 update (bf16_params_for_step()). The one rule: any write
  // to params_ (params(), init(), set_precision()) clears bf16_params_current_, and forward()
  // rounds the whole buffer again when it finds the copy stale. On the CPU the bits live in
  // bf16_params_; on a GPU in bf16_params_device_, an int32 tensor of ceil(num_params / 2)
  // elements that holds them two to an element (a Tensor has no 16-bit dtype).
  std::vector<uint16_t> bf16_params_;
  Tensor bf16_params_device_;
  // bf16 on a GPU (rounds_operands_once()): per layer, the bits of its GEMM input of the last
  // forward() (rounded there once, or written by the layer below's epilogue; its
  // weight-gradient GEMM reads them again), then two more buffers for the dz of the layers
  // whose backward runs, alternating (layer i's in bf16_dz_bits(i): rounded once for its two
  // GEMMs, or written by the input-gradient GEMM above while that GEMM reads the other); for
  // up to capacity_ rows, two bits to an int32 element, allocated by the first forward() that
  // needs them (the trainer's first step is plain, so no captured step allocates).
  std::vector<Tensor> bf16_operands_;
  // Per layer, in the last forward(): whether bf16_operands_[i] holds bits the layer below's
  // GEMM wrote (emits_bf16_output(i - 1)); layer i then rounds no input.
  std::vector<bool> bf16_input_written_;
  bool bf16_params_current_ = false;
  // For each bf16_plain_layer(i): the bfloat16 bits of its input in the last forward(), written
  // by the pass that wrote the input (or rounded from the model's input), read by its forward
  // and again by its backward's weight gradient. bf16_dz_: the bits of the dz being
  // back-propagated, read by the layer's two backward GEMMs.
  std::vector<std::vector<uint16_t>> bf16_inputs_;
  std::vector<uint16_t> bf16_dz_;

  // Training buffers for up to `capacity_` rows; batches use row views of them.
  int64_t capacity_ = 0;
  Tensor input_;              // the last forward()'s x (a handle, not a copy)
  DropoutStep dropout_step_;  // the last forward()'s masks, for backward()
  // Per layer: z = linear output, a = f(z), out = a after dropout (the next layer's input;
  // out is a without a dropout, and a is out with one, except after softmax, whose backward
  // reads a).
  std::vector<Tensor> pre_, act_, out_;
  std::vector<Tensor> grad_;  // per layer: d loss / d out_i, then d loss / d z_i in place
  // Per layer whose ReLU can run in its forward GEMM's epilogue (on a CUDA device): int32
  // [capacity_, relu_mask_words(units)], the ReLU's bit mask that the layer above's input-gradient
  // GEMM reads (DRELU); undefined elsewhere.
  std::vector<Tensor> relu_mask_;
  // A fused model's workspace on its device: the backward kernel's per-block partial weight
  // and bias gradients of layers 1..L-1, and the forward's and the backward's block counters
  // (int32 [2], zero between passes); grown by forward(), never inside a step of a size seen.
  Tensor fused_partials_, fused_done_;
  std::vector<std::pair<Tensor, Tensor>> weight_grad_factors_;  // backward_outer()'s {dz, x}
  // Per layer with a norm: n = norm(z) (the activation's input; z itself without a norm) and
  // the statistics the backward reads (layer norm: mean and rstd per row; batch norm: mean and
  // biased variance per column). Per residual layer: d loss / d z, apart from grad_, which
  // keeps d loss / d out_i for the skip connection.
  std::vector<Tensor> normed_, norm_mean_, norm_stat_, residual_grad_;
  std::function<void(Tensor&)> norm_sync_;
  std::vector<Tensor> norm_sums_;  // per batch norm, [2, units]: dweight, dbias summed over ranks
  int64_t norm_rows_ = 0;          // the rows the last training forward's statistics cover
};

}  // namespace mlpx
