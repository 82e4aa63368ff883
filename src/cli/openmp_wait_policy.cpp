#include "openmp_wait_policy.h"

#include <limits.h>
#include <unistd.h>

#include <cstdlib>

namespace mlpx::cli {

void restart_with_passive_openmp_threads(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;  // the user's choice, or done
  // The executable's own path, not /proc/self/exe: the process keeps its name ("mlpx" in ps,
  // pkill, /proc/PID/comm), which exec takes from the path it is given.
  char path[PATH_MAX];
  const ssize_t length = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (length <= 0) return;  // no /proc: run on with libgomp's default
  path[length] = '\0';
  if (setenv("OMP_WAIT_POLICY", "passive", /*overwrite=*/0) != 0) return;
  execv(path, argv);
  // Only on failure: run on with libgomp's default; children get passive.
}

}  // namespace mlpx::cli
