#include "mlpx/device.h"

#include <cstdlib>
#include <string>

#include "core/backend.h"
#include "mlpx/error.h"

namespace mlpx {

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "auto") return cuda_available() ? cuda(0) : cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5) {
    char* end = nullptr;
    const long index = std::strtol(text.c_str() + 5, &end, 10);
    if (*end == '\0' && index >= 0 && index < 1024) return cuda(static_cast<int>(index));
  }
  throw ValueError("device: expected auto, cpu, cuda or cuda:N, found '" + text + "'");
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

bool built_with_cuda() { return cuda::built(); }

int cuda_device_count() { return cuda::device_count(); }

bool cuda_available() { return cuda_device_count() > 0; }

void synchronize(Device device) {
  if (device.is_cpu()) return;
  cuda::synchronize_and_check(device.index);
}

}  // namespace mlpx
