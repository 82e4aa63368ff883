// The tool's OpenMP threads sleep when idle unless the user says otherwise.
//
// oneDNN (precision "bf16"; Debian's build) runs its matmuls on libgomp's threads, which by
// default spin for about 3 ms after each parallel region (GOMP_SPINCOUNT 300000), waiting for
// the next. Between two matmuls the step runs mlpx's own loops, and OpenBLAS keeps a pool of
// its own threads: where every core is in use, the spinning threads take the cores those need.
// OMP_WAIT_POLICY=passive makes them sleep at once (GOMP_SPINCOUNT 0). libgomp reads its
// environment once, in its own constructor, before main() and before any constructor of this
// program; even an executable's .preinit_array runs before the C library has set up the
// environment that getenv() later reads (tried: the setenv was lost). So the tool re-executes
// itself once with the variable set, at the top of main(), before anything else has run.
#pragma once

namespace mlpx::cli {

// When OMP_WAIT_POLICY is unset: sets it to "passive" and replaces the process with a fresh
// run of the same binary and arguments (execv of /proc/self/exe); returns only when the
// variable was already set (any value: the user's choice stands) or the exec failed.
void restart_with_passive_openmp_threads(char** argv);

}  // namespace mlpx::cli
