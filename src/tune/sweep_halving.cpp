#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "mlpx/error.h"
#include "mlpx/sweep.h"

// Successive halving's schedule: how many trials each rung keeps and how far they train.
namespace mlpx {

std::vector<Rung> halving_rungs(int64_t trials, int max_epochs, int eta) {
  MLPX_CHECK(eta >= 2, ValueError, "halving: expected eta >= 2, found ", eta);
  MLPX_CHECK(trials >= 1 && max_epochs >= 1, ValueError,
             "halving: expected at least 1 trial and 1 epoch, found ", trials, " and ", max_epochs);
  int s = 0;
  for (int64_t power = eta; power <= trials && power <= max_epochs; power *= eta) ++s;
  std::vector<Rung> rungs;
  int64_t divisor = 1;
  for (int i = 0; i <= s; ++i) {
    int64_t shrink = 1;
    for (int k = i; k < s; ++k) shrink *= eta;
    const int epochs = std::max(1, static_cast<int>(std::lround(static_cast<double>(max_epochs) /
                                                                static_cast<double>(shrink))));
    rungs.push_back({std::max<int64_t>(1, trials / divisor), i == s ? max_epochs : epochs});
    divisor *= eta;
  }
  return rungs;
}

}  // namespace mlpx
