#include "mlpx/schedule.h"

#include <algorithm>
#include <cmath>
#include <ostream>
#include <sstream>
#include <string>

#include "core/names.h"
#include "math/onecycle.h"
#include "mlpx/config.h"
#include "mlpx/error.h"

namespace mlpx {

namespace {

constexpr double kPi = 3.14159265358979323846;

// ScheduleMember<type>: one member of the schedules' table (MLPX_SCHEDULES in mlpx/enums.h):
//   lr(config, lr0, e): the learning rate of epoch e counted after the warmup;
//   describe(config, text): what it does, appended to "lr <lr0>" for the run's header.
template <ScheduleType kType>
struct ScheduleMember;

template <>
struct ScheduleMember<ScheduleType::kNone> {
  static double lr(const ScheduleConfig& /*config*/, double lr0, int /*e*/) { return lr0; }
  static void describe(const ScheduleConfig& /*config*/, std::ostream& /*text*/) {}
};

template <>
struct ScheduleMember<ScheduleType::kStep> {
  static double lr(const ScheduleConfig& config, double lr0, int e) {
    return lr0 * std::pow(config.gamma, std::floor(static_cast<double>(e) / config.step_size));
  }
  static void describe(const ScheduleConfig& config, std::ostream& text) {
    text << ", x" << config.gamma << " every " << config.step_size << " epochs";
  }
};

template <>
struct ScheduleMember<ScheduleType::kMultiStep> {
  static double lr(const ScheduleConfig& config, double lr0, int e) {
    // Milestone m decays from epoch m on (torch's MultiStepLR: bisect_right).
    const auto passed = std::upper_bound(config.milestones.begin(), config.milestones.end(), e) -
                        config.milestones.begin();
    return lr0 * std::pow(config.gamma, static_cast<double>(passed));
  }
  static void describe(const ScheduleConfig& config, std::ostream& text) {
    text << ", x" << config.gamma << " at epochs ";
    for (size_t i = 0; i < config.milestones.size(); ++i) {
      text << (i ? ", " : "") << config.milestones[i];
    }
  }
};

template <>
struct ScheduleMember<ScheduleType::kExponential> {
  static double lr(const ScheduleConfig& config, double lr0, int e) {
    return lr0 * std::pow(config.gamma, static_cast<double>(e));
  }
  static void describe(const ScheduleConfig& config, std::ostream& text) {
    text << ", x" << config.gamma << " per epoch";
  }
};

template <>
struct ScheduleMember<ScheduleType::kCosine> {
  static double lr(const ScheduleConfig& config, double lr0, int e) {
    const double t_max = config.total_epochs - config.warmup_epochs;
    return config.min_lr + (lr0 - config.min_lr) * (1 + std::cos(kPi * e / t_max)) / 2;
  }
  static void describe(const ScheduleConfig& config, std::ostream& text) {
    text << ", cosine to " << config.min_lr << " over "
         << config.total_epochs - config.warmup_epochs << " epochs";
  }
};

// onecycle: the epoch's rate is that of its first step (the optimizer takes each step's own from
// math::one_cycle_at); e counts epochs, so this is for the run's log line.
template <>
struct ScheduleMember<ScheduleType::kOneCycle> {
  static double lr(const ScheduleConfig& config, double lr0, int /*e*/) {
    return config.max_lr.value_or(lr0) / config.div_factor;
  }
  static void describe(const ScheduleConfig& config, std::ostream& text) {
    text << ", one cycle per step peaking at ";
    if (config.max_lr) {
      text << *config.max_lr;
    } else {
      text << "that lr";
    }
    text << " (" << detail::enum_name(detail::kAnnealNames, config.anneal) << ", rising "
         << config.pct_start * 100 << "% of the steps)";
  }
};

// plateau: the rate of an epoch comes from the validation figures before it (PlateauState);
// without them, the first rate.
template <>
struct ScheduleMember<ScheduleType::kPlateau> {
  static double lr(const ScheduleConfig& /*config*/, double lr0, int /*e*/) { return lr0; }
  static void describe(const ScheduleConfig& config, std::ostream& text) {
    text << ", x" << config.factor << " after " << config.patience << " epochs without a "
         << detail::enum_name(detail::kMetricNames, config.metric) << " improvement";
  }
};

// f(ScheduleMember<type>{}): the one switch on a schedule, generated from the table (a member
// without its ScheduleMember does not compile).
template <typename F>
decltype(auto) visit(ScheduleType type, F&& f) {
  switch (type) {
#define MLPX_VISIT_CASE(kind, ...) \
  case ScheduleType::kind:         \
    return f(ScheduleMember<ScheduleType::kind>{});
    MLPX_SCHEDULES(MLPX_VISIT_CASE)
#undef MLPX_VISIT_CASE
  }
  throw ValueError("schedule: expected a member of the table (mlpx/enums.h), found value " +
                   std::to_string(static_cast<int>(type)));
}

}  // namespace

ScheduleType parse_schedule(const std::string& name) {
  return detail::parse_enum(detail::kScheduleNames, name, "schedule");
}

std::string schedule_name(ScheduleType type) {
  return detail::enum_name(detail::kScheduleNames, type);
}

void ScheduleConfig::validate() const {
  MLPX_CHECK(step_size >= 1, ValueError, "schedule.step_size: expected an integer >= 1, found ",
             step_size);
  MLPX_CHECK(std::isfinite(gamma) && gamma > 0, ValueError,
             "schedule.gamma: expected a finite value > 0, found ", gamma);
  for (size_t i = 0; i < milestones.size(); ++i) {
    MLPX_CHECK(milestones[i] >= 0 && (i == 0 || milestones[i] > milestones[i - 1]), ValueError,
               "schedule.milestones: expected increasing epochs >= 0, found ", milestones[i],
               " at position ", i, i > 0 ? " after " : "",
               i > 0 ? std::to_string(milestones[i - 1]) : std::string());
  }
  MLPX_CHECK(total_epochs >= 1, ValueError,
             "schedule.total_epochs: expected an integer >= 1, found ", total_epochs);
  MLPX_CHECK(std::isfinite(min_lr) && min_lr >= 0, ValueError,
             "schedule.min_lr: expected a finite value >= 0, found ", min_lr);
  MLPX_CHECK(warmup_epochs >= 0, ValueError,
             "schedule.warmup_epochs: expected an integer >= 0, found ", warmup_epochs);
  MLPX_CHECK(!max_lr || (std::isfinite(*max_lr) && *max_lr > 0), ValueError,
             "schedule.max_lr: expected a finite value > 0, found ", max_lr.value_or(0));
  MLPX_CHECK(pct_start > 0 && pct_start < 1, ValueError,
             "schedule.pct_start: expected a fraction in (0, 1), found ", pct_start);
  MLPX_CHECK(std::isfinite(div_factor) && div_factor > 0, ValueError,
             "schedule.div_factor: expected a finite value > 0, found ", div_factor);
  MLPX_CHECK(std::isfinite(final_div_factor) && final_div_factor > 0, ValueError,
             "schedule.final_div_factor: expected a finite value > 0, found ", final_div_factor);
  MLPX_CHECK(base_momentum >= 0 && base_momentum <= max_momentum && max_momentum < 1, ValueError,
             "schedule.base_momentum, max_momentum: expected 0 <= base <= max < 1, found ",
             base_momentum, " and ", max_momentum);
  MLPX_CHECK(std::isfinite(factor) && factor > 0 && factor < 1, ValueError,
             "schedule.factor: expected a value in (0, 1), found ", factor);
  MLPX_CHECK(patience >= 0, ValueError, "schedule.patience: expected an integer >= 0, found ",
             patience);
  MLPX_CHECK(std::isfinite(threshold) && threshold >= 0, ValueError,
             "schedule.threshold: expected a finite value >= 0, found ", threshold);
  MLPX_CHECK(cooldown >= 0, ValueError, "schedule.cooldown: expected an integer >= 0, found ",
             cooldown);
  // onecycle has its own warmup (the rising phase).
  MLPX_CHECK(type != ScheduleType::kOneCycle || warmup_epochs == 0, ValueError,
             "schedule.warmup_epochs: expected 0 for onecycle (its rising phase is the warmup), "
             "found ",
             warmup_epochs);
  // Cosine anneals over T = total - warmup epochs: T must be at least one epoch.
  MLPX_CHECK(type != ScheduleType::kCosine || warmup_epochs < total_epochs, ValueError,
             "schedule.warmup_epochs: expected fewer than total_epochs (", total_epochs,
             ") for cosine, found ", warmup_epochs);
}

OneCyclePlan one_cycle_plan(const ScheduleConfig& config, double lr0, int64_t total_steps) {
  OneCyclePlan plan;
  plan.total_steps = total_steps;
  plan.max_lr = config.max_lr.value_or(lr0);
  plan.initial_lr = plan.max_lr / config.div_factor;
  plan.min_lr = plan.initial_lr / config.final_div_factor;
  plan.rise_end = config.pct_start * static_cast<double>(total_steps) - 1.0;
  plan.cosine = config.anneal == Anneal::kCos;
  plan.cycle_momentum = config.cycle_momentum;
  plan.base_momentum = config.base_momentum;
  plan.max_momentum = config.max_momentum;
  // OneCycleLR divides by both phases' lengths.
  MLPX_CHECK(plan.rise_end > 0 && plan.rise_end < static_cast<double>(total_steps - 1), ValueError,
             "schedule.pct_start: expected a rising phase of more than one step and a falling one "
             "over ",
             total_steps, " optimizer steps, found pct_start ", config.pct_start);
  return plan;
}

OneCycleRates one_cycle_rates(const OneCyclePlan& plan, int64_t step) {
  return math::one_cycle_at(plan, step);
}

PlateauState PlateauState::start(double lr0) {
  PlateauState s;
  s.lr = lr0;
  s.best = std::nan("");
  return s;
}

bool PlateauState::step(const ScheduleConfig& config, double value) {
  const bool lower = !higher_is_better(config.metric);
  // threshold_mode "rel": better than best * (1 -+ threshold); anything beats no best yet.
  const bool better = std::isnan(best) ? !std::isnan(value)
                      : lower          ? value < best * (1.0 - config.threshold)
                                       : value > best * (1.0 + config.threshold);
  if (better) {
    best = value;
    bad_epochs = 0;
  } else {
    ++bad_epochs;
  }
  if (cooldown_left > 0) {
    --cooldown_left;
    bad_epochs = 0;
  }
  if (bad_epochs <= config.patience) return false;
  const double reduced = std::max(lr * config.factor, config.min_lr);
  cooldown_left = config.cooldown;
  bad_epochs = 0;
  // ReduceLROnPlateau leaves a change smaller than its eps (1e-8) alone.
  if (lr - reduced <= 1e-8) return false;
  lr = reduced;
  return true;
}

double scheduled_lr(const ScheduleConfig& config, double lr0, int epoch) {
  config.validate();
  MLPX_CHECK(epoch >= 0, ValueError, "scheduled_lr: expected an epoch >= 0, found ", epoch);
  const int warmup = config.warmup_epochs;
  if (epoch < warmup) return lr0 * (epoch + 1) / (warmup + 1);
  return visit(config.type,
               [&](auto member) { return decltype(member)::lr(config, lr0, epoch - warmup); });
}

std::string describe_schedule(const ScheduleConfig& config, double lr0) {
  std::ostringstream text;
  text << (config.type == ScheduleType::kNone ? "constant lr " : "lr ") << lr0;
  visit(config.type, [&](auto member) { decltype(member)::describe(config, text); });
  if (config.warmup_epochs > 0) text << ", after " << config.warmup_epochs << " warmup epochs";
  return text.str();
}

}  // namespace mlpx
