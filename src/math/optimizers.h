// The optimizers' formulas: one rule per member of MLPX_OPTIMIZERS (mlpx/enums.h), each the
// update of one parameter, __host__ __device__, shared by the CPU loop
// (src/cpu/optimizer_step.cpp) and the CUDA kernel (kernels/optimizer_step.cu); and the one
// `visit` that turns a runtime OptimizerType into its member.
//
// A rule is a struct with
//   Hyper                    its hyperparameters as the host holds them (double), and
//                            static Hyper hyper(const OptimizerConfig&, double lr);
//   Coefficients<T>          the same rounded once to the parameter type, and
//                            static Coefficients<T> coefficients(const Hyper&, int64_t t);
//                            (t: this step's number, from 1; read on the device on a GPU)
//   kDefaultEps              the eps of a config without one (torch.optim's default);
//   kTakesMomentum           whether the momentum and nesterov keys apply;
//   kStateNames[]            its state buffers, named as torch.optim names them; the first
//                            state_buffers(hyper) of them are kept (kFewestStateBuffers ..
//                            kMostStateBuffers, fixed at compile time);
//   update<S>(p, g, state, c)  the new p, with state[0..S) updated in place.
// Every state buffer and the parameters share one flat layout, so a step is one pass over the
// buffers (one kernel launch on a GPU).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "math/hd.h"
#include "math/onecycle.h"
#include "mlpx/enums.h"
#include "mlpx/error.h"
#include "mlpx/optimizer.h"

