#include "mlpx/model.h"

#include <iomanip>
#include <sstream>

#include "math/activation.h"
#include "math/streams.h"
#include "mlpx/dropout.h"
#include "mlpx/error.h"
#include "mlpx/gemm.h"
#include "mlpx/linear.h"
#include "ops/fused_mlp.h"
#include "ops/gemm_bf16_weight.h"

namespace mlpx {

namespace {
// A rowwise activation (softmax) is not fused with the dropout: it is applied, then dropped.
bool is_rowwise(Activation activation) {
  return math::visit(activation, [](auto member) { return decltype(member)::kIsRowwise; });
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
  const Parameter& last = layout_.back();
  const int64_t total = last.offset + last.shape[0];
  params_ = Tensor::zeros({total}, dtype, device);
  grads_ = Tensor::zeros({total}, dtype, device);
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
    const std::string prefix = "layers." + std::to_string(i) + ".";
    layout.push_back({prefix + "weight", offset, {units, fan_in}});
    offset += units * fan_in;
    layout.push_back({prefix + "bias", offset, {units}});
    offset += units;
    fan_in = units;
  }
  return layout;
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
  if (!keeps_bf16_params()) bf16_params_ = {};
}

bool Sequential::keeps_bf16_params() const {
  return precision_ == Precision::kBf16 && device().is_cpu() && dtype() == DType::kFloat32;
}

uint16_t* Sequential::bf16_params_for_step() {
  if (!keeps_bf16_params()) return nullptr;
  if (!bf16_params_current_) {
    bf16_params_.resize(static_cast<size_t>(num_params()));
    ops::round_to_bf16_bits(params_, bf16_params_.data());
    bf16_params_current_ = true;
  }
  return bf16_params_.data();
}

const uint16_t* Sequential::weight_bf16(size_t i) const {
  if (!bf16_params_current_ || !keeps_bf16_params()) return nullptr;
  return bf16_params_.data() + layout_[2 * i].offset;
}

std::string Sequential::fused_unfit_reason() const {
  std::vector<int64_t> widths;
  std::vector<Activation> activations;
  std::vector<double> dropouts;
  for (const LayerSpec& layer : layers_) {
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
    layer.pre = pre_[i].rows(0, batch);
    layer.act = act_[i].rows(0, batch);
    layer.dpre = grad_[i].rows(0, batch);
  }
  return layers;
}

void Sequential::init(Init init, double param, uint64_t seed) {
  bf16_params_current_ = false;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Tensor w = weight(i), b = bias(i);
    init_tensor(w, init, in_features(i), layers_[i].units, param, seed, math::kStreamInit + i);
    if (init_draws_bias(init)) {
      init_tensor(b, init, in_features(i), layers_[i].units, param, seed,
                  math::kStreamInitBias + i);
    } else {
      b.fill_zero();
    }
  }
}

Tensor Sequential::parameter_view(const Tensor& flat, size_t k) const {
  const Parameter& p = layout_.at(k);
  return flat.flat_view(p.offset, p.shape);
}
Tensor Sequential::weight(size_t i) const { return weight_view(i); }
Tensor Sequential::bias(size_t i) const { return parameter_view(params_, 2 * i + 1); }
Tensor Sequential::weight_grad(size_t i) const { return parameter_view(grads_, 2 * i); }
Tensor Sequential::bias_grad(size_t i) const { return parameter_view(grads_, 2 * i + 1); }

