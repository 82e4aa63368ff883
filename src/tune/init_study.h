// The weight-init study: random inputs through a deep stack of equal hidden layers, once per
// (init, activation) pair, recording per layer how the activations are spread (mean, std, how
// many sit at the activation's extremes, a histogram) and how large the weight gradients of one
// backward pass are. It shows why initialisation matters: normal(std 1) + sigmoid saturates at
// 0 and 1, std 0.01 collapses onto one value, the lecture's Xavier (std 1/sqrt(fan_in): mlpx's
// lecun_normal) keeps sigmoid and tanh spread, he relu.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mlpx/activation.h"
#include "mlpx/device.h"
#include "mlpx/init.h"

namespace mlpx {

// One weight initialisation of the study, with its name in the CSV.
struct InitChoice {
  std::string name;  // "normal_std1", "normal_std0.01", "lecun_normal", "he_normal", ...
  Init init = Init::kLecunNormal;
  double param = 0.0;  // the std of kNormal; unused by the fan-in schemes
};

// "normal_std<S>" (Init::kNormal with std S > 0; named with S as %g, so "normal_std1.0" is
// "normal_std1"), or a fan scheme: "lecun_normal", "lecun_uniform", "xavier_normal",
// "xavier_uniform", "he_normal", "he_uniform", "torch_default". Anything else is a ValueError
// listing what is accepted.
InitChoice parse_init_choice(const std::string& name);

// A choice's name as the plots show it: the lecture's name and the formula ("lecun_normal" ->
// "Xavier (lecture): std 1/sqrt(fan_in)"; "normal_std0.01" -> "normal: std 0.01").
std::string init_choice_label(const std::string& name);

struct InitStudyOptions {
  // Default: the four classic schemes and the three classic activations (12 pairs).
  std::vector<InitChoice> inits = {
      parse_init_choice("normal_std1"), parse_init_choice("normal_std0.01"),
      parse_init_choice("lecun_normal"), parse_init_choice("he_normal")};
  // Only sigmoid, tanh and relu: the three whose extremes the statistics describe.
  std::vector<Activation> activations = {Activation::kSigmoid, Activation::kTanh,
                                         Activation::kRelu};
  int depth = 5;           // hidden layers
  int64_t width = 100;     // units per hidden layer
  int64_t samples = 1000;  // input rows, standard normal
  int64_t features = 100;  // input columns
  uint64_t seed = 0;       // inputs, targets and weights (the same for every pair)
  Device device = Device::cpu();
  int bins = 30;            // histogram bins over histogram_range(activation)
  double relu_range = 4.0;  // relu histograms cover [0, relu_range]
};

// Statistics of one hidden layer's activations (all samples x all units) for one pair.
struct LayerStats {
  std::string init;  // InitChoice::name
  Activation activation = Activation::kSigmoid;
  int layer = 0;             // 1 = the first hidden layer
  double mean = 0, std = 0;  // population std over all values
  // sigmoid: |a| <= 0.02 and |a - 1| <= 0.02. tanh: |a + 1| <= 0.02 and |a - 1| <= 0.02 (the
  // two saturated ends). relu: a == 0 exactly and |a - 1| <= 0.02.
  double frac_near_0 = 0, frac_near_1 = 0;
  // RMS of d loss / d weight of this layer (sqrt(mean of squares)) after one backward pass of
  // mse(last layer's output, standard normal target).
  double grad_rms = 0;
  // Fractions of all values in `bins` equal bins over [hist_lo, hist_hi]; relu's exact zeros
  // are left out (they are frac_near_0), as are values outside the range (below, above).
  std::vector<double> histogram;
  double hist_lo = 0, hist_hi = 1;
  double below = 0, above = 0;
};

// The x range of the histograms of one activation: sigmoid [0, 1], tanh [-1, 1],
// relu [0, relu_range].
std::pair<double, double> histogram_range(Activation activation, double relu_range);

// Runs every (init, activation) pair, inits outermost: depth rows per pair, layers in order.
// ValueError for an empty set, a size < 1, or an activation other than sigmoid, tanh, relu.
std::vector<LayerStats> run_init_study(const InitStudyOptions& options);

// The CSV: header "init,activation,layer,mean,std,frac_near_0,frac_near_1,grad_rms", then one
// row per entry, numbers with 6 significant digits. Written atomically (IoError on failure).
std::string init_study_csv(const std::vector<LayerStats>& stats);
void write_init_study_csv(const std::string& path, const std::vector<LayerStats>& stats);

}  // namespace mlpx
