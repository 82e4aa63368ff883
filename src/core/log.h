// The library's side of mlpx/log.h. Internal.
#pragma once

#include <string>

#include "mlpx/log.h"

namespace mlpx::detail {
// Passes `message` to the installed handler; never throws.
void log(LogLevel level, const std::string& message) noexcept;
}  // namespace mlpx::detail
