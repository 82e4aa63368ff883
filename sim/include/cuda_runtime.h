// The simulator's stand-in for <cuda_runtime.h>, the header the kernels include: the runtime
// API (memory, streams, events, graphs: cuda_runtime_api.h) and the device built-ins
// (threadIdx, __syncthreads, shuffles, atomics: mlpx_sim/device.h). See sim/README.md.
#pragma once

#include "cuda_runtime_api.h"
#include "mlpx_sim/device.h"
