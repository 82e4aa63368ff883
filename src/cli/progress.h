// What `mlpx train` shows while it runs: a live progress bar on a terminal, one line per
// epoch, the closing test line. The library reports through callbacks (mlpx/training.h);
// drawing is the tool's job.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

#include "mlpx/training.h"

namespace mlpx::cli {

// "12.3s", "4m05s", "1h02m".
std::string format_seconds(double seconds);

// "epoch 3/15  lr 0.001  train loss 0.4123 acc 0.8512  val loss ... acc ...  61234 samples/s
// 14.2s" (+ the skipped steps, when any); regression shows "r2" in place of "acc".
std::string epoch_line(const EpochMetrics& m, int64_t epochs);

// "test loss 0.3050 accuracy 0.8959 (10000 rows) in 15.4s"; regression: "test loss 1490.2
// r2 0.4912 mse 2980.4 (...)".
std::string test_line(const Evaluation& test, double seconds);

// A bar redrawn in place at most every 0.2 s: each redraw reads one float back from the device.
class ProgressBar {
 public:
  explicit ProgressBar(std::ostream& out) : out_(out) {}
  void update(const BatchProgress& p);
  void finish();  // clears the bar's line

 private:
  std::ostream& out_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace mlpx::cli
