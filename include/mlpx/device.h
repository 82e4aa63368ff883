// Devices: where a tensor's memory lives and where the ops on it run.
#pragma once

#include <string>

namespace mlpx {

enum class DeviceKind { kCpu, kCuda };

struct Device {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;  // CUDA device ordinal; 0 for the CPU

  static Device cpu() { return {DeviceKind::kCpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceKind::kCuda, index}; }
  // Parses "cpu", "cuda", "cuda:N" or "auto" (cuda:0 when cuda_available(), else cpu).
  static Device parse(const std::string& text);

  bool is_cpu() const { return kind == DeviceKind::kCpu; }
  bool is_cuda() const { return kind == DeviceKind::kCuda; }
  std::string str() const;  // "cpu" or "cuda:N"
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

// True when this build has the CUDA backend and at least one device can be used now.
bool cuda_available();
// Number of usable CUDA devices (0 without the CUDA backend or without a driver).
int cuda_device_count();
// True when mlpx was compiled with its CUDA backend (whether or not a GPU is present).
bool built_with_cuda();

// Waits for all work queued on the device's stream, then raises any error that device
// code flagged since the last check (a bad label, for example). No-op on the CPU.
void synchronize(Device device);

}  // namespace mlpx
