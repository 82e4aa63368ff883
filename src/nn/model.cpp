#include "mlpx/model.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "core/names.h"
#include "math/activation.h"
#include "math/streams.h"
#include "mlpx/dropout.h"
#include "mlpx/error.h"
#include "mlpx/gemm.h"
#include "mlpx/linear.h"
#include "mlpx/norm.h"
#include "mlpx/residual.h"
#include "ops/fused_mlp.h"
#include "ops/gemm_bf16_weight.h"
#include "ops/linear_bf16.h"

namespace mlpx {

namespace {
int64_t elements_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// A rowwise activation (softmax) is not fused with the dropout: it is applied, then dropped.
bool is_rowwise(Activation activation) {
  return math::visit(activation, [](auto member) { return decltype(member)::kIsRowwise; });
}
// Where a layer's bias and activation are computed: in its GEMM's epilogue (cuBLASLt, on a
// CUDA device) when the activation table gives the member an epilogue, else on the plain path
// (GEMM, bias kernel, activation kernel). The one place that decides it: a layer whose output
// goes anywhere but straight into its activation (a dropout here; a norm between the GEMM and
// the activation) returns kPlain. bf16 stays plain here; Sequential::epilogue_of gives an
// unfused GPU model's bf16 layers the bf16 forms. The fused ReLU writes only the activation, not z:
// the ReLU's backward then reads the output, whose sign is z's (NaN: see mlpx/linear.h); so
// does the fused backward kernel for layer 0 of a fused model (fused_layers).
LinearEpilogue layer_epilogue(const LayerSpec& layer, Device device, Precision precision) {
  // The epilogue ends the layer at its activation and keeps no z: not for a norm between the
  // two, a residual add after them, or a Linear without a bias.
  if (!device.is_cuda() || precision == Precision::kBf16 || layer.dropout > 0.0 ||
      layer.norm != Norm::kNone || layer.residual || !layer.bias) {
    return LinearEpilogue::kPlain;
  }
  const LinearEpilogue epilogue = math::visit(layer.activation, [](auto member) {
    using Member = decltype(member);
    if (Member::kEpilogueIsGelu) return LinearEpilogue::kBiasGeluTanh;
    if (Member::kEpilogueIsBiasRelu) return LinearEpilogue::kBiasRelu;
    if (Member::kEpilogueIsBias) return LinearEpilogue::kBias;
    return LinearEpilogue::kPlain;
  });
  // gelu_tanh keeps z (pre_) as the epilogue's aux, whose leading dimension (the units) cuBLASLt
  // wants a multiple of 8: other widths stay plain.
  if (epilogue == LinearEpilogue::kBiasGeluTanh && !gelu_tanh_epilogue_fits(layer.units)) {
    return LinearEpilogue::kPlain;
  }
  return epilogue;
}
}  // namespace

Sequential::Sequential(int64_t inputs, std::vector<LayerSpec> layers, DType dtype, Device device)
    : inputs_(inputs), layers_(std::move(layers)) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    LayerSpec& layer = layers_[i];
    if (!layer.alpha) layer.alpha = default_activation_alpha(layer.activation);
    MLPX_CHECK(layer.dropout >= 0.0 && layer.dropout < 1.0, ValueError, "Sequential: layer ", i,
               ": expected a dropout in [0, 1), found ", layer.dropout);
  }
  MLPX_CHECK(dtype != DType::kInt32, ShapeError,
             "Sequential: expected float32 or float64 parameters, found int32");
  layout_ = parameter_layout(inputs_, layers_);
  tensors_.assign(layers_.size(), LayerTensors{});
  for (size_t k = 0; k < layout_.size(); ++k) {
    LayerTensors& t = tensors_[layout_[k].layer];
    const int index = static_cast<int>(k);
    switch (layout_[k].kind) {
      case ParameterKind::kWeight:
        t.weight = index;
        break;
      case ParameterKind::kBias:
        t.bias = index;
        break;
      case ParameterKind::kNorm:
        (t.norm_weight < 0 ? t.norm_weight : t.norm_bias) = index;
        break;
    }
  }
  const Parameter& last = layout_.back();
  const int64_t total = last.offset + elements_of(last.shape);
  params_ = Tensor::zeros({total}, dtype, device);
  grads_ = Tensor::zeros({total}, dtype, device);
  buffer_layout_ = buffer_layout(layers_);
  for (size_t k = 0; k < buffer_layout_.size(); k += 3) {
    tensors_[buffer_layout_[k].layer].buffers = static_cast<int>(k);
  }
  if (!buffer_layout_.empty()) {
    const Parameter& b = buffer_layout_.back();
    buffers_ = Tensor::zeros({b.offset + b.shape[0]}, dtype, device);
  }
}

std::vector<Parameter> Sequential::parameter_layout(int64_t inputs,
                                                    const std::vector<LayerSpec>& layers) {
  MLPX_CHECK(inputs > 0, ShapeError, "Sequential: expected inputs > 0, found ", inputs);
  MLPX_CHECK(!layers.empty(), ShapeError, "Sequential: expected at least one layer, found none");
  std::vector<Parameter> layout;
  int64_t offset = 0, fan_in = inputs;
  for (size_t i = 0; i < layers.size(); ++i) {
    const int64_t units = layers[i].units;
    MLPX_CHECK(units > 0, ShapeError, "Sequential: layer ", i, ": expected units > 0, found ",
               units);
    MLPX_CHECK(!layers[i].residual || units == fan_in, ValueError, "config: model.layers[", i,
               "]: residual: expected units equal to the layer's input width ", fan_in,
               ", found units ", units);
    const std::string prefix = "layers." + std::to_string(i) + ".";
    layout.push_back({prefix + "weight", offset, {units, fan_in}, ParameterKind::kWeight, i});
    offset += units * fan_in;
    if (layers[i].bias) {
      layout.push_back({prefix + "bias", offset, {units}, ParameterKind::kBias, i});
      offset += units;
    }
    if (layers[i].norm != Norm::kNone) {
      layout.push_back({prefix + "norm.weight", offset, {units}, ParameterKind::kNorm, i});
      offset += units;
      layout.push_back({prefix + "norm.bias", offset, {units}, ParameterKind::kNorm, i});
      offset += units;
    }
    fan_in = units;
  }
  return layout;
}

