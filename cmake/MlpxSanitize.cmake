# Sanitizer and fuzzing builds for mlpx's own host code.
#
#   -DMLPX_SANITIZE=address,undefined   compile and link every target defined after this point
#                                       (the library, the CLI, the tests, the benchmarks, the
#                                       fuzzers) with -fsanitize=address,undefined; a UBSan
#                                       finding aborts (no recovery), so ctest fails on it.
#   -DMLPX_FUZZ=ON                      libFuzzer targets under fuzz/ (needs clang++: the
#                                       fuzz preset sets it). The library is built with
#                                       -fsanitize=fuzzer-no-link plus MLPX_SANITIZE
#                                       (address,undefined when empty); the fuzz executables add
#                                       -fsanitize=fuzzer.
#
# Only the CXX language gets the flags: CUDA device code is checked with compute-sanitizer
# instead (scripts/gpu-check.sh), and system libraries (OpenBLAS, zlib) are used as installed.
set(MLPX_SANITIZE "" CACHE STRING
    "Comma-separated sanitizers for mlpx's host code, e.g. address,undefined (empty: none)")
option(MLPX_FUZZ "Build the libFuzzer targets under fuzz/ (clang only)" OFF)

if(MLPX_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR
            "MLPX_FUZZ=ON needs clang (libFuzzer), found ${CMAKE_CXX_COMPILER_ID} "
            "${CMAKE_CXX_COMPILER}. Configure a fresh build folder with the fuzz preset: "
            "cmake --preset fuzz [-B <folder>] "
            "(Debian: apt-get install clang libclang-rt-14-dev)")
  endif()
  if(MLPX_SANITIZE STREQUAL "")
    set(MLPX_SANITIZE "address,undefined")
  endif()
endif()

if(NOT MLPX_SANITIZE STREQUAL "")
  if(NOT MLPX_SANITIZE MATCHES "^[a-z,_-]+$")
    message(FATAL_ERROR "MLPX_SANITIZE: expected a comma-separated list such as "
                        "address,undefined, found '${MLPX_SANITIZE}'")
  endif()
  set(MLPX_SANITIZE_FLAGS -fsanitize=${MLPX_SANITIZE} -fno-omit-frame-pointer)
  if(MLPX_SANITIZE MATCHES "undefined")
    list(APPEND MLPX_SANITIZE_FLAGS -fno-sanitize-recover=undefined)
  endif()
  if(MLPX_FUZZ)
    list(APPEND MLPX_SANITIZE_FLAGS -fsanitize=fuzzer-no-link)
  endif()
  foreach(flag IN LISTS MLPX_SANITIZE_FLAGS)
    add_compile_options($<$<COMPILE_LANGUAGE:CXX>:${flag}>)
  endforeach()
  add_link_options(-fsanitize=${MLPX_SANITIZE})
  message(STATUS "mlpx: host code built with ${MLPX_SANITIZE_FLAGS}")
endif()
