// onecycle's per-step formula (torch.optim.lr_scheduler.OneCycleLR with two phases), host and
// device code: the optimizer's kernel evaluates it from the step counter it reads on the device,
// so a per-step rate needs no host write and no new CUDA graph.
#pragma once

#include <cmath>
#include <cstdint>

#include "math/hd.h"
#include "mlpx/schedule.h"

namespace mlpx::math {

// From `start` to `end` at fraction pct in [0, 1]: OneCycleLR's _annealing_cos / _linear.
MLPX_HD double one_cycle_anneal(double start, double end, double pct, bool cosine) {
  using std::cos;
  if (!cosine) return (end - start) * pct + start;
  const double cos_out = cos(3.14159265358979323846 * pct) + 1.0;
  return end + (start - end) / 2.0 * cos_out;
}

// The rate and momentum of 0-based step `step`: rising from initial_lr to max_lr until
// rise_end, then falling to min_lr at total_steps - 1 (the momentum moves the other way).
MLPX_HD OneCycleRates one_cycle_at(const OneCyclePlan& plan, int64_t step) {
  const double s = static_cast<double>(step);
  const double fall_end = static_cast<double>(plan.total_steps - 1);
  OneCycleRates out{};
  if (s <= plan.rise_end) {
    const double pct = s / plan.rise_end;
    out.lr = one_cycle_anneal(plan.initial_lr, plan.max_lr, pct, plan.cosine);
    out.momentum = one_cycle_anneal(plan.max_momentum, plan.base_momentum, pct, plan.cosine);
  } else {
    const double pct = (s - plan.rise_end) / (fall_end - plan.rise_end);
    out.lr = one_cycle_anneal(plan.max_lr, plan.min_lr, pct, plan.cosine);
    out.momentum = one_cycle_anneal(plan.base_momentum, plan.max_momentum, pct, plan.cosine);
  }
  return out;
}

}  // namespace mlpx::math
