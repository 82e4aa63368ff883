# Host dependencies of the library. Each comes from the system (Debian packages named in
# the README); nothing is downloaded at configure time.
set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
find_path(MLPX_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas REQUIRED
          DOC "Directory holding OpenBLAS's cblas.h (Debian: libopenblas-dev)")
find_package(ZLIB REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)

# oneDNN, the engine of precision "bf16" on CPUs with bfloat16 instructions (src/cpu/onednn.cpp;
# without it src/cpu/onednn_stub.cpp, and bf16 runs emulated through OpenBLAS).
# MLPX_ONEDNN=AUTO|ON|OFF sets MLPX_WITH_ONEDNN, MLPX_ONEDNN_INCLUDE_DIR and MLPX_ONEDNN_LIBRARY.
# Found by path: Debian's dnnl-config.cmake requires OpenCL's headers (the package is built
# with oneDNN's OpenCL GPU runtime, which mlpx does not use).
set(MLPX_ONEDNN AUTO CACHE STRING "Build the oneDNN engine of CPU bf16 GEMMs: AUTO (when oneDNN is found), ON (required) or OFF")
set_property(CACHE MLPX_ONEDNN PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${MLPX_ONEDNN}" _mlpx_onednn)
if(NOT _mlpx_onednn MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "MLPX_ONEDNN must be AUTO, ON or OFF; found '${MLPX_ONEDNN}'")
endif()
set(MLPX_WITH_ONEDNN OFF)
if(NOT _mlpx_onednn STREQUAL "OFF")
  find_path(MLPX_ONEDNN_INCLUDE_DIR oneapi/dnnl/dnnl.hpp)
  find_library(MLPX_ONEDNN_LIBRARY dnnl)
  if(MLPX_ONEDNN_INCLUDE_DIR AND MLPX_ONEDNN_LIBRARY)
    set(MLPX_WITH_ONEDNN ON)
    message(STATUS "mlpx: oneDNN bf16 engine ON (${MLPX_ONEDNN_LIBRARY})")
  elseif(_mlpx_onednn STREQUAL "ON")
    message(FATAL_ERROR "MLPX_ONEDNN=ON but oneDNN was not found (oneapi/dnnl/dnnl.hpp, libdnnl): "
                        "install it (Debian: apt-get install libdnnl-dev), or configure with "
                        "-DMLPX_ONEDNN=OFF")
  else()
    message(STATUS "mlpx: no oneDNN found; precision bf16 on the CPU runs emulated (libdnnl-dev "
                   "adds its AMX and AVX-512 BF16 engine)")
  endif()
endif()
