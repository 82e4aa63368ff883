// Counts what one training step asks of the device: its captured graph's kernel nodes, the
// host's waits per step and per epoch, and on the GPU simulator each piece of device work of
// one step with the bytes it moved and the FLOPs it computed (docs/benchmarks.md). Internal: the
// counting pass of `mlpx bench`.
#pragma once

#include <cstdint>
#include <vector>

#include "core/device_work.h"
#include "mlpx/config.h"
#include "mlpx/dataset.h"
#include "mlpx/model.h"

namespace mlpx {

struct StepCounts {
  int64_t steps = 0;                  // steps the counting epoch ran
  int64_t kernels_per_step = 0;       // kernel nodes of the captured step (0: none was captured)
  int64_t host_waits_per_step = 0;    // during the epoch's last step
  int64_t host_waits_per_epoch = 0;   // during the whole epoch, its steps included
  bool device_work_counted = false;   // the simulator counted step_work
  std::vector<DeviceWork> step_work;  // the epoch's last step's device work, in order
};

// Runs one epoch of `steps` (at least 2) full batches of `options.train.batch_size` rows, from
// the first rows of `train`, on the model's device, and counts it. The last step is a replay of
// the captured step when train.cuda_graph is on (the first runs plainly, the second is
// captured). Trains the model: callers restore its parameters afterwards.
StepCounts count_training_steps(const TrainerOptions& options, Sequential& model,
                                const Dataset& train, int64_t steps);

}  // namespace mlpx
