// Learning-rate schedules, evaluated on the host once per epoch.
#pragma once

#include <string>
#include <vector>

#include "mlpx/enums.h"

namespace mlpx {

// The members and their names: MLPX_SCHEDULES in mlpx/enums.h.
ScheduleType parse_schedule(const std::string& name);
std::string schedule_name(ScheduleType type);

struct ScheduleConfig {
  // A constant learning rate, as PyTorch's optimizers without a scheduler. (The shipped
  // Fashion-MNIST recipe, configs/fashion-mnist.json, decays x0.1 after epoch 10 of 15.)
  ScheduleType type = ScheduleType::kNone;
  int step_size = 10;           // step: decay every step_size epochs
  double gamma = 0.1;           // step, multistep, exponential: decay factor
  std::vector<int> milestones;  // multistep: epochs at which to decay (increasing)
  int total_epochs = 15;        // cosine: epochs of the whole run (T_max = total - warmup);
                                // a config file without it takes train.epochs
  double min_lr = 0.0;          // cosine: eta_min
  int warmup_epochs = 0;        // linear warmup before any schedule

  // Throws ValueError naming the first field out of its domain.
  void validate() const;
};

// The learning rate of 0-based `epoch`. Without warmup:
//   none lr0; step lr0 * gamma^floor(epoch / step_size); multistep lr0 * gamma^(milestones
//   passed); exponential lr0 * gamma^epoch; cosine min + (lr0 - min)(1 + cos(pi e / T))/2.
// With W warmup epochs, epoch e < W runs at lr0 * (e + 1) / (W + 1) and the schedule then
// starts at epoch W as its own epoch 0.
double scheduled_lr(const ScheduleConfig& config, double lr0, int epoch);

// The schedule in words, for a run's header: "constant lr 0.001", "lr 0.001, x0.1 every 10
// epochs", "lr 0.01, x0.1 at epochs 5, 8", "lr 0.1, cosine to 0 over 20 epochs", each
// followed by ", after 2 warmup epochs" where there is a warmup.
std::string describe_schedule(const ScheduleConfig& config, double lr0);

}  // namespace mlpx
