#!/usr/bin/env bash
# Checks an installed libmlpx.so and a program linked against it (`make example`):
#   1. the library has a SONAME (libmlpx.so.MAJOR.MINOR);
#   2. it exports no symbol of the library's inner layers (mlpx::cpu, mlpx::cuda, mlpx::ops,
#      mlpx::math, mlpx::dist, mlpx::cli): only what include/mlpx declares is visible;
#   3. the program needs libmlpx and none of mlpx's own dependencies (CUDA, cuBLAS, NCCL, MPI,
#      oneDNN, OpenBLAS, ONNX, protobuf, zlib): a consumer links libmlpx alone.
# Usage: scripts/check-shared-library.sh LIBMLPX.so PROGRAM
set -euo pipefail
lib=$1
program=$2
fail=0

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [[ ! $soname =~ ^libmlpx\.so\.[0-9]+\.[0-9]+$ ]]; then
  echo "error: $lib: expected a SONAME libmlpx.so.MAJOR.MINOR, found '${soname}'" >&2
  fail=1
fi

exported=$(nm -D --defined-only -C "$lib" | grep -c ' mlpx::' || true)
# A symbol of an inner layer: its own name starts there (a public function that merely takes a
# pointer to such a type, e.g. evaluate(..., dist::Communicator*), is not one).
inner=$(nm -D --defined-only -C "$lib" |
  grep -E '^[0-9a-f]+ [A-Za-z] ((typeinfo|typeinfo name|vtable|VTT|guard variable) for )?mlpx::(cpu|cuda|ops|math|dist|cli)::' || true)
if [[ -n $inner ]]; then
  echo "error: $lib: expected only the public API exported, found $(wc -l <<<"$inner") symbols of the inner layers, e.g.:" >&2
  head -5 <<<"$inner" >&2
  fail=1
fi
if [[ $exported -eq 0 ]]; then
  echo "error: $lib: expected the public API (mlpx::...) exported, found no such symbol" >&2
  fail=1
fi

needed=$(readelf -d "$program" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
if [[ " $needed" != *" $soname "* ]]; then
  echo "error: $program: expected to need $soname, found: $needed" >&2
  fail=1
fi
deps=$(tr ' ' '\n' <<<"$needed" | grep -E 'cuda|cublas|nccl|mpi|dnnl|blas|onnx|protobuf|libz\.' || true)
if [[ -n $deps ]]; then
  echo "error: $program: expected to need libmlpx alone of mlpx's libraries, found also: $(echo $deps)" >&2
  fail=1
fi

[[ $fail -eq 0 ]] || exit 1
echo "check-shared-library: $soname exports $exported public symbols and none of the inner layers; $(basename "$program") needs: $needed"
