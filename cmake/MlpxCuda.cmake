# Decides whether the CUDA backend is built (MLPX_WITH_CUDA) and for which architectures.
#   MLPX_CUDA=AUTO  build it when check_language(CUDA) finds nvcc
#   MLPX_CUDA=ON    build it, fail when nvcc is missing
#   MLPX_CUDA=OFF   CPU backend only; nvcc is never looked for
#   MLPX_CUDA=SIM   build it with the host compiler against the GPU simulator (sim/): the same
#                   kernels run on the CPU, with checks (MLPX_CUDA_SIM); nvcc is not used
# With the CUDA backend, MLPX_NCCL=AUTO|ON|OFF (default AUTO) decides whether the data-parallel
# collectives on device buffers (kernels/nccl.cpp) are built, with the NCCL that ships with the
# CUDA toolkit (nccl.h, libnccl): MLPX_WITH_NCCL, MLPX_NCCL_LIBRARY, MLPX_NCCL_INCLUDE_DIR. The
# simulator build always has them: sim/ answers NCCL's calls for a one-rank communicator.
set(MLPX_NCCL AUTO CACHE STRING "Build the NCCL collectives of data-parallel CUDA training: AUTO (when NCCL is found), ON (required) or OFF")
set_property(CACHE MLPX_NCCL PROPERTY STRINGS AUTO ON OFF)
include(CheckLanguage)

string(TOUPPER "${MLPX_CUDA}" _mlpx_cuda)
if(NOT _mlpx_cuda MATCHES "^(AUTO|ON|OFF|SIM)$")
  message(FATAL_ERROR "MLPX_CUDA must be AUTO, ON, OFF or SIM; found '${MLPX_CUDA}'")
endif()

set(MLPX_WITH_CUDA OFF)
set(MLPX_CUDA_SIM OFF)
if(_mlpx_cuda STREQUAL "SIM")
  set(MLPX_WITH_CUDA ON)
  set(MLPX_CUDA_SIM ON)
  message(STATUS "mlpx: CUDA backend ON, on the GPU simulator (sim/; no nvcc, no GPU)")
elseif(NOT _mlpx_cuda STREQUAL "OFF")
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc AND NOT DEFINED ENV{CUDACXX})
    # nvcc is often installed outside PATH; look where the toolkit installs it.
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc CACHE FILEPATH "CUDA compiler")
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(MLPX_WITH_CUDA ON)
  elseif(_mlpx_cuda STREQUAL "ON")
    message(FATAL_ERROR "MLPX_CUDA=ON but no CUDA compiler was found: install the CUDA toolkit "
                        "(nvcc), set CMAKE_CUDA_COMPILER, or configure with -DMLPX_CUDA=OFF")
  else()
    message(STATUS "mlpx: no CUDA compiler found; building the CPU backend only")
  endif()
endif()

if(MLPX_WITH_CUDA AND NOT MLPX_CUDA_SIM)
  # A user's value always wins; otherwise the visible GPU's own ('native'), else 80;90.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
    set(_mlpx_arch "80;90")
    set(_mlpx_why "no GPU visible at configure time")
    find_program(_mlpx_nvidia_smi nvidia-smi)
    if(_mlpx_nvidia_smi)
      execute_process(COMMAND ${_mlpx_nvidia_smi} -L OUTPUT_VARIABLE _mlpx_gpus
                      RESULT_VARIABLE _mlpx_smi_rc ERROR_QUIET)
      if(_mlpx_smi_rc EQUAL 0 AND _mlpx_gpus MATCHES "GPU [0-9]")
        set(_mlpx_arch native)
        set(_mlpx_why "a GPU is visible")
      endif()
    endif()
    set(CMAKE_CUDA_ARCHITECTURES ${_mlpx_arch} CACHE STRING "CUDA architectures")
    message(STATUS "mlpx: CUDA architectures ${CMAKE_CUDA_ARCHITECTURES} (${_mlpx_why})")
  else()
    message(STATUS "mlpx: CUDA architectures ${CMAKE_CUDA_ARCHITECTURES} (set by the user)")
  endif()
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  find_package(CUDAToolkit REQUIRED)
  message(STATUS "mlpx: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION})")
endif()

string(TOUPPER "${MLPX_NCCL}" _mlpx_nccl)
if(NOT _mlpx_nccl MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "MLPX_NCCL must be AUTO, ON or OFF; found '${MLPX_NCCL}'")
endif()
set(MLPX_WITH_NCCL OFF)
if(MLPX_CUDA_SIM)
  set(MLPX_WITH_NCCL ON)
elseif(MLPX_WITH_CUDA AND NOT _mlpx_nccl STREQUAL "OFF")
  find_path(MLPX_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  find_library(MLPX_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
  if(MLPX_NCCL_INCLUDE_DIR AND MLPX_NCCL_LIBRARY)
    set(MLPX_WITH_NCCL ON)
    message(STATUS "mlpx: NCCL collectives ON (${MLPX_NCCL_LIBRARY})")
  elseif(_mlpx_nccl STREQUAL "ON")
    message(FATAL_ERROR "MLPX_NCCL=ON but NCCL was not found (nccl.h, libnccl) beside the CUDA "
                        "toolkit: install NCCL, or configure with -DMLPX_NCCL=OFF")
  else()
    message(STATUS "mlpx: no NCCL found; data-parallel CUDA training reduces through the host")
  endif()
endif()
