#include "core/log.h"

#include <cstdio>
#include <mutex>
#include <utility>

namespace mlpx {

namespace {

void write_to_stderr(LogLevel level, const std::string& message) {
  std::fprintf(stderr, "mlpx: %s: %s\n", level == LogLevel::kWarning ? "warning" : "error",
               message.c_str());
}

struct HandlerSlot {
  std::mutex mutex;
  LogHandler handler = write_to_stderr;
};

HandlerSlot& slot() {
  static HandlerSlot* s = new HandlerSlot;  // never destroyed: destructors may log at exit
  return *s;
}

}  // namespace

LogHandler set_log_handler(LogHandler handler) {
  HandlerSlot& s = slot();
  std::lock_guard<std::mutex> lock(s.mutex);
  LogHandler previous = std::move(s.handler);
  s.handler = handler ? std::move(handler) : LogHandler(write_to_stderr);
  return previous;
}

namespace detail {
void log(LogLevel level, const std::string& message) noexcept {
  HandlerSlot& s = slot();
  try {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.handler(level, message);
  } catch (...) {
    // A handler that throws loses its message; logging must not turn into a failure.
  }
}
}  // namespace detail

}  // namespace mlpx
