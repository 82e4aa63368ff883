// Optimizers on the CPU in float64 against hand-written references of the torch.optim update
// rules: parameters and every state buffer, step by step.
#include "mlpx/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "mlpx/error.h"
#include "ops/nonfinite.h"
#include "test_util.h"

namespace mlpx {

// Friend of Optimizer: reads the step counter that the update kernel advances.
struct OptimizerTestPeer {
  static std::vector<int32_t> step_counter(const Optimizer& optimizer) {
    return optimizer.step_counter_.to_vector<int32_t>();
  }
};

namespace {

using Buffers = std::map<std::string, std::vector<double>>;

// The reference: one step of torch.optim's single-tensor update rule, per element, in double.
struct Reference {
  OptimizerConfig config;
  std::vector<double> p;
  Buffers state;
  int64_t step = 0;
  bool momentum_buffer_set = false;

  void run(const std::vector<double>& g_in, double lr) {
    const OptimizerConfig& c = config;
    const double wd = c.weight_decay;
    const double eps = c.effective_eps();
    ++step;
    for (size_t i = 0; i < p.size(); ++i) {
      double g = g_in[i];
      switch (c.type) {
        case OptimizerType::kSgd: {
          // torch.optim.SGD (dampening 0):
          //   d_p = g + wd * p                                 (when wd != 0)
          //   if momentum: buf = d_p.clone() on the first step, else buf = mu * buf + d_p
          //                d_p = d_p + mu * buf if nesterov else buf
          //   p = p - lr * d_p
          if (wd != 0) g = g + wd * p[i];
          if (c.momentum != 0) {
            double& buf = state["momentum_buffer"][i];
            buf = momentum_buffer_set ? c.momentum * buf + g : g;
            g = c.nesterov ? g + c.momentum * buf : buf;
          }
          p[i] = p[i] - lr * g;
          break;
        }
        case OptimizerType::kAdagrad: {
          // torch.optim.Adagrad (lr_decay 0, initial_accumulator_value 0):
          //   g = g + wd * p;  clr = lr / (1 + (step - 1) * lr_decay) = lr
          //   sum = sum + g * g;  std = sqrt(sum) + eps;  p = p - clr * g / std
          if (wd != 0) g = g + wd * p[i];
          double& sum = state["sum"][i];
          sum = sum + g * g;
          p[i] = p[i] - lr * (g / (std::sqrt(sum) + eps));
          break;
        }
        case OptimizerType::kRmsprop: {
          // torch.optim.RMSprop (centered False, momentum 0):
          //   g = g + wd * p;  square_avg = alpha * square_avg + (1 - alpha) * g * g
          //   avg = sqrt(square_avg) + eps;  p = p - lr * g / avg
          if (wd != 0) g = g + wd * p[i];
          double& sa = state["square_avg"][i];
          sa = c.alpha * sa + (1 - c.alpha) * g * g;
          p[i] = p[i] - lr * (g / (std::sqrt(sa) + eps));
          break;
        }
        case OptimizerType::kAdam:
        case OptimizerType::kAdamW: {
          // torch.optim.Adam / AdamW (amsgrad False):
          //   adam: g = g + wd * p          adamw: p = p * (1 - lr * wd)
          //   exp_avg.lerp_(g, 1 - b1):  m = m + (1 - b1) * (g - m)
          //   v = b2 * v + (1 - b2) * g * g
          //   bc1 = 1 - b1 ** step;  bc2 = 1 - b2 ** step;  step_size = lr / bc1
          //   denom = sqrt(v) / sqrt(bc2) + eps;  p = p - step_size * m / denom
          if (c.type == OptimizerType::kAdamW) {
            p[i] = p[i] * (1 - lr * wd);
          } else if (wd != 0) {
            g = g + wd * p[i];
          }
          double& m = state["exp_avg"][i];
          double& v = state["exp_avg_sq"][i];
          m = m + (1 - c.beta1) * (g - m);
          v = c.beta2 * v + (1 - c.beta2) * g * g;
          const double bc1 = 1 - std::pow(c.beta1, static_cast<double>(step));
          const double bc2 = 1 - std::pow(c.beta2, static_cast<double>(step));
          const double denom = std::sqrt(v) / std::sqrt(bc2) + eps;
          p[i] = p[i] - (lr / bc1) * (m / denom);
          break;
        }
      }
    }
    momentum_buffer_set = true;
  }
};

struct Case {
  std::string label;
  OptimizerConfig config;
};
void PrintTo(const Case& c, std::ostream* out) { *out << c.label; }

OptimizerConfig make(OptimizerType type, double lr) {
  OptimizerConfig c;
  c.type = type;
  c.lr = lr;
  return c;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  auto add = [&](const std::string& label, OptimizerConfig c) { out.push_back({label, c}); };
  add("sgd", make(OptimizerType::kSgd, 0.1));
  {
    auto c = make(OptimizerType::kSgd, 0.1);
    c.momentum = 0.9;
    add("sgd_momentum", c);
    c.nesterov = true;
    add("sgd_nesterov", c);
    c.weight_decay = 0.05;
    add("sgd_nesterov_weight_decay", c);
    c.nesterov = false;
    add("sgd_momentum_weight_decay", c);
  }
  {
    auto c = make(OptimizerType::kSgd, 0.1);
    c.weight_decay = 0.05;
    add("sgd_weight_decay", c);
  }
  add("adagrad", make(OptimizerType::kAdagrad, 0.05));
  {
    auto c = make(OptimizerType::kAdagrad, 0.05);
    c.weight_decay = 0.05;
    add("adagrad_weight_decay", c);
  }
  add("rmsprop", make(OptimizerType::kRmsprop, 0.01));
  {
    auto c = make(OptimizerType::kRmsprop, 0.01);
    c.weight_decay = 0.05;
    c.alpha = 0.9;
    c.eps = 1e-6;
    add("rmsprop_weight_decay", c);
  }
  add("adam", make(OptimizerType::kAdam, 0.01));
  {
    auto c = make(OptimizerType::kAdam, 0.01);
    c.weight_decay = 0.05;
    c.beta1 = 0.8;
    c.beta2 = 0.95;
    add("adam_weight_decay", c);
  }
  add("adamw_no_decay", make(OptimizerType::kAdamW, 0.01));
  {
    auto c = make(OptimizerType::kAdamW, 0.01);
    c.weight_decay = 0.1;
    add("adamw", c);
  }
  return out;
}

std::vector<std::string> expected_names(const OptimizerConfig& c) {
  switch (c.type) {
    case OptimizerType::kSgd:
      return c.momentum > 0 ? std::vector<std::string>{"momentum_buffer"}
                            : std::vector<std::string>{};
    case OptimizerType::kAdagrad:
      return {"sum"};
    case OptimizerType::kRmsprop:
      return {"square_avg"};
    default:
      return {"exp_avg", "exp_avg_sq"};
  }
}

constexpr int kSteps = 7;
constexpr int kZeroGradStep = 3;  // this step's gradient is all zeros
constexpr int64_t kN = 37;

// The gradient of step k (all zeros on kZeroGradStep) and its learning rate.
std::vector<double> gradient(int k) {
  if (k == kZeroGradStep) return std::vector<double>(kN, 0.0);
  return test::random_values<double>(kN, 1000 + k, -2.0, 2.0);
}
double lr_of(const OptimizerConfig& c, int k) { return c.lr * (1.0 + 0.25 * (k % 3)); }

class OptimizerRule : public ::testing::TestWithParam<Case> {};

TEST_P(OptimizerRule, MatchesTorchReferenceEveryStep) {
  const OptimizerConfig config = GetParam().config;
  Optimizer optimizer(config, kN, DType::kFloat64, Device::cpu());
  Reference ref{config, test::random_values<double>(kN, 7), {}, 0, false};
  for (const auto& name : expected_names(config)) ref.state[name].assign(kN, 0.0);
  Tensor params = Tensor::from_vector(ref.p, {kN});

  for (int k = 0; k < kSteps; ++k) {
    const auto g = gradient(k);
    optimizer.step(params, Tensor::from_vector(g, {kN}), lr_of(config, k));
    ref.run(g, lr_of(config, k));
    ASSERT_TRUE(test::all_close(params.to_vector<double>(), ref.p, 1e-12, 1e-12)) << "step " << k;
    const auto state = optimizer.state();
    ASSERT_EQ(state.size(), ref.state.size());
    for (const auto& [name, buffer] : state) {
      ASSERT_TRUE(ref.state.count(name)) << name;
      ASSERT_TRUE(test::all_close(buffer.to_vector<double>(), ref.state[name], 1e-12, 1e-12))
          << name << " after step " << k;
    }
    EXPECT_EQ(optimizer.steps(), k + 1);
  }
  const auto counter = OptimizerTestPeer::step_counter(optimizer);
  EXPECT_EQ(counter[0], kSteps);
  EXPECT_EQ(counter[1], 0);
}

// The float32 instantiation runs the same formulas: close to the float64 reference.
TEST_P(OptimizerRule, Float32FollowsReference) {
  const OptimizerConfig config = GetParam().config;
  Optimizer optimizer(config, kN, DType::kFloat32, Device::cpu());
  Reference ref{config, test::random_values<double>(kN, 7), {}, 0, false};
  for (const auto& name : expected_names(config)) ref.state[name].assign(kN, 0.0);
  std::vector<float> p32(ref.p.begin(), ref.p.end());
  for (auto& v : ref.p) v = static_cast<double>(static_cast<float>(v));
  Tensor params = Tensor::from_vector(p32, {kN});
  for (int k = 0; k < kSteps; ++k) {
    auto g = gradient(k);
    for (auto& v : g) v = static_cast<double>(static_cast<float>(v));
    optimizer.step(params, Tensor::from_vector(std::vector<float>(g.begin(), g.end()), {kN}),
                   lr_of(config, k));
    ref.run(g, lr_of(config, k));
  }
  EXPECT_TRUE(test::all_close(params.to_vector<float>(), ref.p, 1e-5, 1e-4));
  for (const auto& [name, buffer] : optimizer.state()) {
    EXPECT_TRUE(test::all_close(buffer.to_vector<float>(), ref.state[name], 1e-5, 1e-4)) << name;
  }
}

TEST_P(OptimizerRule, StateNamesAndShapes) {
  const OptimizerConfig config = GetParam().config;
  Optimizer optimizer(config, kN, DType::kFloat64, Device::cpu());
  EXPECT_EQ(optimizer.steps(), 0);
  const auto state = optimizer.state();
  const auto names = expected_names(config);
  ASSERT_EQ(state.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(state[i].first, names[i]);
    EXPECT_EQ(state[i].second.shape(), (Shape{kN}));
    EXPECT_EQ(state[i].second.dtype(), DType::kFloat64);
    for (double v : state[i].second.to_vector<double>()) EXPECT_EQ(v, 0.0);
  }
}

TEST_P(OptimizerRule, ZeroSizeBufferSteps) {
  const OptimizerConfig config = GetParam().config;
  Optimizer optimizer(config, 0, DType::kFloat64, Device::cpu());
  Tensor params({0}, DType::kFloat64);
  const Tensor grads({0}, DType::kFloat64);
  optimizer.step(params, grads, config.lr);
  optimizer.step(params, grads, config.lr);
  EXPECT_EQ(optimizer.steps(), 2);
  for (const auto& [name, buffer] : optimizer.state()) EXPECT_EQ(buffer.numel(), 0) << name;
  EXPECT_EQ(OptimizerTestPeer::step_counter(optimizer)[0], 2);
}

// All-zero gradients from the first step: nothing divides 0 by 0 (adam's first step has
// m = v = 0 and a denominator of eps).
TEST_P(OptimizerRule, AllZeroGradientsStayFinite) {
  const OptimizerConfig config = GetParam().config;
  Optimizer optimizer(config, kN, DType::kFloat64, Device::cpu());
  const auto p0 = test::random_values<double>(kN, 3);
  Tensor params = Tensor::from_vector(p0, {kN});
  const Tensor zeros = Tensor::zeros({kN}, DType::kFloat64);
  for (int k = 0; k < 5; ++k) optimizer.step(params, zeros, config.lr);
  const auto p = params.to_vector<double>();
  for (double v : p) ASSERT_TRUE(std::isfinite(v));
  if (config.weight_decay == 0) {
    EXPECT_EQ(p, p0);
  }
  for (const auto& [name, buffer] : optimizer.state()) {
    for (double v : buffer.to_vector<double>()) ASSERT_TRUE(std::isfinite(v)) << name;
  }
}

// Restoring (steps, state) into a fresh optimizer and continuing gives the same bits as never
// stopping (adam's bias correction depends on the restored step count).
TEST_P(OptimizerRule, LoadStateRoundTrip) {
  const OptimizerConfig config = GetParam().config;
  const auto p0 = test::random_values<double>(kN, 11);

  Optimizer uninterrupted(config, kN, DType::kFloat64, Device::cpu());
  Tensor p_a = Tensor::from_vector(p0, {kN});
  for (int k = 0; k < kSteps; ++k)
    uninterrupted.step(p_a, Tensor::from_vector(gradient(k), {kN}), lr_of(config, k));

  Tensor p_b = Tensor::from_vector(p0, {kN});
  std::vector<std::pair<std::string, Tensor>> saved;
  int64_t saved_steps = 0;
  {
    Optimizer first(config, kN, DType::kFloat64, Device::cpu());
    for (int k = 0; k < 3; ++k)
      first.step(p_b, Tensor::from_vector(gradient(k), {kN}), lr_of(config, k));
    for (const auto& [name, buffer] : first.state()) saved.emplace_back(name, buffer.clone());
    saved_steps = first.steps();
  }
  Optimizer resumed(config, kN, DType::kFloat64, Device::cpu());
  resumed.load_state(saved_steps, saved);
  EXPECT_EQ(resumed.steps(), 3);
  EXPECT_EQ(OptimizerTestPeer::step_counter(resumed)[0], 3);
  for (int k = 3; k < kSteps; ++k)
    resumed.step(p_b, Tensor::from_vector(gradient(k), {kN}), lr_of(config, k));

  EXPECT_EQ(resumed.steps(), uninterrupted.steps());
  EXPECT_EQ(p_b.to_vector<double>(), p_a.to_vector<double>());
  const auto a = uninterrupted.state(), b = resumed.state();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].second.to_vector<double>(), a[i].second.to_vector<double>()) << a[i].first;
  }
}

