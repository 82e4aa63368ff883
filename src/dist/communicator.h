// The ranks of one data-parallel job and the collectives training needs. A plain `mlpx train`
// is one rank (SingleRank: every collective is the identity); under mpirun, srun or any MPI
// launcher, with MLPX_MPI built in, the ranks talk through MPI on CPU buffers. Every
// collective is called by every rank in the same order, and gives every rank the same bits
// (the reduction order depends only on the number of ranks and the sizes, never on timing).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mlpx/error.h"
#include "mlpx/tensor.h"

namespace mlpx::dist {

// dist.timeout_s's default: the collective watchdog's limit until set_timeout.
inline constexpr double kDefaultTimeoutSeconds = 600.0;

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;  // 0 .. size() - 1
  virtual int size() const = 0;
  // The rank's index among the ranks of its machine (picks its GPU), and how many share it.
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;
  // "mpi", "single".
  virtual std::string backend() const = 0;

  // buffer (float32 or float64, CPU, contiguous) <- the elementwise sum of every rank's buffer.
  virtual void all_reduce_sum(Tensor& buffer) = 0;
  // Every rank's `value`, indexed by rank (config hashes, counters).
  virtual std::vector<uint64_t> all_gather(uint64_t value) = 0;
  // The sum of every rank's `value` (metrics), the same on every rank.
  virtual double all_reduce_sum(double value) = 0;
  // Optimizer-state sharding (ZeRO stage 1). A flat buffer of M elements is cut into one
  // contiguous shard per rank, rank r's being shard_of(M, r, N). reduce_scatter_sum: `shard`
  // (float32/float64, CPU, rank r's shard's size) <- rank r's shard of the sum over the ranks
  // of `full` (same dtype, M elements on every rank). all_gather_shards: `full` <- every rank's
  // shard of its own `full`, in place (float32/float64, CPU, M elements on every rank).
  virtual void reduce_scatter_sum(const Tensor& full, Tensor& shard) = 0;
  virtual void all_gather_shards(Tensor& full) = 0;
  // buffer (any dtype, CPU) <- rank `root`'s buffer.
  virtual void broadcast(Tensor& buffer, int root) = 0;
  virtual void barrier() = 0;
  // Every rank calls it once it has agreed with the others to end its process with exit
  // `status` (run_training stopped by a preemption signal: 128 + its number). Returns when
  // every rank has called it; the process's exit with that status then ends MPI as a success
  // does (finalised, so the launcher passes the status on) instead of aborting the job, which
  // could kill rank 0 while it still writes. Alone: nothing to do.
  virtual void agree_on_exit(int status) { (void)status; }

  // The collective watchdog (config dist.timeout_s; kDefaultTimeoutSeconds until set). A
  // collective that has not completed `seconds` after this rank entered it throws a
  // CollectiveTimeout naming the operation, the context (set_context) and which ranks did not
  // arrive; the communicator is then unusable (every later collective throws), and a process
  // that exits non-zero aborts the whole job (world()). 0: wait forever. Alone: nothing waits.
  virtual void set_timeout(double seconds) { (void)seconds; }
  // The limit in force (a DeviceCommunicator's NCCL watchdog takes it from here).
  virtual double timeout() const { return kDefaultTimeoutSeconds; }
  // What the job is doing, named by the watchdog's message: "step 12 (epoch 2, batch 3 of 8)".
  virtual void set_context(const std::string& context) { (void)context; }
};

// A collective that did not complete within the watchdog's timeout.
class CollectiveTimeout : public Error {
 public:
  using Error::Error;
};

// Rank `rank`'s shard of a flat buffer of `total` elements over `ranks` ranks: elements
// [first, first + count), first = floor(total rank / ranks). Shards differ by at most one.
struct Shard {
  int64_t first = 0, count = 0;
};
inline Shard shard_of(int64_t total, int rank, int ranks) {
  const int64_t first = total * rank / ranks, end = total * (rank + 1) / ranks;
  return {first, end - first};
}

// The job's communicator: MPI when this process was started by an MPI launcher with more than
// one rank, else a single rank (the launcher's environment decides: detect_launch in
// src/dist/backend.h). Under such a launcher, a build without MPI throws Error rather than let N
// copies train alone. The first call initialises MPI (MPI_Init_thread, MPI_THREAD_FUNNELED),
// later calls return the same object. Call the collectives from the thread that made that first
// call. MPI ends with the process (src/dist/mpi.cpp): finalised when it exits with status 0,
// the whole job aborted (MPI_Abort) when it exits with any other, so a failing rank never
// leaves the others waiting.
Communicator& world();

// A one-rank communicator of this process alone, whatever launched it (for work that is not
// shared with other ranks, such as a one-rank NCCL communicator).
Communicator& single_rank();

// Whether this build has the MPI backend (MLPX_MPI=ON, or AUTO with MPI found).
bool built_with_mpi();

}  // namespace mlpx::dist