namespace mlpx::math {

// ---- sgd ---------------------------------------------------------------------------------
// SGD with optional momentum, Nesterov momentum and L2 weight decay, as torch.optim.SGD
// (dampening 0):
//   g' = g + wd p;  v = mu v + g' (v = g' on the first step: v starts at 0);
//   p -= lr v, or with nesterov p -= lr (g' + mu v).

// Hyperparameters as the host holds them (double).
struct SgdHyper {
  double lr = 0;
  double momentum = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

// The same, rounded once to the parameter type.
template <typename T>
struct SgdCoefficients {
  T lr, momentum, weight_decay;
  bool nesterov;
};

template <typename T>
MLPX_HD SgdCoefficients<T> sgd_coefficients(const SgdHyper& h) {
  return {static_cast<T>(h.lr), static_cast<T>(h.momentum), static_cast<T>(h.weight_decay),
          h.nesterov};
}

// Plain SGD: the new p.
template <typename T>
MLPX_HD T sgd_update(T p, T g, const SgdCoefficients<T>& c) {
  if (c.weight_decay != T(0)) g += c.weight_decay * p;
  return p - c.lr * g;
}

// SGD with momentum: updates the momentum buffer `buf` in place, returns the new p.
template <typename T>
MLPX_HD T sgd_momentum_update(T p, T g, T& buf, const SgdCoefficients<T>& c) {
  if (c.weight_decay != T(0)) g += c.weight_decay * p;
  // mu * 0 + g == g exactly, so a zeroed buffer reproduces torch's "v = g" first step.
  buf = c.momentum * buf + g;
  const T d = c.nesterov ? g + c.momentum * buf : buf;
  return p - c.lr * d;
}

// plain sgd keeps no state; with momentum, one buffer.
struct SgdRule {
  using Hyper = SgdHyper;
  template <typename T>
  using Coefficients = SgdCoefficients<T>;
  static constexpr double kDefaultEps = 1e-8;   // unused: sgd takes no eps
  static constexpr bool kTakesMomentum = true;  // the momentum and nesterov keys apply
  static constexpr const char* kStateNames[] = {"momentum_buffer"};
  static constexpr int kFewestStateBuffers = 0;
  static constexpr int kMostStateBuffers = 1;
  static int state_buffers(const Hyper& h) { return h.momentum > 0 ? 1 : 0; }
  static Hyper hyper(const OptimizerConfig& c, double lr) {
    return {lr, c.momentum, c.weight_decay, c.nesterov};
  }
  // onecycle's cycle_momentum moves sgd's momentum.
  static constexpr bool kCyclesMomentum = true;
  MLPX_HD static void set_cycled_momentum(Hyper& h, double momentum) { h.momentum = momentum; }
  template <typename T>
  MLPX_HD static Coefficients<T> coefficients(const Hyper& h, int64_t /*t*/) {
    return sgd_coefficients<T>(h);
  }
  template <int S, typename T>
  MLPX_HD static T update(T p, T g, [[maybe_unused]] T* state, const Coefficients<T>& c) {
    if constexpr (S == 0) {
      return sgd_update(p, g, c);
    } else {
      return sgd_momentum_update(p, g, state[0], c);
    }
  }
};

// ---- adagrad -----------------------------------------------------------------------------
// Adagrad as torch.optim.Adagrad (lr_decay 0, initial_accumulator_value 0):
//   g' = g + wd p;  sum += g'^2;  p -= lr g' / (sqrt(sum) + eps).

struct AdagradHyper {
  double lr = 0;
  double eps = 1e-10;
  double weight_decay = 0;
};

template <typename T>
struct AdagradCoefficients {
  T lr, eps, weight_decay;
};

template <typename T>
MLPX_HD AdagradCoefficients<T> adagrad_coefficients(const AdagradHyper& h) {
  return {static_cast<T>(h.lr), static_cast<T>(h.eps), static_cast<T>(h.weight_decay)};
}

// Updates the accumulator `sum` in place, returns the new p.
template <typename T>
MLPX_HD T adagrad_update(T p, T g, T& sum, const AdagradCoefficients<T>& c) {
  using std::sqrt;
  if (c.weight_decay != T(0)) g += c.weight_decay * p;
  sum += g * g;
  return p - c.lr * (g / (sqrt(sum) + c.eps));
}

struct AdagradRule {
  using Hyper = AdagradHyper;
  template <typename T>
  using Coefficients = AdagradCoefficients<T>;
  // The eps a config without one takes (torch.optim's default); sgd takes none.
  static constexpr double kDefaultEps = 1e-10;
  // Whether the momentum and nesterov keys apply.
  static constexpr bool kTakesMomentum = false;
  static constexpr const char* kStateNames[] = {"sum"};
  static constexpr int kFewestStateBuffers = 1;
  static constexpr int kMostStateBuffers = 1;
  static int state_buffers(const Hyper& /*h*/) { return 1; }
  static Hyper hyper(const OptimizerConfig& c, double lr) {
    return {lr, c.effective_eps(), c.weight_decay};
  }
  // Nothing for onecycle's cycle_momentum to move.
  static constexpr bool kCyclesMomentum = false;
  MLPX_HD static void set_cycled_momentum(Hyper& /*h*/, double /*momentum*/) {}
  template <typename T>
  MLPX_HD static Coefficients<T> coefficients(const Hyper& h, int64_t /*t*/) {
    return adagrad_coefficients<T>(h);
  }
  template <int S, typename T>
  MLPX_HD static T update(T p, T g, T* state, const Coefficients<T>& c) {
    return adagrad_update(p, g, state[0], c);
  }
};

// ---- rmsprop -----------------------------------------------------------------------------
// RMSprop as torch.optim.RMSprop (not centered, no momentum):
//   g' = g + wd p;  s = alpha s + (1 - alpha) g'^2;  p -= lr g' / (sqrt(s) + eps).

struct RmspropHyper {
  double lr = 0;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0;
};

template <typename T>
struct RmspropCoefficients {
  T lr, alpha, one_minus_alpha, eps, weight_decay;
};

// 1 - alpha is formed in double, then rounded, as torch forms it in Python.
template <typename T>
MLPX_HD RmspropCoefficients<T> rmsprop_coefficients(const RmspropHyper& h) {
  return {static_cast<T>(h.lr), static_cast<T>(h.alpha), static_cast<T>(1.0 - h.alpha),
          static_cast<T>(h.eps), static_cast<T>(h.weight_decay)};
}

// Updates the running mean of squares `square_avg` in place, returns the new p.
template <typename T>
MLPX_HD T rmsprop_update(T p, T g, T& square_avg, const RmspropCoefficients<T>& c) {
  using std::sqrt;
  if (c.weight_decay != T(0)) g += c.weight_decay * p;
  square_avg = c.alpha * square_avg + c.one_minus_alpha * (g * g);
  return p - c.lr * (g / (sqrt(square_avg) + c.eps));
}

struct RmspropRule {
  using Hyper = RmspropHyper;
  template <typename T>
  using Coefficients = RmspropCoefficients<T>;
  // The eps a config without one takes (torch.optim's default); sgd takes none.
  static constexpr double kDefaultEps = 1e-8;
  // Whether the momentum and nesterov keys apply.
  static constexpr bool kTakesMomentum = false;
  static constexpr const char* kStateNames[] = {"square_avg"};
  static constexpr int kFewestStateBuffers = 1;
  static constexpr int kMostStateBuffers = 1;
  static int state_buffers(const Hyper& /*h*/) { return 1; }
  static Hyper hyper(const OptimizerConfig& c, double lr) {
    return {lr, c.alpha, c.effective_eps(), c.weight_decay};
  }
  // Nothing for onecycle's cycle_momentum to move (this rmsprop keeps no momentum).
  static constexpr bool kCyclesMomentum = false;
  MLPX_HD static void set_cycled_momentum(Hyper& /*h*/, double /*momentum*/) {}
  template <typename T>
  MLPX_HD static Coefficients<T> coefficients(const Hyper& h, int64_t /*t*/) {
    return rmsprop_coefficients<T>(h);
  }
  template <int S, typename T>
  MLPX_HD static T update(T p, T g, T* state, const Coefficients<T>& c) {
    return rmsprop_update(p, g, state[0], c);
  }
};

// ---- adam --------------------------------------------------------------------------------
// Adam and AdamW as torch.optim.Adam / AdamW (amsgrad off), step t counted from 1:
//   adam:  g' = g + wd p            adamw: p *= 1 - lr wd, g' = g
//   m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)     (eps outside the sqrt)

struct AdamHyper {
  double lr = 0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool decoupled = false;  // adamw
};

// Everything one step needs, rounded once to the parameter type.
template <typename T>
struct AdamCoefficients {
  T beta1, beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay;
  T decay;                  // adamw: 1 - lr wd; adam: 1
  T step_size;              // lr / (1 - b1^t)
  T bias_correction2_sqrt;  // sqrt(1 - b2^t)
  bool decoupled;
};

// The coefficients of step t (t >= 1), formed in double as torch forms them in Python.
template <typename T>
MLPX_HD AdamCoefficients<T> adam_coefficients(const AdamHyper& h, int64_t t) {
  using std::pow;
  using std::sqrt;
  const double td = static_cast<double>(t);
  const double bias_correction1 = 1.0 - pow(h.beta1, td);
  const double bias_correction2 = 1.0 - pow(h.beta2, td);
  AdamCoefficients<T> c;
  c.beta1 = static_cast<T>(h.beta1);
  c.beta2 = static_cast<T>(h.beta2);
  c.one_minus_beta1 = static_cast<T>(1.0 - h.beta1);
  c.one_minus_beta2 = static_cast<T>(1.0 - h.beta2);
  c.eps = static_cast<T>(h.eps);
  c.weight_decay = static_cast<T>(h.weight_decay);
  c.decay = static_cast<T>(h.decoupled ? 1.0 - h.lr * h.weight_decay : 1.0);
  c.step_size = static_cast<T>(h.lr / bias_correction1);
  c.bias_correction2_sqrt = static_cast<T>(sqrt(bias_correction2));
  c.decoupled = h.decoupled;
  return c;
}

// Updates the moments exp_avg (m) and exp_avg_sq (v) in place, returns the new p.
template <typename T>
MLPX_HD T adam_update(T p, T g, T& exp_avg, T& exp_avg_sq, const AdamCoefficients<T>& c) {
  using std::sqrt;
  if (c.decoupled) {
    p *= c.decay;
  } else if (c.weight_decay != T(0)) {
    g += c.weight_decay * p;
  }
  exp_avg = c.beta1 * exp_avg + c.one_minus_beta1 * g;
  exp_avg_sq = c.beta2 * exp_avg_sq + c.one_minus_beta2 * (g * g);
  const T denom = sqrt(exp_avg_sq) / c.bias_correction2_sqrt + c.eps;
  return p - c.step_size * (exp_avg / denom);
}

struct AdamRule {
  using Hyper = AdamHyper;
  template <typename T>
  using Coefficients = AdamCoefficients<T>;
  // The eps a config without one takes (torch.optim's default); sgd takes none.
  static constexpr double kDefaultEps = 1e-8;
  // Whether the momentum and nesterov keys apply.
  static constexpr bool kTakesMomentum = false;
  static constexpr const char* kStateNames[] = {"exp_avg", "exp_avg_sq"};
  static constexpr int kFewestStateBuffers = 2;
  static constexpr int kMostStateBuffers = 2;
  static int state_buffers(const Hyper& /*h*/) { return 2; }
  static Hyper hyper(const OptimizerConfig& c, double lr) {
    return {lr, c.beta1, c.beta2, c.effective_eps(), c.weight_decay, false};
  }
  // onecycle's cycle_momentum moves beta1, as OneCycleLR moves betas[0].
  static constexpr bool kCyclesMomentum = true;
  MLPX_HD static void set_cycled_momentum(Hyper& h, double momentum) { h.beta1 = momentum; }
  // The bias corrections depend on t, which on a GPU only the device knows: formed once per
  // thread there.
  template <typename T>
  MLPX_HD static Coefficients<T> coefficients(const Hyper& h, int64_t t) {
    return adam_coefficients<T>(h, t);
  }
  template <int S, typename T>
  MLPX_HD static T update(T p, T g, T* state, const Coefficients<T>& c) {
    return adam_update(p, g, state[0], state[1], c);
  }
};

// adamw: adam with the weight decay decoupled from the gradient.
struct AdamWRule : AdamRule {
  static Hyper hyper(const OptimizerConfig& c, double lr) {
    Hyper h = AdamRule::hyper(c, lr);
    h.decoupled = true;
    return h;
  }
};

// ---- one step's rates -----------------------------------------------------------------------
// What may change from step to step without a new launch configuration: the rate (read where
// the step runs: host memory on the CPU, device memory on a GPU, so a CUDA graph replays it),
// onecycle's per-step rate and momentum (from the step number t), and clipping's gradient
// scale. Shared by the CPU loop and the kernel.

// The rule's hyperparameters for step t (from 1): `h` at rate lr, or at onecycle's rate and
// momentum of step t - 1 when the plan has steps.
template <typename Rule>
MLPX_HD typename Rule::Hyper step_hyper(typename Rule::Hyper h, double lr,
                                        const OneCyclePlan& cycle, int64_t t) {
  h.lr = lr;
  if (cycle.total_steps > 0) {
    const OneCycleRates rates = one_cycle_at(cycle, t - 1);
    h.lr = rates.lr;
    if (cycle.cycle_momentum) Rule::set_cycled_momentum(h, rates.momentum);
  }
  return h;
}

// The coefficients of a parameter that decays and of one that does not (optimizer.decay
// "weights": biases and norm parameters take weight_decay 0, PyTorch's second group).
template <typename Rule, typename T>
struct DecayPair {
  typename Rule::template Coefficients<T> decayed, plain;
};
template <typename Rule, typename T>
MLPX_HD DecayPair<Rule, T> decay_pair(typename Rule::Hyper h, int64_t t) {
  DecayPair<Rule, T> out;
  out.decayed = Rule::template coefficients<T>(h, t);
  h.weight_decay = 0;
  out.plain = Rule::template coefficients<T>(h, t);
  return out;
}

// ---- the table ---------------------------------------------------------------------------

// OptimizerMember<type>: the rule the table names for `type`, with its kKind and kName.
template <OptimizerType kType>
struct OptimizerMember;

// (`rule` is a type: it cannot take parentheses.)
// NOLINTBEGIN(bugprone-macro-parentheses)
#define MLPX_OPTIMIZER_MEMBER(kind, name, rule)                 \
  template <>                                                   \
  struct OptimizerMember<OptimizerType::kind> : rule {          \
    using Rule = rule;                                          \
    static constexpr OptimizerType kKind = OptimizerType::kind; \
    static constexpr const char* kName = name;                  \
  };
MLPX_OPTIMIZERS(MLPX_OPTIMIZER_MEMBER)
#undef MLPX_OPTIMIZER_MEMBER
// NOLINTEND(bugprone-macro-parentheses)

// Every optimizer, in the table's order (for tests that cover the whole family).
#define MLPX_OPTIMIZER_VALUE(kind, ...) OptimizerType::kind,
inline constexpr OptimizerType kOptimizers[] = {MLPX_OPTIMIZERS(MLPX_OPTIMIZER_VALUE)};
#undef MLPX_OPTIMIZER_VALUE

// f(OptimizerMember<type>{}): the one switch on an optimizer. Host code.
template <typename F>
decltype(auto) visit(OptimizerType type, F&& f) {
  switch (type) {
#define MLPX_VISIT_CASE(kind, ...) \
  case OptimizerType::kind:        \
    return f(OptimizerMember<OptimizerType::kind>{});
    MLPX_OPTIMIZERS(MLPX_VISIT_CASE)
#undef MLPX_VISIT_CASE
  }
  throw ValueError("optimizer: expected a member of the table (mlpx/enums.h), found value " +
                   std::to_string(static_cast<int>(type)));
}

// f(std::integral_constant<int, S>{}) for the S = state_buffers(hyper) of Member, S known at
// compile time (one instantiation per count the rule can keep).
template <typename Member, typename F>
decltype(auto) visit_state_buffers(const typename Member::Hyper& hyper, F&& f) {
  constexpr int kFewest = Member::kFewestStateBuffers, kMost = Member::kMostStateBuffers;
  static_assert(kMost - kFewest <= 1, "visit_state_buffers: extend it for a wider range");
  if (Member::state_buffers(hyper) == kFewest) return f(std::integral_constant<int, kFewest>{});
  return f(std::integral_constant<int, kMost>{});
}

}  // namespace mlpx::math