// A set skip flag makes the step no step: parameters, state and counters stay; a clear flag
// is the same as no flag, bit for bit.
TEST_P(OptimizerRule, SkipFlagLeavesEverythingAsItWas) {
  const OptimizerConfig config = GetParam().config;
  const auto p0 = test::random_values<float>(kN, 21);
  const auto g = test::random_values<float>(kN, 22);
  Optimizer flagged(config, kN, DType::kFloat32, Device::cpu());
  Optimizer plain(config, kN, DType::kFloat32, Device::cpu());
  Tensor p_flagged = Tensor::from_vector(p0, {kN}), p_plain = Tensor::from_vector(p0, {kN});
  const Tensor grads = Tensor::from_vector(g, {kN});
  Tensor skip = Tensor::zeros({1}, DType::kInt32);
  flagged.step(p_flagged, grads, config.lr, &skip);
  plain.step(p_plain, grads, config.lr);
  EXPECT_EQ(p_flagged.to_vector<float>(), p_plain.to_vector<float>());
  const auto params_before = p_flagged.to_vector<float>();
  std::vector<std::vector<float>> state_before;
  for (const auto& [name, buffer] : flagged.state())
    state_before.push_back(buffer.to_vector<float>());
  skip.data<int32_t>()[0] = 1;
  flagged.step(p_flagged, Tensor::from_vector(test::random_values<float>(kN, 23), {kN}), config.lr,
               &skip);
  EXPECT_EQ(p_flagged.to_vector<float>(), params_before);
  for (size_t i = 0; i < state_before.size(); ++i) {
    EXPECT_EQ(flagged.state()[i].second.to_vector<float>(), state_before[i]);
  }
  EXPECT_EQ(flagged.steps(), 1);
  EXPECT_EQ(OptimizerTestPeer::step_counter(flagged)[0], 1);
  flagged.sync_steps();
  EXPECT_EQ(flagged.steps(), 1);
  // The next unskipped step is step 2 on both (adam's bias correction sees t = 2).
  skip.data<int32_t>()[0] = 0;
  flagged.step(p_flagged, grads, config.lr, &skip);
  plain.step(p_plain, grads, config.lr);
  EXPECT_EQ(p_flagged.to_vector<float>(), p_plain.to_vector<float>());
  EXPECT_EQ(flagged.steps(), 2);
}

