// Counters of a device's work for `mlpx bench` (docs/benchmarks.md): how often the host waited
// for the device, and, on the GPU simulator, what each piece of device work moved and computed.
// No CUDA type appears here. Internal.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/device_work.h"
#include "mlpx/device.h"

namespace mlpx::cuda {

// Host waits so far in this process. On the simulator: every call that made the host wait for
// device work (its own count: synchronisations, blocking copies, cudaFree, Thrust's sort). On a
// GPU: mlpx's own waits (stream synchronisations, blocking copies, a Thrust sort as one).
uint64_t host_waits();
// Counts one of mlpx's own waits (the GPU build's count; the simulator counts its own).
void note_host_wait();

// Whether device work can be counted: on the simulator only.
bool counts_device_work();
// Turns the simulator's counting on or off (nothing on a GPU).
void set_device_work_counting(bool on);
// Enqueues a mark on `device`'s stream, after the work queued so far: once that work has run
// (after the next synchronisation) *mark is where its records end. No host wait. On a GPU the
// mark stays 0.
std::shared_ptr<uint64_t> mark_device_work(Device device);
// The device work recorded between two marks, in the order it ran (empty on a GPU).
std::vector<DeviceWork> device_work_between(uint64_t from, uint64_t to);

}  // namespace mlpx::cuda
