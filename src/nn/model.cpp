#include "mlpx/model.h"

#include <iomanip>
#include <sstream>

#include "math/activation.h"
#include "math/streams.h"
#include "mlpx/dropout.h"
#include "mlpx/error.h"
#include "mlpx/gemm.h"
#include "mlpx/linear.h"

namespace mlpx {

namespace {
// A rowwise activation (softmax) is not fused with the dropout: it is applied, then dropped.
bool is_rowwise(Activation activation) {
  return math::visit(activation, [](auto member) { return decltype(member)::kIsRowwise; });
}
// Where a layer's bias and activation are computed: in its GEMM's epilogue (cuBLASLt, on a
// CUDA device) when the activation table gives the member an epilogue, else on the plain path
// (GEMM, bias kernel, activation kernel). The one place that decides it: a layer whose output
// goes anywhere but straight into its activation (a dropout here; a norm between the GEMM and
// the activation) returns kPlain. bf16 GEMMs round their inputs in separate kernels
// (kernels/gemm.cpp) and stay plain too. The fused ReLU writes only the activation, not z:
// the ReLU's backward then reads the output, whose sign is z's (NaN: see mlpx/linear.h).
LinearEpilogue layer_epilogue(const LayerSpec& layer, Device device, Precision precision) {
  if (!device.is_cuda() || precision == Precision::kBf16 || layer.dropout > 0.0) {
    return LinearEpilogue::kPlain;
  }
  return math::visit(layer.activation, [](auto member) {
    using Member = decltype(member);
    if (Member::kEpilogueIsBiasRelu) return LinearEpilogue::kBiasRelu;
    if (Member::kEpilogueIsBias) return LinearEpilogue::kBias;
    return LinearEpilogue::kPlain;
  });
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
}

void Sequential::init(Init init, double param, uint64_t seed) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    Tensor w = weight(i);
    init_tensor(w, init, in_features(i), param, seed, math::kStreamInit + i);
    bias(i).fill_zero();
  }
}

Tensor Sequential::parameter_view(const Tensor& flat, size_t k) const {
  const Parameter& p = layout_.at(k);
  return flat.flat_view(p.offset, p.shape);
}
Tensor Sequential::weight(size_t i) const { return parameter_view(params_, 2 * i); }
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
  Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const LayerSpec& layer = layers_[i];
    Tensor z = pre_[i].rows(0, batch);
    Tensor a = act_[i].rows(0, batch), out = out_[i].rows(0, batch);
    const LinearEpilogue epilogue = layer_epilogue(layer, device(), precision_);
    if (epilogue != LinearEpilogue::kPlain) {
      // The epilogue writes the activation (for identity a is z): z itself is not kept.
      linear_forward_epilogue(h, weight(i), bias(i), a, epilogue, precision_);
      h = out;
      continue;
    }
    linear_forward(h, weight(i), bias(i), z, precision_);
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
  return h;
}

void Sequential::backward(const Tensor& doutput,
                          const std::function<void(size_t layer)>& after_layer) {
  MLPX_CHECK(input_.defined(), ShapeError, "backward: expected a forward() first, found none");
  const int64_t batch = input_.rows();
  MLPX_CHECK(doutput.rows() == batch && doutput.cols() == outputs() && doutput.dim() == 2,
             ShapeError, "backward: expected doutput [", batch, ", ", outputs(), "], found ",
             doutput.describe());
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
      // A fused ReLU kept only its output (layer_epilogue): its sign is z's.
      const Tensor a = act_[i].rows(0, batch);
      const bool fused = layer_epilogue(layer, device(), precision_) != LinearEpilogue::kPlain;
      activation_backward(layer.activation, fused ? a : z, a, upstream, dz, layer.alpha);
    }
    const Tensor below = i == 0 ? input_ : out_[i - 1].rows(0, batch);
    Tensor dweight = weight_grad(i), dbias = bias_grad(i);
    if (i == 0) {
      linear_backward(below, weight(i), dz, dweight, dbias, nullptr, precision_);
    } else {
      Tensor dbelow = grad_[i - 1].rows(0, batch);
      linear_backward(below, weight(i), dz, dweight, dbias, &dbelow, precision_);
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
    linear_forward(h, weight(i), bias(i), z, precision_);
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