INSTANTIATE_TEST_SUITE_P(EveryOptimizer, OptimizerRule, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.label;
                         });

TEST(Optimizer, ParseAndNameRoundTrip) {
  for (const char* name : {"sgd", "adagrad", "rmsprop", "adam", "adamw"}) {
    EXPECT_EQ(optimizer_name(parse_optimizer(name)), name);
  }
  try {
    parse_optimizer("lbfgs");
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("lbfgs"), std::string::npos) << e.what();
  }
}

TEST(Optimizer, EffectiveEpsDefaultsAsTorch) {
  OptimizerConfig c;
  c.type = OptimizerType::kAdagrad;
  EXPECT_EQ(c.effective_eps(), 1e-10);
  for (auto type : {OptimizerType::kSgd, OptimizerType::kRmsprop, OptimizerType::kAdam,
                    OptimizerType::kAdamW}) {
    c.type = type;
    EXPECT_EQ(c.effective_eps(), 1e-8);
  }
  c.eps = 1e-3;
  EXPECT_EQ(c.effective_eps(), 1e-3);
}

TEST(Optimizer, DefaultConfigsValidate) {
  for (auto type : {OptimizerType::kSgd, OptimizerType::kAdagrad, OptimizerType::kRmsprop,
                    OptimizerType::kAdam, OptimizerType::kAdamW}) {
    OptimizerConfig c;
    c.type = type;
    EXPECT_NO_THROW(c.validate()) << optimizer_name(type);
  }
}

