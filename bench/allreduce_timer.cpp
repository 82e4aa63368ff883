// The time of one data-parallel step's collectives, alone: `mpirun -np N mlpx_allreduce_timer
// [ELEMENTS] [REPEATS]` all-reduces a float32 buffer of ELEMENTS (default 235,146: the default
// model's gradients, 0.94 MB) REPEATS times (default 50, after 5 untimed), then does the same
// with the sharded optimizer's pair, a reduce-scatter and an all-gather of the same buffer.
// Rank 0 prints one line: the mean time per step of each, over the ranks, in milliseconds
// (the sharded pair's -1 with fewer ELEMENTS than ranks: a rank's shard would be empty).
// bench/cluster_network.sh runs it over the namespace hosts of tests/cluster/.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>

#include "dist/communicator.h"
#include "mlpx/tensor.h"

namespace {

using Clock = std::chrono::steady_clock;

// The mean over the ranks of one rank's mean milliseconds per call of `step`.
double mean_ms(mlpx::dist::Communicator& ranks, int repeats, const std::function<void()>& step) {
  for (int i = 0; i < 5; ++i) step();
  ranks.barrier();
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < repeats; ++i) step();
  const double ms =
      std::chrono::duration<double, std::milli>(Clock::now() - start).count() / repeats;
  return ranks.all_reduce_sum(ms) / ranks.size();
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t elements = argc > 1 ? std::atoll(argv[1]) : 235146;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 50;
  if (elements < 1 || repeats < 1) {
    std::fprintf(stderr, "error: expected ELEMENTS >= 1 and REPEATS >= 1, found %s %s\n",
                 argc > 1 ? argv[1] : "", argc > 2 ? argv[2] : "");
    return 2;
  }
  try {
    mlpx::dist::Communicator& ranks = mlpx::dist::world();
    mlpx::Tensor gradients = mlpx::Tensor::zeros({elements}, mlpx::DType::kFloat32);
    const mlpx::dist::Shard shard = mlpx::dist::shard_of(elements, ranks.rank(), ranks.size());
    const double all_reduce = mean_ms(ranks, repeats, [&] { ranks.all_reduce_sum(gradients); });
    double sharded = -1.0;
    if (elements >= ranks.size()) {
      mlpx::Tensor own = mlpx::Tensor::zeros({shard.count}, mlpx::DType::kFloat32);
      sharded = mean_ms(ranks, repeats, [&] {
        ranks.reduce_scatter_sum(gradients, own);
        ranks.all_gather_shards(gradients);
      });
    }
    if (ranks.rank() == 0) {
      std::printf("ranks %d elements %lld repeats %d all_reduce_ms %.3f sharded_ms %.3f\n",
                  ranks.size(), static_cast<long long>(elements), repeats, all_reduce, sharded);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
