#include "progress.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>

namespace mlpx::cli {

std::string format_seconds(double s) {
  std::ostringstream out;
  if (s >= 3600) {
    out << static_cast<int>(s / 3600) << "h" << std::setw(2) << std::setfill('0')
        << static_cast<int>(std::fmod(s, 3600) / 60) << "m";
  } else if (s >= 60) {
    out << static_cast<int>(s / 60) << "m" << std::setw(2) << std::setfill('0')
        << static_cast<int>(std::fmod(s, 60)) << "s";
  } else {
    out << std::fixed << std::setprecision(1) << s << "s";
  }
  return out.str();
}

std::string epoch_line(const EpochMetrics& m, int64_t epochs) {
  std::ostringstream out;
  out << std::fixed << "epoch " << m.epoch << "/" << epochs << "  lr " << std::setprecision(6)
      << std::defaultfloat << m.lr << std::fixed << std::setprecision(4) << "  train loss "
      << m.train_loss << (m.regression ? " r2 " : " acc ")
      << (m.regression ? m.train_r2 : m.train_accuracy);
  if (std::isfinite(m.val_loss)) {
    out << "  val loss " << m.val_loss << (m.regression ? " r2 " : " acc ")
        << (m.regression ? m.val_r2 : m.val_accuracy);
  }
  out << std::setprecision(0) << "  " << m.samples_per_s << " samples/s  "
      << format_seconds(m.elapsed_s);
  if (m.skipped_steps > 0) out << "  skipped " << m.skipped_steps << " non-finite step(s)";
  return out.str();
}

std::string test_line(const Evaluation& test, double seconds) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(4) << "test loss " << test.loss;
  if (test.regression) {
    out << " r2 " << test.r2 << " mse " << std::defaultfloat << std::setprecision(6) << test.mse;
  } else {
    out << " accuracy " << test.accuracy;
  }
  out << " (" << test.samples << " rows) in " << format_seconds(seconds);
  return out.str();
}

void ProgressBar::update(const BatchProgress& p) {
  const auto now = std::chrono::steady_clock::now();
  if (p.batch != p.batches && now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * p.batch / std::max<int64_t>(1, p.batches));
  const double rate = p.samples / std::max(p.seconds, 1e-9);
  const double eta = p.seconds / std::max<int64_t>(1, p.batch) * (p.batches - p.batch);
  std::ostringstream line;
  line << "\repoch " << p.epoch << "/" << p.epochs << " [" << std::string(filled, '=')
       << std::string(kWidth - filled, ' ') << "] " << p.batch << "/" << p.batches << " loss "
       << std::fixed << std::setprecision(4) << p.last_loss() << " " << std::setprecision(0) << rate
       << " samples/s ETA " << format_seconds(eta) << "\x1b[K";
  out_ << line.str() << std::flush;
}

void ProgressBar::finish() { out_ << "\r\x1b[K" << std::flush; }

}  // namespace mlpx::cli