struct BadField {
  const char* field;
  const char* value;  // as the message prints it
  void (*spoil)(OptimizerConfig&);
};

TEST(Optimizer, ValidateNamesTheFieldAndTheValue) {
  const BadField bad[] = {
      {"lr", "-0.5", [](OptimizerConfig& c) { c.lr = -0.5; }},
      {"lr", "nan", [](OptimizerConfig& c) { c.lr = std::nan(""); }},
      {"beta1", "1", [](OptimizerConfig& c) { c.beta1 = 1.0; }},
      {"beta1", "-0.1", [](OptimizerConfig& c) { c.beta1 = -0.1; }},
      {"beta2", "1.5", [](OptimizerConfig& c) { c.beta2 = 1.5; }},
      {"eps", "0", [](OptimizerConfig& c) { c.eps = 0.0; }},
      {"eps", "-1e-08", [](OptimizerConfig& c) { c.eps = -1e-8; }},
      {"alpha", "1", [](OptimizerConfig& c) { c.alpha = 1.0; }},
      {"momentum", "-0.9",
       [](OptimizerConfig& c) {
         c.type = OptimizerType::kSgd;
         c.momentum = -0.9;
       }},
      {"nesterov", "0",
       [](OptimizerConfig& c) {
         c.type = OptimizerType::kSgd;
         c.nesterov = true;
       }},
      {"momentum", "0.9", [](OptimizerConfig& c) { c.momentum = 0.9; }},  // adam has none
      {"weight_decay", "-0.01", [](OptimizerConfig& c) { c.weight_decay = -0.01; }},
  };
  for (const BadField& b : bad) {
    OptimizerConfig c;
    b.spoil(c);
    try {
      c.validate();
      ADD_FAILURE() << "expected ValueError for " << b.field << " " << b.value;
    } catch (const ValueError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(b.field), std::string::npos) << what;
      EXPECT_NE(what.find(b.value), std::string::npos) << what;
    }
    EXPECT_THROW(Optimizer(c, 4, DType::kFloat64, Device::cpu()), ValueError) << b.field;
  }
}

