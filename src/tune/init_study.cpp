#include "tune/init_study.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "io/atomic_file.h"
#include "math/streams.h"
#include "mlpx/activation.h"
#include "mlpx/error.h"
#include "mlpx/linear.h"
#include "mlpx/loss.h"
#include "mlpx/model.h"

namespace mlpx {

namespace {

// The study's own Philox streams, far from the training ones (see mlpx/math/streams.h).
constexpr uint64_t kStreamStudyInput = uint64_t{7} << 40;
constexpr uint64_t kStreamStudyTarget = kStreamStudyInput + 1;

// "Near" an extreme: within this distance of it.
constexpr double kNear = 0.02;

std::string format_g(double v, int digits = 6) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

Tensor standard_normal(int64_t rows, int64_t cols, uint64_t seed, uint64_t stream, Device device) {
  Tensor t({rows, cols}, DType::kFloat32, device);
  init_tensor(t, Init::kNormal, cols, 0, 1.0, seed, stream);
  return t;
}

LayerStats layer_stats(const std::vector<float>& a, Activation activation,
                       const InitStudyOptions& options) {
  LayerStats s;
  s.activation = activation;
  const double n = static_cast<double>(a.size());
  double sum = 0;
  for (float v : a) sum += v;
  s.mean = sum / n;
  double sq = 0;
  for (float v : a) sq += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(sq / n);

  const double low_end = activation == Activation::kTanh ? -1.0 : 0.0;
  int64_t near0 = 0, near1 = 0, below = 0, above = 0;
  const auto [lo, hi] = histogram_range(activation, options.relu_range);
  s.hist_lo = lo;
  s.hist_hi = hi;
  std::vector<int64_t> counts(options.bins, 0);
  const double bin_width = (hi - lo) / options.bins;
  for (float v : a) {
    if (activation == Activation::kRelu ? v == 0.0f : std::abs(v - low_end) <= kNear) ++near0;
    if (std::abs(v - 1.0) <= kNear) ++near1;
    if (activation == Activation::kRelu && v == 0.0f) continue;
    if (v < lo) {
      ++below;
    } else if (v > hi) {
      ++above;
    } else {
      const int bin = std::min(options.bins - 1, static_cast<int>((v - lo) / bin_width));
      ++counts[bin];
    }
  }
  s.frac_near_0 = near0 / n;
  s.frac_near_1 = near1 / n;
  s.below = below / n;
  s.above = above / n;
  s.histogram.reserve(counts.size());
  for (int64_t c : counts) s.histogram.push_back(c / n);
  return s;
}

double rms(const std::vector<float>& values) {
  double sq = 0;
  for (float v : values) sq += static_cast<double>(v) * v;
  return values.empty() ? 0.0 : std::sqrt(sq / values.size());
}

}  // namespace

InitChoice parse_init_choice(const std::string& name) {
  const std::string prefix = "normal_std";
  if (name.compare(0, prefix.size(), prefix) == 0) {
    const std::string number = name.substr(prefix.size());
    char* end = nullptr;
    const double std = number.empty() ? 0.0 : std::strtod(number.c_str(), &end);
    MLPX_CHECK(
        !number.empty() && end == number.c_str() + number.size() && std::isfinite(std) && std > 0,
        ValueError, "init '", name, "': expected normal_std<S> with a number S > 0");
    return {prefix + format_g(std), Init::kNormal, std};
  }
  for (const char* scheme : {"lecun_normal", "lecun_uniform", "xavier_normal", "xavier_uniform",
                             "he_normal", "he_uniform", "torch_default"}) {
    if (name == scheme) return {name, parse_init(name), 0.0};
  }
  throw ValueError(
      "init: expected normal_std<S> (e.g. normal_std1, normal_std0.01), lecun_normal, "
      "lecun_uniform, xavier_normal, xavier_uniform, he_normal, he_uniform or torch_default; "
      "found '" +
      name + "'");
}

std::string init_choice_label(const std::string& name) {
  // The lecture's names, with the formula beside them: its "Xavier" is std 1/sqrt(fan_in),
  // which torch and mlpx call LeCun (their xavier_* is Glorot's sqrt(2/(fan_in+fan_out))).
  static const std::pair<const char*, const char*> kLabels[] = {
      {"lecun_normal", "Xavier (lecture): std 1/sqrt(fan_in)"},
      {"lecun_uniform", "Xavier (lecture), uniform: +-sqrt(3/fan_in)"},
      {"xavier_normal", "Glorot: std sqrt(2/(fan_in+fan_out))"},
      {"xavier_uniform", "Glorot, uniform: +-sqrt(6/(fan_in+fan_out))"},
      {"he_normal", "He: std sqrt(2/fan_in)"},
      {"he_uniform", "He, uniform: +-sqrt(6/fan_in)"},
      {"torch_default", "torch Linear: +-1/sqrt(fan_in)"},
  };
  for (const auto& [scheme, label] : kLabels) {
    if (name == scheme) return label;
  }
  const std::string prefix = "normal_std";
  if (name.compare(0, prefix.size(), prefix) == 0)
    return "normal: std " + name.substr(prefix.size());
  return name;
}

std::pair<double, double> histogram_range(Activation activation, double relu_range) {
  // The activation's own range, from the library's formula at the far ends of its input:
  // (0, 1) for sigmoid, (-1, 1) for tanh, and for relu, unbounded above, (0, relu_range).
  constexpr double kFar = 1e30;
  Tensor ends = Tensor::from_vector(std::vector<double>{-kFar, kFar}, {2});
  activation_forward(activation, ends, ends);
  const std::vector<double> range = ends.to_vector<double>();
  return {range[0], std::min(range[1], relu_range)};
}

std::vector<LayerStats> run_init_study(const InitStudyOptions& options) {
  MLPX_CHECK(!options.inits.empty(), ValueError, "init study: expected at least one init");
  MLPX_CHECK(!options.activations.empty(), ValueError,
             "init study: expected at least one activation");
  for (Activation a : options.activations) {
    MLPX_CHECK(a == Activation::kSigmoid || a == Activation::kTanh || a == Activation::kRelu,
               ValueError, "init study: expected sigmoid, tanh or relu, found ",
               activation_name(a));
  }
  MLPX_CHECK(options.depth >= 1, ValueError, "init study: expected depth >= 1, found ",
             options.depth);
  MLPX_CHECK(options.width >= 1, ValueError, "init study: expected width >= 1, found ",
             options.width);
  MLPX_CHECK(options.samples >= 1, ValueError, "init study: expected samples >= 1, found ",
             options.samples);
  MLPX_CHECK(options.features >= 1, ValueError, "init study: expected features >= 1, found ",
             options.features);
  MLPX_CHECK(options.bins >= 1, ValueError, "init study: expected bins >= 1, found ", options.bins);
  MLPX_CHECK(options.relu_range > 0, ValueError, "init study: expected relu_range > 0, found ",
             options.relu_range);

  const Device device = options.device;
  // The same inputs and targets for every pair: only the init and the activation change.
  const Tensor x =
      standard_normal(options.samples, options.features, options.seed, kStreamStudyInput, device);
  const Tensor target =
      standard_normal(options.samples, options.width, options.seed, kStreamStudyTarget, device);
  Tensor row_loss({options.samples}, DType::kFloat32, device);
  Tensor dout({options.samples, options.width}, DType::kFloat32, device);

  std::vector<LayerStats> out;
  for (const InitChoice& init : options.inits) {
    for (Activation activation : options.activations) {
      const std::vector<LayerSpec> layers(options.depth, LayerSpec{options.width, activation});
      Sequential model(options.features, layers, DType::kFloat32, device);
      model.init(init.init, init.param, options.seed);

      // Each layer's output, layer by layer: Sequential keeps them private.
      std::vector<LayerStats> pair_stats;
      Tensor h = x;
      for (int i = 0; i < options.depth; ++i) {
        Tensor a({options.samples, options.width}, DType::kFloat32, device);
        linear_forward(h, model.weight(i), model.bias(i), a);
        activation_forward(activation, a, a);
        LayerStats s = layer_stats(a.to_vector<float>(), activation, options);
        s.init = init.name;
        s.layer = i + 1;
        pair_stats.push_back(std::move(s));
        h = a;
      }

      // One backward pass of mse(output, target) for the weight-gradient magnitudes.
      const Tensor y = model.forward(x);
      loss_forward_backward(Loss::kMse, y, target, row_loss, &dout);
      model.backward(dout);
      for (int i = 0; i < options.depth; ++i) {
        pair_stats[i].grad_rms = rms(model.weight_grad(i).to_vector<float>());
      }
      for (LayerStats& s : pair_stats) out.push_back(std::move(s));
    }
  }
  return out;
}

std::string init_study_csv(const std::vector<LayerStats>& stats) {
  std::ostringstream csv;
  csv << "init,activation,layer,mean,std,frac_near_0,frac_near_1,grad_rms\n";
  for (const LayerStats& s : stats) {
    csv << s.init << ',' << activation_name(s.activation) << ',' << s.layer << ','
        << format_g(s.mean) << ',' << format_g(s.std) << ',' << format_g(s.frac_near_0) << ','
        << format_g(s.frac_near_1) << ',' << format_g(s.grad_rms) << '\n';
  }
  return csv.str();
}

void write_init_study_csv(const std::string& path, const std::vector<LayerStats>& stats) {
  detail::write_file_atomic(path, init_study_csv(stats));
}

}  // namespace mlpx