std::vector<Parameter> Sequential::buffer_layout(const std::vector<LayerSpec>& layers) {
  std::vector<Parameter> layout;
  int64_t offset = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].norm != Norm::kBatch) continue;
    const int64_t units = layers[i].units;
    const std::string prefix = "layers." + std::to_string(i) + ".norm.";
    layout.push_back({prefix + "running_mean", offset, {units}, ParameterKind::kNorm, i});
    offset += units;
    layout.push_back({prefix + "running_var", offset, {units}, ParameterKind::kNorm, i});
    offset += units;
    layout.push_back({prefix + "num_batches_tracked", offset, {1}, ParameterKind::kNorm, i});
    offset += 1;
  }
  return layout;
}

std::vector<std::pair<std::string, Tensor>> Sequential::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> views;
  for (const Parameter& b : buffer_layout_) {
    views.emplace_back(b.name, buffers_.flat_view(b.offset, b.shape));
  }
  return views;
}

std::vector<std::pair<std::string, Tensor>> Sequential::named_views(const Tensor& flat) const {
  MLPX_CHECK(flat.defined() && flat.numel() == num_params(), ShapeError,
             "Sequential: expected a flat buffer of ", num_params(), " elements, found ",
             flat.defined() ? flat.describe() : "an undefined tensor");
  std::vector<std::pair<std::string, Tensor>> views;
  for (size_t k = 0; k < layout_.size(); ++k) {
    views.emplace_back(layout_[k].name, parameter_view(flat, k));
  }
  return views;
}

void Sequential::set_precision(Precision precision) {
  MLPX_CHECK(precision != Precision::kTf32 || device().is_cuda(), ValueError,
             "Sequential: precision ", precision_name(precision), " needs a CUDA device, found ",
             device().str());
  MLPX_CHECK(precision == Precision::kFp32 || dtype() == DType::kFloat32, ValueError,
             "Sequential: precision ", precision_name(precision),
             " rounds float32 GEMM inputs; expected a float32 model, found ", dtype_name(dtype()));
  precision_ = precision;
  bf16_params_current_ = false;
  bf16_operands_.clear();  // of a forward() in the former precision: not for the next backward
  if (!keeps_bf16_params()) {
    bf16_params_ = {};
    bf16_params_device_ = Tensor();
  }
}

bool Sequential::keeps_bf16_params() const {
  return precision_ == Precision::kBf16 && dtype() == DType::kFloat32;
}

uint16_t* Sequential::bf16_params_data() {
  if (device().is_cuda()) {
    return bf16_params_device_.defined()
               ? reinterpret_cast<uint16_t*>(bf16_params_device_.data<int32_t>())
               : nullptr;
  }
  return bf16_params_.empty() ? nullptr : bf16_params_.data();
}

const uint16_t* Sequential::bf16_params_data() const {
  if (device().is_cuda()) {
    return bf16_params_device_.defined()
               ? reinterpret_cast<const uint16_t*>(bf16_params_device_.data<int32_t>())
               : nullptr;
  }
  return bf16_params_.empty() ? nullptr : bf16_params_.data();
}

uint16_t* Sequential::bf16_params_for_step() {
  if (!keeps_bf16_params()) return nullptr;
  if (!bf16_params_current_) {
    if (device().is_cuda()) {
      // Allocated once (outside any captured step: the trainer asks before its capture).
      if (!bf16_params_device_.defined()) {
        bf16_params_device_ = Tensor({(num_params() + 1) / 2}, DType::kInt32, device());
      }
    } else {
      bf16_params_.resize(static_cast<size_t>(num_params()));
    }
    ops::round_to_bf16_bits(params_, bf16_params_data());  // one kernel on a GPU
    bf16_params_current_ = true;
  }
  return bf16_params_data();
}

bool Sequential::rounds_operands_once() const { return keeps_bf16_params() && device().is_cuda(); }

void Sequential::ensure_bf16_operands() {
  const size_t layers = layers_.size();
  if (bf16_operands_.size() == layers + 2 &&
      bf16_operands_[0].numel() * 2 >= capacity_ * in_features(0)) {
    return;
  }
  bf16_operands_.assign(layers + 2, Tensor());
  int64_t widest = 0;
  for (size_t k = 0; k < layers; ++k) {
    bf16_operands_[k] = Tensor({(capacity_ * in_features(k) + 1) / 2}, DType::kInt32, device());
    widest = std::max(widest, layers_[k].units);
  }
  bf16_operands_[layers] = Tensor({(capacity_ * widest + 1) / 2}, DType::kInt32, device());
  bf16_operands_[layers + 1] = Tensor({(capacity_ * widest + 1) / 2}, DType::kInt32, device());
}

uint16_t* Sequential::bf16_operand_bits(size_t k) {
  return reinterpret_cast<uint16_t*>(bf16_operands_[k].data<int32_t>());
}

uint16_t* Sequential::bf16_dz_bits(size_t i) { return bf16_operand_bits(layers_.size() + i % 2); }

bool Sequential::emits_bf16_output(size_t i, int64_t batch) const {
  return precision_ == Precision::kBf16 && epilogue_of(i) != LinearEpilogue::kPlain &&
         i + 1 < layers_.size() && !layers_[i + 1].residual && batch > 1;
}

bool Sequential::bf16_dz_from_gemm_above(size_t i) const {
  if (precision_ != Precision::kBf16 || i + 1 >= layers_.size() || layers_[i + 1].residual) {
    return false;
  }
  const LinearEpilogue epilogue = epilogue_of(i);
  return epilogue == LinearEpilogue::kBias ||
         (epilogue == LinearEpilogue::kBiasRelu && relu_backward_in_gemm_above(i));
}

void Sequential::layer_linear_forward(size_t i, const Tensor& h, Tensor& z) {
  if (!rounds_operands_once()) {
    linear_forward(h, weight_view(i), bias(i), z, precision_, weight_bf16(i));
    return;
  }
  ensure_bf16_operands();
  uint16_t* input_bits = bf16_operand_bits(i);
  if (!bf16_input_written_[i]) ops::round_to_bf16_bits(h, input_bits);
  ops::gemm_bf16_bits(h, input_bits, false, weight_view(i), weight_bf16(i), true, z);
  if (bias(i).defined()) add_bias(z, bias(i));
}