TEST(Optimizer, StepChecksItsArguments) {
  OptimizerConfig c;
  Optimizer optimizer(c, 4, DType::kFloat64, Device::cpu());
  Tensor params = Tensor::zeros({4}, DType::kFloat64);
  EXPECT_THROW(optimizer.step(params, Tensor::zeros({5}, DType::kFloat64), 0.1), ShapeError);
  Tensor wrong_size = Tensor::zeros({3}, DType::kFloat64);
  EXPECT_THROW(optimizer.step(wrong_size, Tensor::zeros({3}, DType::kFloat64), 0.1), ShapeError);
  EXPECT_THROW(optimizer.step(params, Tensor::zeros({4}, DType::kFloat32), 0.1), ShapeError);
  EXPECT_THROW(optimizer.step(params, Tensor::zeros({4}, DType::kFloat64), -1.0), ValueError);
  EXPECT_EQ(optimizer.steps(), 0);
  EXPECT_THROW(Optimizer(c, -1, DType::kFloat64, Device::cpu()), ShapeError);
  EXPECT_THROW(Optimizer(c, 4, DType::kInt32, Device::cpu()), ShapeError);
}

TEST(Optimizer, LoadStateRejectsMismatchesAndKeepsState) {
  OptimizerConfig c;  // adam
  Optimizer optimizer(c, 4, DType::kFloat64, Device::cpu());
  Tensor params = Tensor::zeros({4}, DType::kFloat64);
  optimizer.step(params, Tensor::from_vector<double>({1, 2, 3, 4}, {4}), 0.1);
  const auto before = optimizer.state()[0].second.to_vector<double>();

  auto good = [] {
    return std::vector<std::pair<std::string, Tensor>>{
        {"exp_avg", Tensor::zeros({4}, DType::kFloat64)},
        {"exp_avg_sq", Tensor::zeros({4}, DType::kFloat64)}};
  };
  auto renamed = good();
  renamed[1].first = "sum";
  auto short_list = good();
  short_list.pop_back();
  auto wrong_shape = good();
  wrong_shape[1].second = Tensor::zeros({5}, DType::kFloat64);
  auto wrong_dtype = good();
  wrong_dtype[0].second = Tensor::zeros({4}, DType::kFloat32);
  auto twice = good();
  twice[1].first = "exp_avg";

  EXPECT_THROW(optimizer.load_state(2, renamed), ShapeError);
  EXPECT_THROW(optimizer.load_state(2, short_list), ShapeError);
  EXPECT_THROW(optimizer.load_state(2, wrong_shape), ShapeError);
  EXPECT_THROW(optimizer.load_state(2, wrong_dtype), ShapeError);
  EXPECT_THROW(optimizer.load_state(2, twice), ShapeError);
  EXPECT_THROW(optimizer.load_state(-1, good()), ValueError);
  EXPECT_EQ(optimizer.steps(), 1);
  EXPECT_EQ(optimizer.state()[0].second.to_vector<double>(), before);

  // Any order of names is accepted.
  auto reversed = good();
  std::swap(reversed[0], reversed[1]);
  reversed[0].second = Tensor::from_vector<double>({5, 6, 7, 8}, {4});
  optimizer.load_state(9, reversed);
  EXPECT_EQ(optimizer.steps(), 9);
  EXPECT_EQ(optimizer.state()[1].second.to_vector<double>(), (std::vector<double>{5, 6, 7, 8}));
  EXPECT_EQ(OptimizerTestPeer::step_counter(optimizer), (std::vector<int32_t>{9, 0}));

  // Plain sgd has no state: only an empty list loads.
  OptimizerConfig sgd;
  sgd.type = OptimizerType::kSgd;
  Optimizer plain(sgd, 4, DType::kFloat64, Device::cpu());
  EXPECT_NO_THROW(plain.load_state(3, {}));
  EXPECT_EQ(plain.steps(), 3);
  EXPECT_THROW(plain.load_state(3, good()), ShapeError);
}

