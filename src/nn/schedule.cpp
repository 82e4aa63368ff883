#include "mlpx/schedule.h"

#include <algorithm>
#include <cmath>
#include <ostream>
#include <sstream>
#include <string>

#include "core/names.h"
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
  // Cosine anneals over T = total - warmup epochs: T must be at least one epoch.
  MLPX_CHECK(type != ScheduleType::kCosine || warmup_epochs < total_epochs, ValueError,
             "schedule.warmup_epochs: expected fewer than total_epochs (", total_epochs,
             ") for cosine, found ", warmup_epochs);
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
