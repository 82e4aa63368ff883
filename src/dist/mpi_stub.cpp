// The MPI backend's stand-in in a build without MPI (MLPX_MPI=OFF, or AUTO without an MPI):
// every process is one rank. world() checks mpi_built() first and names the fix when a launcher
// started several ranks, so make_mpi_communicator is never reached from there.
#include "dist/backend.h"
#include "mlpx/error.h"

namespace mlpx::dist::detail {

bool mpi_built() { return false; }

std::unique_ptr<Communicator> make_mpi_communicator(const Launch& launch) {
  throw Error(mlpx::detail::concat("rank ", launch.rank, " of ", launch.size,
                                   ": this mlpx was built without MPI (MLPX_MPI)"));
}

}  // namespace mlpx::dist::detail
