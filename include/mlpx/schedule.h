// Learning-rate schedules, evaluated on the host once per epoch.
#pragma once

#include <cstdint>
#include <optional>
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
  double min_lr = 0.0;          // cosine: eta_min; plateau: the least rate it reduces to
  int warmup_epochs = 0;        // linear warmup before any schedule
  // onecycle (torch.optim.lr_scheduler.OneCycleLR, two phases), stepped per optimizer step
  // over train.epochs x (optimizer steps per epoch):
  std::optional<double> max_lr;   // the peak rate (unset: optimizer.lr)
  double pct_start = 0.3;         // the fraction of the steps spent rising
  Anneal anneal = Anneal::kCos;   // anneal_strategy
  double div_factor = 25.0;       // the first rate is max_lr / div_factor
  double final_div_factor = 1e4;  // the last is that / final_div_factor
  bool cycle_momentum = true;     // sgd's momentum or adam's beta1 cycles inversely to the rate
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  // plateau (ReduceLROnPlateau, threshold_mode "rel"), stepped after each epoch's validation:
  Metric metric = Metric::kValLoss;  // val_loss falls (mode min), the others rise (max)
  double factor = 0.1;               // the rate's factor at each reduction
  int patience = 10;                 // epochs without improvement before a reduction
  double threshold = 1e-4;           // an improvement beats the best by this fraction
  int cooldown = 0;                  // epochs after a reduction before counting again

  // Throws ValueError naming the first field out of its domain.
  void validate() const;
};

// The learning rate of 0-based `epoch`. Without warmup:
//   none lr0; step lr0 * gamma^floor(epoch / step_size); multistep lr0 * gamma^(milestones
//   passed); exponential lr0 * gamma^epoch; cosine min + (lr0 - min)(1 + cos(pi e / T))/2.
// With W warmup epochs, epoch e < W runs at lr0 * (e + 1) / (W + 1) and the schedule then
// starts at epoch W as its own epoch 0.
double scheduled_lr(const ScheduleConfig& config, double lr0, int epoch);

// onecycle's plan for a run of `total_steps` optimizer steps at peak rate `max_lr`: everything
// the per-step formula (src/math/onecycle.h) reads, plain data that a kernel takes by value.
// total_steps 0: no one-cycle (the rate is the epoch's).
struct OneCyclePlan {
  int64_t total_steps = 0;
  double initial_lr = 0, max_lr = 0, min_lr = 0;
  double rise_end = 0;  // the last step of the rising phase: pct_start * total_steps - 1
  bool cosine = true;
  bool cycle_momentum = false;
  double base_momentum = 0.85, max_momentum = 0.95;
};
// The plan of `config` (type onecycle) with optimizer rate lr0, for `total_steps` steps.
OneCyclePlan one_cycle_plan(const ScheduleConfig& config, double lr0, int64_t total_steps);
// The rate and the cycled momentum of 0-based optimizer step `step` (OneCycleLR's get_lr).
struct OneCycleRates {
  double lr, momentum;
};
OneCycleRates one_cycle_rates(const OneCyclePlan& plan, int64_t step);

// plateau: ReduceLROnPlateau's state, a function of the validation figures seen so far.
struct PlateauState {
  double lr = 0;    // the current rate
  double best = 0;  // the best figure so far (NaN: none yet)
  int bad_epochs = 0;
  int cooldown_left = 0;

  // The state before any epoch, at rate lr0.
  static PlateauState start(double lr0);
  // Takes one epoch's figure of config.metric (mode min for val_loss, else max); returns true
  // when the rate was reduced.
  bool step(const ScheduleConfig& config, double value);
};

// The schedule in words, for a run's header: "constant lr 0.001", "lr 0.001, x0.1 every 10
// epochs", "lr 0.01, x0.1 at epochs 5, 8", "lr 0.1, cosine to 0 over 20 epochs", each
// followed by ", after 2 warmup epochs" where there is a warmup.
std::string describe_schedule(const ScheduleConfig& config, double lr0);

}  // namespace mlpx
