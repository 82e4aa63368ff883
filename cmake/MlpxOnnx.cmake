# Decides whether src/export/ gets its ONNX exporter (MLPX_WITH_ONNX): `mlpx export` and
# Model.export_onnx, built on the ONNX library (Debian: libonnx-dev, ONNX 1.12, opset 17) and
# protobuf (libprotobuf-dev).
#   MLPX_ONNX=AUTO  build it when both are found
#   MLPX_ONNX=ON    build it, fail when either is missing
#   MLPX_ONNX=OFF   never look; the export commands say how to build it in
# Without it src/export/onnx_stub.cpp stands in for src/export/onnx.cpp. When ON, sets
# MLPX_ONNX_LIBRARIES (the files of libonnx, libonnx_proto and libprotobuf, by path, so that an
# installed mlpx needs no find_dependency for them) and MLPX_ONNX_INCLUDE_DIRS.
set(MLPX_ONNX AUTO CACHE STRING "Build ONNX export (mlpx export): AUTO (when the ONNX library and protobuf are found), ON (required) or OFF")
set_property(CACHE MLPX_ONNX PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${MLPX_ONNX}" _mlpx_onnx)
if(NOT _mlpx_onnx MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "MLPX_ONNX must be AUTO, ON or OFF; found '${MLPX_ONNX}'")
endif()

set(MLPX_WITH_ONNX OFF)
if(NOT _mlpx_onnx STREQUAL "OFF")
  # ONNX's package config names protobuf::libprotobuf without finding it: protobuf first.
  find_package(Protobuf QUIET)
  if(Protobuf_FOUND)
    find_package(ONNX CONFIG QUIET)
  endif()
  if(Protobuf_FOUND AND ONNX_FOUND AND TARGET onnx AND TARGET onnx_proto)
    set(MLPX_WITH_ONNX ON)
    set(MLPX_ONNX_LIBRARIES)
    foreach(_mlpx_onnx_target onnx onnx_proto protobuf::libprotobuf)
      get_target_property(_mlpx_onnx_file ${_mlpx_onnx_target} LOCATION)
      list(APPEND MLPX_ONNX_LIBRARIES ${_mlpx_onnx_file})
    endforeach()
    set(MLPX_ONNX_INCLUDE_DIRS ${ONNX_INCLUDE_DIRS} ${Protobuf_INCLUDE_DIRS})
    message(STATUS "mlpx: ONNX export ON (ONNX ${ONNX_VERSION}, protobuf ${Protobuf_VERSION})")
  elseif(_mlpx_onnx STREQUAL "ON")
    message(FATAL_ERROR "MLPX_ONNX=ON but the ONNX library or protobuf was not found: install "
                        "them (Debian: apt-get install libonnx-dev libprotobuf-dev, or `make "
                        "deps`), or configure with -DMLPX_ONNX=OFF")
  else()
    message(STATUS "mlpx: no ONNX library found; mlpx export is off (Debian: libonnx-dev "
                   "libprotobuf-dev add it)")
  endif()
endif()
