// mlpx's own CPU loops on more than one core. Internal.
//
// The calling thread always works, and never waits for a helper thread that has not started:
// the range is cut into chunks that any thread claims, one at a time, and the caller waits only
// for chunks a helper has claimed and not yet finished. On a machine whose other cores are
// busy a helper may not be scheduled for a whole time slice (milliseconds); a fork-join loop
// (OpenMP's static schedule, or a barrier at the end) would wait for it, this one finishes the
// work alone. Idle helpers sleep (no spinning), so they take nothing from oneDNN's OpenMP
// threads or OpenBLAS's between two loops.
#pragma once

#include <cstdint>
#include <functional>

namespace mlpx::cpu {

// body(first, last) over [0, n) in chunks of `grain` (the last one shorter), on the calling
// thread and the helpers: parallel_threads() in all. Runs body(0, n) on the caller alone when
// n <= grain or there is one thread. Chunks run in any order, each once, concurrently: body
// must be safe for that (disjoint elements).
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

// The threads parallel_for uses, the caller included: OpenBLAS's thread count (its default is
// every core of the process's CPU set; OPENBLAS_NUM_THREADS and set_gemm_threads set it), so
// one setting sizes every pool of mlpx.
int parallel_threads();

}  // namespace mlpx::cpu