void Sequential::layer_linear_backward(size_t i, const Tensor& below, const Tensor& dz,
                                       Tensor& dweight, Tensor& dbias, Tensor* dx) {
  if (!rounds_operands_once() || bf16_operands_.size() != layers_.size() + 2 || below.rows() == 0) {
    linear_backward(below, weight_view(i), dz, dweight, dbias, dx, precision_, weight_bf16(i));
    return;
  }
  // below's bits are the forward's (the same tensor, unchanged since); dz's were written by
  // the input-gradient GEMM above, or are rounded here once for both GEMMs.
  const uint16_t* input_bits = bf16_operand_bits(i);
  uint16_t* dz_bits = bf16_dz_bits(i);
  if (!bf16_dz_from_gemm_above(i)) ops::round_to_bf16_bits(dz, dz_bits);
  const LayerSpec& layer = layers_[i];
  if (layer.norm == Norm::kNone && layer.dropout == 0.0 && !layer.residual) {
    // A plain layer (the CPU's bf16_plain_layer rule): its bias gradient sums dz's bf16
    // values, in the weight gradient's epilogue (BGRADB).
    ops::linear_weight_grad_bf16(below, input_bits, dz, dz_bits, dweight, dbias);
  } else {
    ops::gemm_bf16_bits(dz, dz_bits, true, below, input_bits, false, dweight);  // dz^T below
    if (dbias.defined()) sum_rows(dz, dbias);
  }
  if (dx == nullptr) return;
  if (i > 0 && bf16_dz_from_gemm_above(i - 1)) {
    // The layer below's dz straight as bits, its ReLU backward (if any) in the epilogue.
    const int64_t batch = dz.rows();
    Tensor mask = relu_backward_in_gemm_above(i - 1) ? relu_mask_[i - 1].rows(0, batch) : Tensor();
    ops::linear_input_grad_bf16(dz, dz_bits, weight_view(i), weight_bf16(i),
                                mask.defined() ? &mask : nullptr, *dx, bf16_dz_bits(i - 1));
    return;
  }
  ops::gemm_bf16_bits(dz, dz_bits, false, weight_view(i), weight_bf16(i), false, *dx);
}

bool Sequential::bf16_plain_layer(size_t i) const {
  const LayerSpec& layer = layers_[i];
  // The CPU's passes (a GPU model rounds its operands once per step instead: rounds_operands_once).
  return keeps_bf16_params() && device().is_cpu() && !fused_ && layer.norm == Norm::kNone &&
         layer.dropout == 0.0 && !layer.residual;
}

uint16_t* Sequential::bf16_input_bits(size_t i, int64_t batch) {
  if (!bf16_plain_layer(i)) return nullptr;
  bf16_inputs_.resize(layers_.size());
  std::vector<uint16_t>& bits = bf16_inputs_[i];
  const auto count = static_cast<size_t>(batch * in_features(i));
  if (bits.size() < count) bits.resize(count);
  return bits.data();
}

const uint16_t* Sequential::weight_bf16(size_t i) const {
  if (!bf16_params_current_ || !keeps_bf16_params()) return nullptr;
  return bf16_params_data() + layer_offset(i);
}

std::string Sequential::fused_unfit_reason() const {
  std::vector<int64_t> widths;
  std::vector<Activation> activations;
  std::vector<double> dropouts;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const LayerSpec& layer = layers_[i];
    // The kernels compute Linear (with its bias) -> activation, layer 0's backward included.
    if (layer.norm != Norm::kNone || layer.residual || !layer.bias) {
      return detail::concat(
          "expected plain layers (Linear with a bias, then the activation), found layer ", i,
          layer.norm != Norm::kNone ? " with a norm"
          : layer.residual          ? " with a residual connection"
                                    : " without a bias");
    }
    widths.push_back(layer.units);
    activations.push_back(layer.activation);
    dropouts.push_back(layer.dropout);
  }
  return fused_mlp_unfit_reason(widths, activations, dropouts, dtype(), precision_, device());
}

void Sequential::set_fused(bool on) {
  if (on) {
    const std::string reason = fused_unfit_reason();
    MLPX_CHECK(reason.empty(), ValueError, "train.fused: on: ", reason);
  }
  fused_ = on;
}

void Sequential::set_fused(FusedMode mode) {
  if (mode == FusedMode::kAuto) {
    set_fused(fused_unfit_reason().empty());
  } else {
    set_fused(mode == FusedMode::kOn);
  }
}

void Sequential::ensure_fused_workspace(int64_t batch) {
  std::vector<int64_t> widths;
  for (const LayerSpec& layer : layers_) widths.push_back(layer.units);
  const int64_t size = fused_mlp_partials_size(widths, batch, precision_);
  if (!fused_partials_.defined() || fused_partials_.numel() < size) {
    fused_partials_ = Tensor({size}, DType::kFloat32, device());
  }
  if (!fused_done_.defined()) fused_done_ = Tensor::zeros({2}, DType::kInt32, device());
}

std::vector<FusedLayer> Sequential::fused_layers(int64_t batch) const {
  std::vector<FusedLayer> layers(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    FusedLayer& layer = layers[i];
    if (i > 0) {
      layer.weight = weight(i);
      layer.bias = bias(i);
    }
    layer.activation = layers_[i].activation;
    layer.alpha = *layers_[i].alpha;
    layer.act = act_[i].rows(0, batch);
    // Layer 0 may run in its GEMM's epilogue, which keeps no z: the backward kernel then reads
    // the output in its place (a ReLU's sign is z's; identity's output is z). gelu_tanh's
    // epilogue keeps z.
    const bool kept_z = i > 0 || epilogue_of(i) == LinearEpilogue::kPlain ||
                        epilogue_of(i) == LinearEpilogue::kBiasGeluTanh;
    layer.pre = kept_z ? pre_[i].rows(0, batch) : layer.act;
    layer.dpre = grad_[i].rows(0, batch);
  }
  return layers;
}

