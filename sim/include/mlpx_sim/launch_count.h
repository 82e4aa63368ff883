// How much device work has run so far in this process: kernel launches the executor ran (a
// graph replay's kernels included) and cuBLAS GEMMs the runtime ran. A test or a measurement
// takes the difference over a training step: kernels per step = both together (a GEMM is one
// or more kernels on a GPU; here one). Implemented by sim/src/device_extensions.cpp.
#pragma once

#include <cstdint>

namespace mlpx_sim {

uint64_t kernels_run();
uint64_t gemms_run();

namespace detail {
void count_gemm();  // [runtime] a GEMM ran
}  // namespace detail

}  // namespace mlpx_sim
