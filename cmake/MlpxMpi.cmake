# Decides whether src/dist/ gets its MPI backend (MLPX_WITH_MPI): data-parallel training over
# ranks started by mpirun, srun or any MPI launcher (issue 14).
#   MLPX_MPI=AUTO  build it when find_package(MPI) finds an MPI (Debian: libopenmpi-dev)
#   MLPX_MPI=ON    build it, fail when MPI is missing
#   MLPX_MPI=OFF   one rank only; MPI is never looked for
# Without it src/dist/mpi_stub.cpp stands in for src/dist/mpi.cpp (as kernels/stub.cpp does for
# CUDA), so no source tests a macro. Sets MLPX_WITH_MPI and, when ON, the target MPI::MPI_CXX and
# FindMPI's MPIEXEC_* variables (tests/CMakeLists.txt runs the dist tests under mpirun).
string(TOUPPER "${MLPX_MPI}" _mlpx_mpi)
if(NOT _mlpx_mpi MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "MLPX_MPI must be AUTO, ON or OFF; found '${MLPX_MPI}'")
endif()

set(MLPX_WITH_MPI OFF)
if(NOT _mlpx_mpi STREQUAL "OFF")
  # The C API, called from C++: the MPI-2 C++ bindings were removed in MPI-3. The CXX component
  # (not C) because the project enables only CXX; MPI_CXX_SKIP_MPICXX gives MPI::MPI_CXX the
  # definitions (OMPI_SKIP_MPICXX, MPICH_SKIP_MPICXX) that keep the bindings out of <mpi.h>.
  set(MPI_CXX_SKIP_MPICXX ON)
  find_package(MPI COMPONENTS CXX QUIET)
  if(MPI_CXX_FOUND)
    set(MLPX_WITH_MPI ON)
    message(STATUS "mlpx: MPI backend ON (MPI-${MPI_CXX_VERSION}, launcher ${MPIEXEC_EXECUTABLE})")
  elseif(_mlpx_mpi STREQUAL "ON")
    message(FATAL_ERROR "MLPX_MPI=ON but no MPI was found: install an MPI (Debian: apt-get "
                        "install libopenmpi-dev openmpi-bin, or `make deps`), or configure with "
                        "-DMLPX_MPI=OFF")
  else()
    message(STATUS "mlpx: no MPI found; one rank only (Debian: libopenmpi-dev adds the MPI backend)")
  endif()
endif()