void Sequential::init(Init init, double param, uint64_t seed) {
  bf16_params_current_ = false;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Tensor w = weight(i);
    init_tensor(w, init, in_features(i), layers_[i].units, param, seed, math::kStreamInit + i);
    if (layers_[i].bias) {
      Tensor b = bias(i);
      if (init_draws_bias(init)) {
        init_tensor(b, init, in_features(i), layers_[i].units, param, seed,
                    math::kStreamInitBias + i);
      } else {
        b.fill_zero();
      }
    }
    if (layers_[i].norm != Norm::kNone) {
      const size_t units = static_cast<size_t>(layers_[i].units);
      norm_weight(i).copy_from(
          dtype() == DType::kFloat64
              ? Tensor::from_vector(std::vector<double>(units, 1.0), {layers_[i].units})
              : Tensor::from_vector(std::vector<float>(units, 1.0f), {layers_[i].units}));
      norm_bias(i).fill_zero();
    }
    if (layers_[i].norm == Norm::kBatch) {
      buffer_view(i, 0).fill_zero();
      buffer_view(i, 1).copy_from(norm_weight(i));  // running_var starts at 1
      buffer_view(i, 2).fill_zero();
    }
  }
}

Tensor Sequential::parameter_view(const Tensor& flat, size_t k) const {
  const Parameter& p = layout_.at(k);
  return flat.flat_view(p.offset, p.shape);
}
namespace {
// Tensor k of the layout as a view of flat, or an undefined Tensor for an absent one (k < 0).
Tensor view_or_none(const std::vector<Parameter>& layout, const Tensor& flat, int k) {
  if (k < 0) return {};
  const Parameter& p = layout[static_cast<size_t>(k)];
  return flat.flat_view(p.offset, p.shape);
}
}  // namespace

Tensor Sequential::buffer_view(size_t layer, size_t k) const {
  return view_or_none(buffer_layout_, buffers_, tensors_.at(layer).buffers + static_cast<int>(k));
}
Tensor Sequential::weight_view(size_t i) const {
  return view_or_none(layout_, params_, tensors_.at(i).weight);
}
Tensor Sequential::weight(size_t i) const { return weight_view(i); }
Tensor Sequential::bias(size_t i) const {
  return view_or_none(layout_, params_, tensors_.at(i).bias);
}
Tensor Sequential::weight_grad(size_t i) const {
  return view_or_none(layout_, grads_, tensors_.at(i).weight);
}
Tensor Sequential::bias_grad(size_t i) const {
  return view_or_none(layout_, grads_, tensors_.at(i).bias);
}
Tensor Sequential::norm_weight(size_t i) const {
  return view_or_none(layout_, params_, tensors_.at(i).norm_weight);
}
Tensor Sequential::norm_bias(size_t i) const {
  return view_or_none(layout_, params_, tensors_.at(i).norm_bias);
}
Tensor Sequential::norm_weight_grad(size_t i) const {
  return view_or_none(layout_, grads_, tensors_.at(i).norm_weight);
}
Tensor Sequential::norm_bias_grad(size_t i) const {
  return view_or_none(layout_, grads_, tensors_.at(i).norm_bias);
}
int64_t Sequential::layer_offset(size_t i) const {
  return layout_[static_cast<size_t>(tensors_.at(i).weight)].offset;
}

LinearEpilogue Sequential::epilogue_of(size_t i) const {
  if (!gemm_epilogues_) return LinearEpilogue::kPlain;
  // bf16: the epilogues from bf16 operands on an unfused GPU model of float32 (a fused model's
  // layer 0 and the CPU keep their own passes).
  if (precision_ == Precision::kBf16) {
    if (!rounds_operands_once() || fused_) return LinearEpilogue::kPlain;
    // layer_epilogue's rule for the layer (its precision argument only keeps bf16 plain), then
    // the epilogues with a bf16 form (ops::linear_forward_epilogue_bf16): bias, bias+ReLU.
    const LinearEpilogue epilogue = layer_epilogue(layers_[i], device(), Precision::kFp32);
    return epilogue == LinearEpilogue::kBias || epilogue == LinearEpilogue::kBiasRelu
               ? epilogue
               : LinearEpilogue::kPlain;
  }
  return layer_epilogue(layers_[i], device(), precision_);
}

bool Sequential::gelu_backward_in_gemm_above(size_t i) const {
  // As the ReLU's: the layer above's input-gradient GEMM applies layer i's gelu_tanh backward
  // (DGELU, reading the z layer i's epilogue kept) and forms layer i's bias gradient (BGRAD).
  if (fused_ && precision_ != Precision::kTf32) return false;
  return i + 1 < layers_.size() && epilogue_of(i) == LinearEpilogue::kBiasGeluTanh &&
         !layers_[i + 1].residual;
}

bool Sequential::relu_backward_in_gemm_above(size_t i) const {
  // The layer above's input gradient is d loss / d out_i, which the ReLU's backward turns into
  // d loss / d z_i: in that GEMM's epilogue when layer i fused its ReLU (and wrote its mask),
  // unless a residual add of the layer above comes between the GEMM and the ReLU's backward.
  // A fused model's layers above 0 run in its kernels, whose backward applies layer 0's ReLU.
  if (fused_ && precision_ != Precision::kTf32) return false;
  return i + 1 < layers_.size() && epilogue_of(i) == LinearEpilogue::kBiasRelu &&
         !layers_[i + 1].residual && i < relu_mask_.size() && relu_mask_[i].defined();
}

