// What src/dist/communicator.cpp shares with the MPI backend: how this process was launched,
// the argument checks every communicator runs (so that a one-rank run rejects what an MPI run
// would), and the backend itself: src/dist/mpi.cpp with MLPX_MPI, else src/dist/mpi_stub.cpp
// (as kernels/stub.cpp stands in for CUDA), so no source tests a build macro. Internal.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "dist/communicator.h"
#include "mlpx/tensor.h"

namespace mlpx::dist::detail {

// This process's place in the job as its launcher announced it in the environment, read before
// MPI starts (MPI_Init would make a plain process a one-rank job of its own).
struct Launch {
  int size = 1;          // 1: not started by a known launcher, or started as the only rank
  int rank = 0;          // 0 .. size - 1
  std::string variable;  // the variable that gave the size ("OMPI_COMM_WORLD_SIZE"); empty: none
  std::string launcher;  // who sets it ("Open MPI's mpirun"), for messages
};

// The first of these pairs (size, rank) that is set wins; nothing set is one rank:
//   OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_RANK  Open MPI's mpirun/mpiexec (and prterun)
//   PMI_SIZE, PMI_RANK                          MPICH's and Intel MPI's Hydra mpiexec,
//                                               srun --mpi=pmi2
//   MV2_COMM_WORLD_SIZE, MV2_COMM_WORLD_RANK    MVAPICH's mpirun_rsh
//   SLURM_STEP_NUM_TASKS, SLURM_PROCID          srun (any --mpi)
// An MPI launcher's own variables come before Slurm's, so that mpirun inside an srun step
// counts mpirun's ranks. SLURM_NTASKS is not used: a batch script holds it too, and one plain
// `mlpx train` in a 4-task allocation is one rank, not 4. PMIx exports PMIX_RANK but no size;
// every PMIx launcher also sets one of the above. A size that is not a positive integer, or a
// missing or out-of-range rank, is a ValueError naming the variable.
// `getenv` is std::getenv in world(); tests pass a map.
Launch detect_launch(const std::function<const char*(const char*)>& getenv);

// buffer: defined, on the CPU, float32 or float64 (every tensor is contiguous). ShapeError.
void check_reduce_buffer(std::string_view op, const Tensor& buffer);
// full and shard: float32/float64 CPU buffers of one dtype, shard holding `mine`'s count.
void check_shards(std::string_view op, const Tensor& full, const Tensor& shard, Shard mine);
// buffer: defined, on the CPU; root in [0, size). ShapeError, ValueError.
void check_broadcast(const Tensor& buffer, int root, int size);

// Whether mpi.cpp (not mpi_stub.cpp) is linked in.
bool mpi_built();
// The communicator over MPI_COMM_WORLD for a process that `launch` says is one of several
// ranks; starts MPI unless the application already did (src/dist/mpi.cpp says how it ends).
// Error when MPI's world does not match `launch`. The stub throws Error.
std::unique_ptr<Communicator> make_mpi_communicator(const Launch& launch);

}  // namespace mlpx::dist::detail
