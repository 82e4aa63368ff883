// What the library has to say but cannot return: a warning (a CUDA graph capture that fell
// back to plain launches) or an error it cannot throw (a failure inside a destructor). Such
// messages go to one handler, which an application replaces; the default writes
// "mlpx: <level>: <message>" lines to stderr. The mlpx tool installs its own.
#pragma once

#include <functional>
#include <string>

namespace mlpx {

enum class LogLevel { kWarning, kError };

using LogHandler = std::function<void(LogLevel level, const std::string& message)>;

// Replaces the handler (thread-safe); nullptr restores the default. Returns the previous one.
LogHandler set_log_handler(LogHandler handler);

}  // namespace mlpx