void Sequential::ensure_batch(int64_t batch) {
  if (batch <= capacity_) return;
  pre_.clear();
  act_.clear();
  out_.clear();
  grad_.clear();
  normed_.clear();
  norm_mean_.clear();
  norm_stat_.clear();
  residual_grad_.clear();
  norm_sums_.clear();
  relu_mask_.clear();
  for (size_t i = 0; i < layers_.size(); ++i) {
    const LayerSpec& layer = layers_[i];
    const Shape shape{batch, layer.units};
    Tensor z(shape, dtype(), device());
    pre_.push_back(z);
    // The activation's input: z, or the norm's output.
    const bool normed = layer.norm != Norm::kNone;
    Tensor n = normed ? Tensor(shape, dtype(), device()) : z;
    normed_.push_back(n);
    const Shape stat_shape{layer.norm == Norm::kLayer ? batch : layer.units};
    norm_mean_.push_back(normed ? Tensor(stat_shape, dtype(), device()) : Tensor());
    norm_stat_.push_back(normed ? Tensor(stat_shape, dtype(), device()) : Tensor());
    // identity without dropout keeps no second copy: its output is its input. With a dropout,
    // an elementwise activation and the dropout write the output in one pass, and the
    // backward regenerates f(n) and the mask from n: no third buffer.
    const bool drops = layer.dropout > 0.0;
    Tensor a =
        layer.activation == Activation::kIdentity && !drops ? n : Tensor(shape, dtype(), device());
    act_.push_back(a);
    // A residual layer adds its input into a buffer of its own: a (which softmax's, sigmoid's
    // and tanh's backward read) and n stay as they were.
    const bool own_out = (drops && is_rowwise(layer.activation)) || layer.residual;
    out_.push_back(own_out ? Tensor(shape, dtype(), device()) : a);
    grad_.emplace_back(shape, dtype(), device());
    residual_grad_.push_back(layer.residual ? Tensor(shape, dtype(), device()) : Tensor());
    norm_sums_.push_back(layer.norm == Norm::kBatch ? Tensor({2, layer.units}, dtype(), device())
                                                    : Tensor());
    // The ReLU mask, for every layer that may write it (relu_backward_in_gemm_above decides at
    // each step): a few bits a row, allocated with the batch's buffers, never inside a step.
    const bool may_mask = device().is_cuda() && i + 1 < layers_.size() &&
                          math::visit(layer.activation, [](auto member) {
                            return decltype(member)::kEpilogueIsBiasRelu;
                          });
    relu_mask_.push_back(
        may_mask ? Tensor({batch, relu_mask_words(layer.units)}, DType::kInt32, device())
                 : Tensor());
  }
  capacity_ = batch;
}

namespace {

DropoutMask mask_of(const DropoutStep& step, const LayerSpec& layer, size_t i) {
  DropoutMask mask;
  mask.p = layer.dropout;
  mask.seed = step.seed;
  mask.layer = i;
  mask.step = step.step;
  mask.step_offset = step.step_offset;
  mask.first_element = step.first_row * layer.units;
  return mask;
}

}  // namespace

void Sequential::norm_eval(size_t i, const Tensor& z, Tensor& n) const {
  const LayerSpec& layer = layers_[i];
  if (layer.norm == Norm::kLayer) {
    Tensor mean({z.rows()}, dtype(), device()), rstd({z.rows()}, dtype(), device());
    layer_norm_forward(z, norm_weight(i), norm_bias(i), layer.norm_eps, n, mean, rstd);
  } else {
    batch_norm_apply(z, buffer_view(i, 0), buffer_view(i, 1), norm_weight(i), norm_bias(i),
                     layer.norm_eps, n);
  }
}

void Sequential::norm_forward(size_t i, const Tensor& z, Tensor& n) {
  const LayerSpec& layer = layers_[i];
  const int64_t batch = z.rows();
  if (layer.norm == Norm::kLayer) {
    Tensor mean = norm_mean_[i].rows(0, batch), rstd = norm_stat_[i].rows(0, batch);
    layer_norm_forward(z, norm_weight(i), norm_bias(i), layer.norm_eps, n, mean, rstd);
    return;
  }
  Tensor running_mean = buffer_view(i, 0), running_var = buffer_view(i, 1);
  Tensor mean = norm_mean_[i], var = norm_stat_[i], batches = buffer_view(i, 2);
  // Synchronised: each rank's share of the sums over the whole batch, then summed.
  const double count = static_cast<double>(norm_rows_);
  batch_norm_mean(z, count, mean);
  if (norm_sync_) norm_sync_(mean);
  batch_norm_variance(z, mean, count, var);
  if (norm_sync_) norm_sync_(var);
  batch_norm_update_running(mean, var, count, layer.norm_momentum, running_mean, running_var,
                            batches);
  batch_norm_apply(z, mean, var, norm_weight(i), norm_bias(i), layer.norm_eps, n);
}

void Sequential::norm_backward(size_t i, const Tensor& z, const Tensor& dn, Tensor& dz) {
  const LayerSpec& layer = layers_[i];
  const int64_t batch = z.rows();
  Tensor dweight = norm_weight_grad(i), dbias = norm_bias_grad(i);
  if (layer.norm == Norm::kLayer) {
    layer_norm_backward(z, norm_weight(i), norm_mean_[i].rows(0, batch),
                        norm_stat_[i].rows(0, batch), dn, dz, dweight, dbias);
    return;
  }
  batch_norm_param_grads(z, norm_mean_[i], norm_stat_[i], layer.norm_eps, dn, dweight, dbias);
  Tensor dweight_sum = dweight, dbias_sum = dbias;
  if (norm_sync_) {
    // dx needs the sums over the whole batch; the parameter gradients stay this rank's own (the
    // gradient sum over the ranks adds them up after the backward pass).
    dweight_sum = norm_sums_[i].flat_view(0, {layer.units});
    dbias_sum = norm_sums_[i].flat_view(layer.units, {layer.units});
    dweight_sum.copy_from(dweight);
    dbias_sum.copy_from(dbias);
    Tensor sums = norm_sums_[i];
    norm_sync_(sums);
  }
  batch_norm_input_grad(z, norm_mean_[i], norm_stat_[i], norm_weight(i), dweight_sum, dbias_sum,
                        layer.norm_eps, static_cast<double>(norm_rows_), dn, dz);
}

void Sequential::norm_sync_without_rows(const DropoutStep& step) {
  if (!norm_sync_) return;
  bool any = false;
  for (const LayerSpec& layer : layers_) any = any || layer.norm == Norm::kBatch;
  if (!any) return;
  // The training step's batch-norm sums in the order forward() and backward() reach them, each
  // over this rank's no rows (zeros), which also updates the running statistics as elsewhere.
  ensure_batch(1);
  norm_rows_ = step.batch_rows;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (layers_[i].norm != Norm::kBatch) continue;
    Tensor none = pre_[i].rows(0, 0), out = normed_[i].rows(0, 0);
    norm_forward(i, none, out);
  }
  for (size_t i = layers_.size(); i-- > 0;) {
    if (layers_[i].norm != Norm::kBatch) continue;
    Tensor none = pre_[i].rows(0, 0), grad = grad_[i].rows(0, 0);
    norm_backward(i, none, none, grad);
  }
}

