// The runtime's and the racecheck hooks' side of the counters (mlpx_sim/counters.h). Internal.
#pragma once

#include <cstdint>
#include <string>

#include "cuda_runtime_api.h"

namespace mlpx_sim::counters_detail {

// Set while a kernel of this OS thread runs and counting is on: the instrumentation's access
// hooks then call count_access.
extern __attribute__((tls_model("initial-exec"))) thread_local bool t_counting_accesses;

// Called by the drain around each piece of work (under the runtime's lock): begin_work returns
// whether a record was opened (counting on, and work of a kind a graph holds as a kernel, copy or
// memset node); end_work closes it.
bool begin_work(const std::string& label, cudaGraphNodeType node_type);
void end_work();

// A kernel's access of `size` bytes at `address`: counted when it lies in device memory.
void count_access(const void* address, unsigned size, bool write);

}  // namespace mlpx_sim::counters_detail
