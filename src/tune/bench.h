// Batch-size sweeps: full-batch GD vs mini-batch vs SGD on one model, data set and device.
// For each batch size: training-step throughput after a warm-up, the time of one epoch, and
// the training time to reach a test accuracy. `mlpx bench` (src/cli/bench.cpp) prints them;
// compare_torch.py sets them beside PyTorch's. Internal: the library side of `mlpx bench`.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/device_work.h"
#include "mlpx/config.h"

namespace mlpx {

struct BenchOptions {
  // Batch sizes in the order measured; 0 is the whole training set (full-batch GD).
  std::vector<int64_t> batch_sizes = {1, 8, 32, 128, 512, 2048, 8192, 0};
  // Test accuracy (regression data: test R^2) to reach; 0 skips the time-to-target run.
  double target_accuracy = 0.85;
  // Cap on each batch size's time-to-target run (training time) and on its one-epoch run.
  double max_seconds = 60.0;
  // Wall time the throughput measurement of each batch size aims at (after the warm-up).
  double throughput_seconds = 1.0;
  int64_t warmup_steps = 3;  // untimed steps before the throughput measurement
  int64_t min_steps = 5;     // timed steps at least, however slow a step is
  // On a CUDA device: the steps of the counting pass (count_training_steps, at least 2; 0: no
  // counting pass), and whether only it runs (no throughput, target or epoch timing: for the
  // simulator, whose steps at large shapes take minutes).
  int64_t count_steps = 3;
  bool count_only = false;
  // Called with each row as soon as it is measured (for live output); may be empty.
  std::function<void(const struct BenchRow&)> on_row;
};

struct BenchRow {
  std::string device;     // "cpu", "cuda:0"
  std::string precision;  // the GEMMs' precision: "fp32", "tf32", "bf16"
  // What runs the GEMMs: "OpenBLAS", "cuBLAS", or for bf16 on the CPU cpu_bf16_engine()'s
  // words (oneDNN and its instruction set, or the emulated engine).
  std::string gemm_engine;
  int64_t batch_size = 0;      // the effective batch: the training-set size for full batch
  double samples_per_s = 0.0;  // training steps only (forward, loss, backward, update)
  double updates_per_s = 0.0;  // optimizer steps per second = samples_per_s / batch_size
  double epoch_s = 0.0;        // one whole epoch (shuffle, gathers, steps, its one sync)
  // Whether epoch_s was timed (an epoch of the target run, or one timed epoch); else it is the
  // throughput's extrapolation (target 0, or an epoch longer than max_seconds).
  bool epoch_measured = false;
  double time_to_target_s = 0.0;  // training time until the target was met; NaN if not
  double target_accuracy = 0.0;   // the target asked for (0: not measured)
  bool reached = false;           // whether the test accuracy reached the target in time
  double final_accuracy = 0.0;    // the last test accuracy measured (NaN: none)
  bool regression = false;        // the data are regression targets: the accuracies are R^2
  int64_t epochs = 0;             // epochs (or fractions, rounded up) the target run took
  // The counting pass's figures (CUDA devices; docs/benchmarks.md): counted says it ran.
  bool counted = false;
  int64_t kernels_per_step = 0;  // kernel nodes of the captured step graph
  int64_t host_syncs_per_step = 0;
  int64_t host_syncs_per_epoch = 0;  // an epoch of count_steps steps, its steps included
  // On the simulator only (device_work_counted): one step's global-memory bytes (kernels at
  // each access, cuBLAS operands once), its GEMM FLOPs, and the H200 model's time for it
  // (tune/h200_model.h: a model, not a measurement).
  bool device_work_counted = false;
  double device_bytes_per_step = 0.0;
  double gemm_flops_per_step = 0.0;
  double projected_h200_us = 0.0;
  std::vector<DeviceWork> step_work;  // the counted step's pieces, in order (the simulator)
};

// Parses "1,8,32,full" (full or 0: the whole training set); ValueError on anything else.
std::vector<int64_t> parse_batch_sizes(const std::string& text);

// Runs the sweep of `options` on the model, data, optimizer, schedule, loss, seed and
// device of `config`. With target_accuracy 0 it measures throughput only (warm-up plus about
// throughput_seconds of steps per batch size) and extrapolates epoch_s from it. Every batch size
// starts from the same initial weights. The test set (or, without one, the validation set) decides
// the target. Evaluation is not counted in time_to_target_s: the test set is evaluated every
// ceil(N/4) training samples (four times an epoch for mini-batches, after every step once a batch
// is N/4 rows or more).
std::vector<BenchRow> run_batch_sweep(const Config& config, const BenchOptions& options);

// One JSON object (no newline) with the keys device, batch_size, samples_per_s,
// updates_per_s, epoch_s, epoch_measured, time_to_target_s (null when not reached),
// target_accuracy, reached; with the counting pass kernels_per_step, host_syncs_per_step,
// host_syncs_per_epoch, and on the simulator device_bytes_per_step, gemm_flops_per_step,
// projected_h200_us (with "projection": "model"): what `mlpx bench --json` prints, a line per
// row.
std::string bench_row_json(const BenchRow& row);

}  // namespace mlpx