bool Sequential::fuses_cross_entropy() const {
  return fused_ && precision_ != Precision::kTf32 &&
         layers_.back().activation == Activation::kIdentity;
}

Tensor Sequential::forward(const Tensor& x, const DropoutStep& step,
                           const FusedCrossEntropy& loss) {
  MLPX_CHECK(fuses_cross_entropy(), ValueError,
             "forward: the cross-entropy in the forward kernel needs a fused model with an "
             "identity last layer, found ",
             fused_ ? "the last layer's " + activation_name(layers_.back().activation)
                    : std::string("an unfused model"));
  return forward_pass(x, step, &loss);
}

Tensor Sequential::forward(const Tensor& x, const DropoutStep& step) {
  return forward_pass(x, step, nullptr);
}

Tensor Sequential::forward_pass(const Tensor& x, const DropoutStep& step,
                                const FusedCrossEntropy* loss) {
  MLPX_CHECK(x.dim() == 2 && x.cols() == inputs_ && x.dtype() == dtype() && x.device() == device(),
             ShapeError, "forward: expected [B, ", inputs_, "] ", dtype_name(dtype()), " ",
             device().str(), ", found ", x.describe());
  const int64_t batch = x.rows();
  ensure_batch(batch);
  input_ = x;
  dropout_step_ = step;
  bf16_params_for_step();  // the GEMMs' bf16 copy of the weights, made again only if stale
  norm_rows_ = norm_sync_ && step.batch_rows > 0 ? step.batch_rows : batch;
  Tensor h = x;
  if (rounds_operands_once()) bf16_input_written_.assign(layers_.size() + 1, false);
  // Fused: layer 0 as below, then layers 1..L-1 in one kernel (set_fused checked the fit).
  const size_t unfused = fused_ && precision_ != Precision::kTf32 ? 1 : layers_.size();
  for (size_t i = 0; i < unfused; ++i) {
    const LayerSpec& layer = layers_[i];
    Tensor z = pre_[i].rows(0, batch);
    Tensor a = act_[i].rows(0, batch), out = out_[i].rows(0, batch);
    const LinearEpilogue epilogue = epilogue_of(i);
    if (epilogue == LinearEpilogue::kBiasGeluTanh) {  // z is kept: the GELU's backward reads it
      linear_forward_gelu_tanh(h, weight_view(i), bias(i), z, a, precision_);
      h = out;
      continue;
    }
    if (epilogue != LinearEpilogue::kPlain) {
      // The epilogue writes the activation (for identity a is z): z itself is not kept; the
      // ReLU's mask too where the layer above's backward applies it.
      Tensor mask = relu_backward_in_gemm_above(i) ? relu_mask_[i].rows(0, batch) : Tensor();
      if (precision_ == Precision::kBf16) {
        // From bf16 operands; a hidden layer's output only as the next GEMM's bits.
        ensure_bf16_operands();
        uint16_t* input_bits = bf16_operand_bits(i);
        if (!bf16_input_written_[i]) ops::round_to_bf16_bits(h, input_bits);
        const bool bits_out = emits_bf16_output(i, batch);
        ops::linear_forward_epilogue_bf16(h, input_bits, weight_view(i), weight_bf16(i), bias(i),
                                          epilogue, bits_out ? nullptr : &a,
                                          bits_out ? bf16_operand_bits(i + 1) : nullptr,
                                          mask.defined() ? &mask : nullptr);
        bf16_input_written_[i + 1] = bits_out;
        h = out;
        continue;
      }
      linear_forward_epilogue(h, weight_view(i), bias(i), a, epilogue, precision_,
                              mask.defined() ? &mask : nullptr);
      h = out;
      continue;
    }
    if (uint16_t* h_bits = bf16_input_bits(i, batch)) {
      // One pass after the GEMM: bias, activation and the next GEMM's rounding of a. The
      // input's bits were written by the layer below, if it is plain too, else here.
      if (i == 0 || !bf16_plain_layer(i - 1)) ops::round_to_bf16_bits(h, h_bits);
      uint16_t* a_bits = i + 1 < layers_.size() ? bf16_input_bits(i + 1, batch) : nullptr;
      ops::linear_activation_forward_bf16(h, h_bits, weight_view(i), weight_bf16(i), bias(i),
                                          layer.activation, *layer.alpha, z, a, a_bits);
      h = out;
      continue;
    }
    layer_linear_forward(i, h, z);
    Tensor n = normed_[i].rows(0, batch);
    if (layer.norm != Norm::kNone) norm_forward(i, z, n);
    // A residual layer's branch ends in a (its own buffer whenever it is not n), then out = h + a.
    Tensor branch = layer.residual ? a : out;
    if (layer.dropout > 0.0) {
      if (is_rowwise(layer.activation)) {
        activation_forward(layer.activation, n, a, layer.alpha);
        if (layer.residual) {
          branch = out;  // softmax's backward reads a: the dropped copy goes to out first
        }
        dropout_forward(Activation::kIdentity, a, branch, mask_of(step, layer, i));
      } else {
        dropout_forward(layer.activation, n, branch, mask_of(step, layer, i), layer.alpha);
      }
    } else if (layer.activation != Activation::kIdentity) {
      activation_forward(layer.activation, n, a, layer.alpha);
    }
    if (layer.residual) residual_add(h, branch, out);
    h = out;
  }
  if (unfused < layers_.size()) {
    ensure_fused_workspace(batch);
    std::vector<FusedLayer> layers = fused_layers(batch);
    if (loss != nullptr && loss->loss_sum.defined()) {  // the step's end in the kernel too
      FusedCrossEntropy with_counter = *loss;
      with_counter.blocks_done = fused_done_.rows(0, 1);
      fused_mlp_forward(layers, precision_, &with_counter);
    } else {
      fused_mlp_forward(layers, precision_, loss);
    }
    h = out_.back().rows(0, batch);
  }
  return h;
}

void Sequential::backward(const Tensor& doutput,
                          const std::function<void(size_t layer)>& after_layer) {
  backward_layers(doutput, after_layer, /*weight_grads=*/true);
}

void Sequential::backward_outer(const Tensor& doutput) {
  MLPX_CHECK(input_.defined() && input_.rows() == 1, ShapeError,
             "backward_outer: expected a forward() of one row first, found ",
             input_.defined() ? input_.describe() : "none");
  backward_layers(doutput, nullptr, /*weight_grads=*/false);
}