TEST(Optimizer, SkipFlagMustBeAnInt32OnTheDevice) {
  Optimizer optimizer(OptimizerConfig{}, 4, DType::kFloat32, Device::cpu());
  Tensor params = Tensor::zeros({4});
  const Tensor grads = Tensor::zeros({4});
  const Tensor wrong = Tensor::zeros({1});  // float32
  EXPECT_THROW(optimizer.step(params, grads, 1e-3, &wrong), ShapeError);
}

TEST(Optimizer, FlagNonfiniteFlagsAndCounts) {
  Tensor flag = Tensor::zeros({4}, DType::kInt32);
  const Tensor finite_loss = Tensor::from_vector<float>({0.5f}, {1});
  Tensor grads = Tensor::from_vector<float>({1, -2, 3}, {3});
  flag_nonfinite(finite_loss, grads, flag);
  EXPECT_EQ(flag.to_vector<int32_t>(), (std::vector<int32_t>{0, 0, 0, 0}));
  grads.data<float>()[1] = std::nanf("");
  flag_nonfinite(finite_loss, grads, flag);
  EXPECT_EQ(flag.to_vector<int32_t>()[0], 1);
  grads.data<float>()[1] = 0.0f;
  const Tensor inf_loss = Tensor::from_vector<float>({INFINITY}, {1});
  flag_nonfinite(inf_loss, grads, flag);
  EXPECT_EQ(flag.to_vector<int32_t>(), (std::vector<int32_t>{1, 0, 2, 0}));
  flag_nonfinite(finite_loss, grads, flag);
  EXPECT_EQ(flag.to_vector<int32_t>(), (std::vector<int32_t>{0, 0, 2, 0}));
  const Tensor double_loss = Tensor::from_vector<double>({0.5}, {1});
  EXPECT_THROW(flag_nonfinite(double_loss, grads, flag), ShapeError);
}

}  // namespace
}  // namespace mlpx
