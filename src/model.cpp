#include "mlpx/model.h"

#include <iomanip>
#include <sstream>

#include "mlpx/error.h"
#include "mlpx/linear.h"
#include "mlpx/math/streams.h"

namespace mlpx {

Sequential::Sequential(int64_t inputs, std::vector<LayerSpec> layers, double activation_alpha,
                       DType dtype, Device device)
    : inputs_(inputs), layers_(std::move(layers)), alpha_(activation_alpha) {
  MLPX_CHECK(inputs_ > 0, ShapeError, "Sequential: expected inputs > 0, found ", inputs_);
  MLPX_CHECK(!layers_.empty(), ShapeError, "Sequential: expected at least one layer, found none");
  MLPX_CHECK(dtype != DType::kInt32, ShapeError,
             "Sequential: expected float32 or float64 parameters, found int32");
  int64_t total = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    MLPX_CHECK(layers_[i].units > 0, ShapeError, "Sequential: layer ", i,
               ": expected units > 0, found ", layers_[i].units);
    offsets_.push_back(total);
    total += (in_features(i) + 1) * layers_[i].units;
  }
  params_ = Tensor::zeros({total}, dtype, device);
  grads_ = Tensor::zeros({total}, dtype, device);
}

void Sequential::init(Init init, double param, uint64_t seed) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    Tensor w = weight(i);
    init_tensor(w, init, in_features(i), param, seed, math::kStreamInit + i);
    bias(i).fill_zero();
  }
}

Tensor Sequential::weight(size_t i) const {
  return params_.flat_view(offsets_.at(i), {layers_[i].units, in_features(i)});
}
Tensor Sequential::bias(size_t i) const {
  return params_.flat_view(offsets_.at(i) + layers_[i].units * in_features(i), {layers_[i].units});
}
Tensor Sequential::weight_grad(size_t i) const {
  return grads_.flat_view(offsets_.at(i), {layers_[i].units, in_features(i)});
}
Tensor Sequential::bias_grad(size_t i) const {
  return grads_.flat_view(offsets_.at(i) + layers_[i].units * in_features(i), {layers_[i].units});
}

void Sequential::ensure_batch(int64_t batch) {
  if (batch <= capacity_) return;
  pre_.clear();
  act_.clear();
  grad_.clear();
  for (const LayerSpec& layer : layers_) {
    Tensor z({batch, layer.units}, dtype(), device());
    pre_.push_back(z);
    // identity keeps no second copy: its output is its input.
    act_.push_back(layer.activation == Activation::kIdentity
                       ? z
                       : Tensor({batch, layer.units}, dtype(), device()));
    grad_.emplace_back(Shape{batch, layer.units}, dtype(), device());
  }
  capacity_ = batch;
}

Tensor Sequential::forward(const Tensor& x) {
  MLPX_CHECK(x.dim() == 2 && x.cols() == inputs_ && x.dtype() == dtype() && x.device() == device(),
             ShapeError, "forward: expected [B, ", inputs_, "] ", dtype_name(dtype()), " ",
             device().str(), ", found ", x.describe());
  const int64_t batch = x.rows();
  ensure_batch(batch);
  input_ = x;
  Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Tensor z = pre_[i].rows(0, batch);
    linear_forward(h, weight(i), bias(i), z);
    Tensor a = act_[i].rows(0, batch);
    if (layers_[i].activation != Activation::kIdentity) {
      activation_forward(layers_[i].activation, z, a, alpha_);
    }
    h = a;
  }
  return h;
}

void Sequential::backward(const Tensor& doutput) {
  MLPX_CHECK(input_.defined(), ShapeError, "backward: expected a forward() first, found none");
  const int64_t batch = input_.rows();
  MLPX_CHECK(doutput.rows() == batch && doutput.cols() == outputs() && doutput.dim() == 2,
             ShapeError, "backward: expected doutput [", batch, ", ", outputs(), "], found ",
             doutput.describe());
  Tensor upstream = doutput;  // d loss / d a_i
  for (size_t i = layers_.size(); i-- > 0;) {
    Tensor dz = upstream;
    if (layers_[i].activation != Activation::kIdentity) {
      dz = grad_[i].rows(0, batch);
      activation_backward(layers_[i].activation, pre_[i].rows(0, batch), act_[i].rows(0, batch),
                          upstream, dz, alpha_);
    }
    const Tensor below = i == 0 ? input_ : act_[i - 1].rows(0, batch);
    Tensor dweight = weight_grad(i), dbias = bias_grad(i);
    if (i == 0) {
      linear_backward(below, weight(i), dz, dweight, dbias, nullptr);
    } else {
      Tensor dbelow = grad_[i - 1].rows(0, batch);
      linear_backward(below, weight(i), dz, dweight, dbias, &dbelow);
      upstream = dbelow;
    }
  }
}

Tensor Sequential::predict(const Tensor& x) const {
  MLPX_CHECK(x.dim() == 2 && x.cols() == inputs_ && x.dtype() == dtype() && x.device() == device(),
             ShapeError, "predict: expected [B, ", inputs_, "] ", dtype_name(dtype()), " ",
             device().str(), ", found ", x.describe());
  Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Tensor z({x.rows(), layers_[i].units}, dtype(), device());
    linear_forward(h, weight(i), bias(i), z);
    if (layers_[i].activation != Activation::kIdentity) {
      activation_forward(layers_[i].activation, z, z, alpha_);  // in place
    }
    h = z;
  }
  return h;
}

Sequential Sequential::to(Device device) const {
  Sequential out(inputs_, layers_, alpha_, dtype(), device);
  out.params_.copy_from(params_);
  return out;
}

std::string Sequential::summary() const {
  std::ostringstream out;
  out << "Sequential(" << inputs_ << " inputs, " << dtype_name(dtype()) << ", " << device().str()
      << ")\n";
  out << "  layer  weight        bias    activation   parameters\n";
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string w =
        "[" + std::to_string(layers_[i].units) + ", " + std::to_string(in_features(i)) + "]";
    out << "  " << std::setw(5) << std::left << i << "  " << std::setw(12) << w << "  "
        << std::setw(6) << ("[" + std::to_string(layers_[i].units) + "]") << "  " << std::setw(11)
        << activation_name(layers_[i].activation) << "  " << (in_features(i) + 1) * layers_[i].units
        << "\n";
  }
  out << "  total parameters: " << num_params() << "\n";
  return out.str();
}

}  // namespace mlpx