void Sequential::ensure_batch(int64_t batch) {
  if (batch <= capacity_) return;
  pre_.clear();
  act_.clear();
  out_.clear();
  grad_.clear();
  for (const LayerSpec& layer : layers_) {
    const Shape shape{batch, layer.units};
    Tensor z(shape, dtype(), device());
    pre_.push_back(z);
    // identity without dropout keeps no second copy: its output is its input. With a dropout,
    // an elementwise activation and the dropout write the output in one pass, and the
    // backward regenerates f(z) and the mask from z: no third buffer.
    const bool drops = layer.dropout > 0.0;
    Tensor a =
        layer.activation == Activation::kIdentity && !drops ? z : Tensor(shape, dtype(), device());
    act_.push_back(a);
    out_.push_back(drops && is_rowwise(layer.activation) ? Tensor(shape, dtype(), device()) : a);
    grad_.emplace_back(shape, dtype(), device());
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

Tensor Sequential::forward(const Tensor& x, const DropoutStep& step) {
  MLPX_CHECK(x.dim() == 2 && x.cols() == inputs_ && x.dtype() == dtype() && x.device() == device(),
             ShapeError, "forward: expected [B, ", inputs_, "] ", dtype_name(dtype()), " ",
             device().str(), ", found ", x.describe());
  const int64_t batch = x.rows();
  ensure_batch(batch);
  input_ = x;
  dropout_step_ = step;
  bf16_params_for_step();  // the GEMMs' bf16 copy of the weights, made again only if stale
  Tensor h = x;
  // Fused: layer 0 as below, then layers 1..L-1 in one kernel (set_fused checked the fit).
  const size_t unfused = fused_ && precision_ != Precision::kTf32 ? 1 : layers_.size();
  for (size_t i = 0; i < unfused; ++i) {
    const LayerSpec& layer = layers_[i];
    Tensor z = pre_[i].rows(0, batch);
    linear_forward(h, weight_view(i), bias(i), z, precision_, weight_bf16(i));
    Tensor a = act_[i].rows(0, batch), out = out_[i].rows(0, batch);
    if (layer.dropout > 0.0) {
      if (is_rowwise(layer.activation)) {
        activation_forward(layer.activation, z, a, layer.alpha);
        dropout_forward(Activation::kIdentity, a, out, mask_of(step, layer, i));
      } else {
        dropout_forward(layer.activation, z, out, mask_of(step, layer, i), layer.alpha);
      }
    } else if (layer.activation != Activation::kIdentity) {
      activation_forward(layer.activation, z, a, layer.alpha);
    }
    h = out;
  }
  if (unfused < layers_.size()) {
    std::vector<FusedLayer> layers = fused_layers(batch);
    fused_mlp_forward(layers, precision_);
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
  if (fused_ && precision_ != Precision::kTf32) {
    // One kernel writes every layer's dz (grad_); the weight and bias gradients follow, layer
    // by layer from the top as below, as separate GEMMs and column sums.
    std::vector<FusedLayer> layers = fused_layers(batch);
    fused_mlp_backward(layers, doutput, precision_);
    for (size_t i = layers_.size(); i-- > 0;) {
      const Tensor below = i == 0 ? input_ : out_[i - 1].rows(0, batch);
      Tensor dweight = weight_grad(i), dbias = bias_grad(i);
      linear_backward(below, weight(i), layers[i].dpre, dweight, dbias, nullptr, precision_);
      if (after_layer) after_layer(i);
    }
    return;
  }
  Tensor upstream = doutput;  // d loss / d out_i
  for (size_t i = layers_.size(); i-- > 0;) {
    const LayerSpec& layer = layers_[i];
    Tensor dz = upstream;
    const Tensor z = pre_[i].rows(0, batch);
    if (layer.dropout > 0.0) {
      dz = grad_[i].rows(0, batch);
      const DropoutMask mask = mask_of(dropout_step_, layer, i);
      if (is_rowwise(layer.activation)) {
        dropout_backward(Activation::kIdentity, Tensor(), upstream, dz, mask);
        activation_backward(layer.activation, z, act_[i].rows(0, batch), dz, dz, layer.alpha);
      } else {
        dropout_backward(layer.activation, z, upstream, dz, mask, layer.alpha);
      }
    } else if (layer.activation != Activation::kIdentity) {
      dz = grad_[i].rows(0, batch);
      activation_backward(layer.activation, z, act_[i].rows(0, batch), upstream, dz, layer.alpha);
    }
    const Tensor below = i == 0 ? input_ : out_[i - 1].rows(0, batch);
    Tensor dweight = weight_grad(i), dbias = bias_grad(i);
    if (!weight_grads) {  // one row: dW = dz^T below, an outer product the optimizer forms
      weight_grad_factors_.resize(layers_.size());
      weight_grad_factors_[i] = {dz.flat_view(0, {dz.cols()}), below.flat_view(0, {below.cols()})};
      sum_rows(dz, dbias);
      if (i > 0) {
        Tensor dbelow = grad_[i - 1].rows(0, batch);
        if (precision_ == Precision::kBf16) {
          ops::gemm_bf16_weight(dz, false, weight_view(i), weight_bf16(i), false, dbelow);  // dz W
        } else {
          gemm(dz, false, weight_view(i), false, dbelow, 1.0, 0.0, precision_);  // dx = dz W
        }
        upstream = dbelow;
      }
    } else if (i == 0) {
      linear_backward(below, weight_view(i), dz, dweight, dbias, nullptr, precision_,
                      weight_bf16(i));
    } else {
      Tensor dbelow = grad_[i - 1].rows(0, batch);
      linear_backward(below, weight_view(i), dz, dweight, dbias, &dbelow, precision_,
                      weight_bf16(i));
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
    Tensor z({x.rows(), layers_[i].units}, dtype(), device());
    linear_forward(h, weight_view(i), bias(i), z, precision_, weight_bf16(i));
    if (layers_[i].activation != Activation::kIdentity) {
      activation_forward(layers_[i].activation, z, z, layers_[i].alpha);  // in place
    }
    h = z;
  }
  return h;
}

Sequential Sequential::to(Device device) const {
  Sequential out(inputs_, layers_, dtype(), device);
  out.params_.copy_from(params_);
  out.fused_ = fused_ && device.is_cuda();
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
  bool drops = false;
  for (const LayerSpec& layer : layers_) drops = drops || layer.dropout > 0.0;
  out << "  layer  weight        bias    activation   " << (drops ? "dropout  " : "")
      << "parameters\n";
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string w =
        "[" + std::to_string(layers_[i].units) + ", " + std::to_string(in_features(i)) + "]";
    out << "  " << std::setw(5) << std::left << i << "  " << std::setw(12) << w << "  "
        << std::setw(6) << ("[" + std::to_string(layers_[i].units) + "]") << "  " << std::setw(11)
        << activation_name(layers_[i].activation) << "  ";
    if (drops) {
      std::ostringstream p;
      p << layers_[i].dropout;
      out << std::setw(7) << p.str() << "  ";
    }
    out << (in_features(i) + 1) * layers_[i].units << "\n";
  }
  out << "  total parameters: " << num_params() << "\n";
  return out.str();
}

}  // namespace mlpx
