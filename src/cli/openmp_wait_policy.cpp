#include "openmp_wait_policy.h"

#include <unistd.h>

#include <cstdlib>

namespace mlpx::cli {

void restart_with_passive_openmp_threads(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;  // the user's choice, or done
  if (setenv("OMP_WAIT_POLICY", "passive", /*overwrite=*/0) != 0) return;
  execv("/proc/self/exe", argv);
  // Only on failure (no /proc): run on with libgomp's default; children get passive.
}

}  // namespace mlpx::cli
