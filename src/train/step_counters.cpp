#include "train/step_counters.h"

#include <algorithm>
#include <memory>

#include "kernels/device_counters.h"
#include "mlpx/error.h"
#include "mlpx/training.h"

namespace mlpx {

StepCounts count_training_steps(const TrainerOptions& options, Sequential& model,
                                const Dataset& train, int64_t steps) {
  steps = std::max<int64_t>(2, steps);
  const int64_t n = train.size();
  const int64_t b = options.train.batch_size;
  MLPX_CHECK(b > 0 && b * steps <= n, ValueError, "step counters: expected ", steps, " batches of ",
             b, " rows in the training set, found ", n, " rows");
  Dataset sub = train;
  sub.x = train.x.rows(0, b * steps);
  if (train.labels.defined()) sub.labels = train.labels.rows(0, b * steps);
  if (train.targets.defined()) sub.targets = train.targets.rows(0, b * steps);

  const Device device = model.device();
  StepCounts counts;
  counts.steps = steps;
  counts.device_work_counted = device.is_cuda() && cuda::counts_device_work();
  Trainer trainer(options, model, sub);
  synchronize(device);
  if (counts.device_work_counted) cuda::set_device_work_counting(true);
  // Marks after each step's work (stream work: no host wait); host waits read on the host
  // between the steps, where the callback runs. The callback reads no loss, so it waits for
  // nothing itself.
  std::vector<std::shared_ptr<uint64_t>> marks;
  std::vector<uint64_t> waits_after_step;
  const uint64_t waits_before = cuda::host_waits();
  const auto on_step = [&](const BatchProgress&) {
    waits_after_step.push_back(cuda::host_waits());
    if (counts.device_work_counted) marks.push_back(cuda::mark_device_work(device));
    return true;
  };
  trainer.run_epoch(options.optimizer.lr, on_step);
  const uint64_t waits_after = cuda::host_waits();
  synchronize(device);  // runs the marks (run_epoch has synchronised already)
  if (counts.device_work_counted) cuda::set_device_work_counting(false);

  counts.kernels_per_step = trainer.step_kernel_nodes();
  const size_t last = waits_after_step.size() - 1;
  counts.host_waits_per_step =
      static_cast<int64_t>(waits_after_step[last] - waits_after_step[last - 1]);
  counts.host_waits_per_epoch = static_cast<int64_t>(waits_after - waits_before);
  if (counts.device_work_counted) {
    counts.step_work = cuda::device_work_between(*marks[last - 1], *marks[last]);
  }
  return counts;
}

}  // namespace mlpx
