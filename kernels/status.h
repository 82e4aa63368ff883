// The flag through which device code reports bad input to the host (device code never
// throws). Plain data, shared by kernels and host glue. Internal.
#pragma once

#include <cstdint>

namespace mlpx::cuda {

enum class DeviceStatusCode : int32_t { kOk = 0, kLabelOutOfRange = 1 };

struct DeviceStatus {
  int32_t code;   // DeviceStatusCode; the first fault wins
  int32_t row;    // where it happened
  int32_t value;  // the offending value
  int32_t limit;  // the bound it broke (number of classes, ...)
};

}  // namespace mlpx::cuda