std::pair<Tensor, Tensor> Sequential::weight_grad_factors(size_t i) const {
  MLPX_CHECK(i < weight_grad_factors_.size(), ShapeError,
             "weight_grad_factors: expected a backward_outer() first and a layer below ",
             layers_.size(), ", found layer ", i);
  return weight_grad_factors_[i];
}

void Sequential::backward_layers(const Tensor& doutput,
                                 const std::function<void(size_t layer)>& after_layer,
                                 bool weight_grads) {
  MLPX_CHECK(input_.defined(), ShapeError, "backward: expected a forward() first, found none");
  const int64_t batch = input_.rows();
  MLPX_CHECK(doutput.rows() == batch && doutput.cols() == outputs() && doutput.dim() == 2,
             ShapeError, "backward: expected doutput [", batch, ", ", outputs(), "], found ",
             doutput.describe());
  // The backward GEMMs with their cuBLASLt epilogues (bias gradient, the ReLU's backward of the
  // layer below): float32 on a CUDA device in fp32 or tf32 (bf16 keeps the plain path).
  const bool backward_epilogues = gemm_epilogues_ && weight_grads && device().is_cuda() &&
                                  precision_ != Precision::kBf16 && dtype() == DType::kFloat32;
  if (fused_ && precision_ != Precision::kTf32) {
    // One kernel writes every layer's dz (grad_) and the weight and bias gradients of layers
    // 1..L-1 (per-tile partials summed in tile order); layer 0's follow as a GEMM.
    std::vector<FusedLayer> layers = fused_layers(batch);
    for (size_t i = 1; i < layers.size(); ++i) {
      layers[i].dweight = weight_grad(i);
      layers[i].dbias = bias_grad(i);
    }
    const FusedWeightGrads grads{fused_partials_, fused_done_.rows(1, 2)};
    fused_mlp_backward(layers, doutput, precision_, &grads);
    for (size_t i = layers_.size(); i-- > 1;) {
      if (after_layer) after_layer(i);
    }
    Tensor dweight = weight_grad(0), dbias = bias_grad(0);
    if (backward_epilogues) {  // the bias gradient in the weight gradient's GEMM
      linear_backward_epilogue(input_, weight_view(0), layers[0].dpre, dweight, dbias, nullptr,
                               nullptr, precision_);
    } else {
      linear_backward(input_, weight_view(0), layers[0].dpre, dweight, dbias, nullptr, precision_);
    }
    if (after_layer) after_layer(0);
    return;
  }
  Tensor upstream = doutput;  // d loss / d out_i
  for (size_t i = layers_.size(); i-- > 0;) {
    const LayerSpec& layer = layers_[i];
    // d loss / d z_i is written in place over grad_[i], except in a residual layer, which
    // keeps d loss / d out_i there for its skip connection.
    Tensor work = layer.residual ? residual_grad_[i].rows(0, batch) : grad_[i].rows(0, batch);
    Tensor dz = upstream;
    const Tensor z = pre_[i].rows(0, batch);
    const Tensor n = normed_[i].rows(0, batch);
    if (weight_grads && bf16_plain_layer(i)) {
      // The activation's gradient and its rounding in one pass; both GEMMs read those bits,
      // and the weight gradient reads the input's bits from forward().
      // dz is the model's own buffer (for identity too: its bias gradient turns dz into its
      // bf16 values in place, which must not reach the caller's doutput).
      dz = work;
      bf16_dz_.resize(std::max(bf16_dz_.size(), static_cast<size_t>(dz.numel())));
      const Tensor below = i == 0 ? input_ : out_[i - 1].rows(0, batch);
      Tensor dweight = weight_grad(i), dbias = bias_grad(i);
      Tensor dbelow = i > 0 ? grad_[i - 1].rows(0, batch) : Tensor();
      // The input's bits from forward(); nullptr (the GEMM rounds `below` itself) where that
      // forward wrote none (no rows).
      const bool have_bits = i < bf16_inputs_.size() &&
                             bf16_inputs_[i].size() >= static_cast<size_t>(below.numel()) &&
                             below.numel() > 0;
      ops::activation_linear_backward_bf16(
          below, have_bits ? bf16_inputs_[i].data() : nullptr, weight_view(i), weight_bf16(i), z,
          act_[i].rows(0, batch), layer.activation, *layer.alpha, upstream, dz, bf16_dz_.data(),
          dweight, dbias, i > 0 ? &dbelow : nullptr);
      upstream = dbelow;
      if (after_layer) after_layer(i);
      continue;
    }
    if (layer.dropout > 0.0) {
      dz = work;
      const DropoutMask mask = mask_of(dropout_step_, layer, i);
      if (is_rowwise(layer.activation)) {
        dropout_backward(Activation::kIdentity, Tensor(), upstream, dz, mask);
        activation_backward(layer.activation, n, act_[i].rows(0, batch), dz, dz, layer.alpha);
      } else {
        dropout_backward(layer.activation, n, upstream, dz, mask, layer.alpha);
      }
    } else if (layer.activation != Activation::kIdentity &&
               !(backward_epilogues &&
                 (relu_backward_in_gemm_above(i) || gelu_backward_in_gemm_above(i))) &&
               !(weight_grads && bf16_dz_from_gemm_above(i))) {
      // (Otherwise the layer above's input-gradient GEMM applied this ReLU's or GELU's
      // backward, DRELU or DGELU: upstream already holds d loss / d z_i.)
      dz = work;
      // A fused ReLU kept only its output (layer_epilogue): its sign is z's. A fused gelu_tanh
      // kept z.
      const Tensor a = act_[i].rows(0, batch);
      const bool fused = epilogue_of(i) != LinearEpilogue::kPlain &&
                         epilogue_of(i) != LinearEpilogue::kBiasGeluTanh;
      activation_backward(layer.activation, fused ? a : n, a, upstream, dz, layer.alpha);
    }
    if (layer.norm != Norm::kNone) {
      // dz holds d loss / d n here; the norm's backward turns it into d loss / d z.
      const Tensor dn = dz;
      dz = work;
      norm_backward(i, z, dn, dz);
    }
    const Tensor below = i == 0 ? input_ : out_[i - 1].rows(0, batch);
    Tensor dweight = weight_grad(i), dbias = bias_grad(i);
    if (!weight_grads) {  // one row: dW = dz^T below, an outer product the optimizer forms
      weight_grad_factors_.resize(layers_.size());
      weight_grad_factors_[i] = {dz.flat_view(0, {dz.cols()}), below.flat_view(0, {below.cols()})};
      if (dbias.defined()) sum_rows(dz, dbias);
      if (i > 0) {
        Tensor dbelow = grad_[i - 1].rows(0, batch);
        if (precision_ == Precision::kBf16) {
          ops::gemm_bf16_weight(dz, false, weight_view(i), weight_bf16(i), false, dbelow);  // dz W
        } else {
          gemm(dz, false, weight_view(i), false, dbelow, 1.0, 0.0, precision_);  // dx = dz W
        }
        if (layer.residual) residual_add(dbelow, upstream, dbelow);
        upstream = dbelow;
      }
    } else if (backward_epilogues) {
      // dW with db in its epilogue; dx (none for layer 0) with the ReLU backward of the layer
      // below where that layer wrote its mask: dbelow is then d loss / d z_{i-1}.
      Tensor dbelow = i == 0 ? Tensor() : grad_[i - 1].rows(0, batch);
      Tensor mask =
          i > 0 && relu_backward_in_gemm_above(i - 1) ? relu_mask_[i - 1].rows(0, batch) : Tensor();
      // A gelu_tanh layer below: dx with its GELU backward and its bias gradient (DGELU_BGRAD);
      // this layer's own bias gradient came so from the layer above when it is one itself.
      const bool dgelu_below = i > 0 && gelu_backward_in_gemm_above(i - 1);
      Tensor own_dbias = gelu_backward_in_gemm_above(i) ? Tensor() : dbias;
      linear_backward_epilogue(below, weight_view(i), dz, dweight, own_dbias,
                               i == 0 || dgelu_below ? nullptr : &dbelow,
                               mask.defined() ? &mask : nullptr, precision_);
      if (dgelu_below) {
        Tensor dbias_below = bias_grad(i - 1);
        linear_input_grad_gelu_tanh(dz, weight_view(i), pre_[i - 1].rows(0, batch), dbelow,
                                    dbias_below, precision_);
      }
      if (i > 0) {
        if (layer.residual) residual_add(dbelow, upstream, dbelow);
        upstream = dbelow;
      }
    } else if (i == 0) {
      layer_linear_backward(i, below, dz, dweight, dbias, nullptr);
    } else {
      Tensor dbelow = grad_[i - 1].rows(0, batch);
      layer_linear_backward(i, below, dz, dweight, dbias, &dbelow);
      // The skip connection: d loss / d out_{i-1} also gets d loss / d out_i.
      if (layer.residual) residual_add(dbelow, upstream, dbelow);
      upstream = dbelow;
    }
    if (after_layer) after_layer(i);
  }
}

Tensor Sequential::predict(const Tensor& x) const {
  MLPX_CHECK(x.dim() == 2 && x.cols() == inputs_ && x.dtype() == dtype() && x.device() == device(),
             ShapeError, "predict: expected [B, ", inputs_, "] ", dtype_name(dtype()), " ",
             device().str(), ", found ", x.describe());
  Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const LayerSpec& layer = layers_[i];
    Tensor z({x.rows(), layer.units}, dtype(), device());
    linear_forward(h, weight_view(i), bias(i), z, precision_, weight_bf16(i));
    if (layer.norm != Norm::kNone) {
      norm_eval(i, z, z);  // in place; no running statistic changes
    }
    if (layer.activation != Activation::kIdentity) {
      activation_forward(layer.activation, z, z, layer.alpha);  // in place
    }
    if (layer.residual) residual_add(h, z, z);
    h = z;
  }
  return h;
}

Sequential Sequential::to(Device device) const {
  Sequential out(inputs_, layers_, dtype(), device);
  out.params_.copy_from(params_);
  out.fused_ = fused_ && device.is_cuda();
  out.gemm_epilogues_ = gemm_epilogues_;
  if (buffers_.defined()) out.buffers_.copy_from(buffers_);
  // tf32 exists on CUDA devices only: a copy to the CPU computes in fp32.
  out.precision_ =
      precision_ == Precision::kTf32 && !device.is_cuda() ? Precision::kFp32 : precision_;
  return out;
}

std::string Sequential::summary() const {
  std::ostringstream out;
  out << "Sequential(" << inputs_ << " inputs, " << dtype_name(dtype()) << ", " << device().str()
      << ")\n";
  // The dropout column only when a layer drops: a model without any prints as it always did.
  // Likewise the norm column (its kind, and "+x" for a residual layer) only with a norm or a
  // residual layer.
  bool drops = false, deep = false;
  for (const LayerSpec& layer : layers_) {
    drops = drops || layer.dropout > 0.0;
    deep = deep || layer.norm != Norm::kNone || layer.residual;
  }
  out << "  layer  weight        bias    " << (deep ? "norm       " : "") << "activation   "
      << (drops ? "dropout  " : "") << "parameters\n";
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string w =
        "[" + std::to_string(layers_[i].units) + ", " + std::to_string(in_features(i)) + "]";
    out << "  " << std::setw(5) << std::left << i << "  " << std::setw(12) << w << "  "
        << std::setw(6)
        << (layers_[i].bias ? "[" + std::to_string(layers_[i].units) + "]" : std::string("none"))
        << "  ";
    if (deep) {
      const std::string norm = detail::enum_name(detail::kNormNames, layers_[i].norm);
      out << std::setw(9) << (layers_[i].residual ? norm + " +x" : norm) << "  ";
    }
    out << std::setw(11) << activation_name(layers_[i].activation) << "  ";
    if (drops) {
      std::ostringstream p;
      p << layers_[i].dropout;
      out << std::setw(7) << p.str() << "  ";
    }
    int64_t count = 0;
    for (const Parameter& p : layout_) {
      if (p.layer == i) count += elements_of(p.shape);
    }
    out << count << "\n";
  }
  out << "  total parameters: " << num_params() << "\n";
  return out.str();
}

}  // namespace mlpx
