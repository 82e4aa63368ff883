#!/usr/bin/env bash
# The one script a session with a GPU runs. Three modes:
#
#   scripts/gpu-check.sh prepare          HERE (Debian 12, no GPU): put into .gpu-prep/ what the
#                                         GPU machine lacks, as payload.tar.gz: Debian's -dev
#                                         packages unpacked (prefix/), a Release build for sm_90
#                                         of the test, bench and CLI binaries (bin/) and the
#                                         shared libraries they need that the machine does not
#                                         have (lib/). Fails when .gpu-prep is over 60 MiB.
#   scripts/gpu-check.sh run OUTDIR       THERE, in the repository root, with .gpu-prep carried:
#                                         machine facts, the prebuilt binaries (or a build there
#                                         against .gpu-prep/prefix when they do not start), every
#                                         test binary, compute-sanitizer memcheck over the GPU
#                                         tests (racecheck, initcheck, synccheck over the parity
#                                         tests), a short benchmark pass, the default training
#                                         run and the speed table; a summary table last.
#   scripts/gpu-check.sh selftest [OUTDIR]  the run logic here, without a GPU (GPU tests skip).
#
# The device tool's call:  run(command="bash scripts/gpu-check.sh run $OUT/gpu",
#                              carry=[".gpu-prep"], timeout_s=540)
# OUTDIR ends up holding summary.txt and logs.tar.gz (every *.log, *.xml and *.json): the
# device tool returns at most 8 files. GPU_CHECK_PACK=0 leaves the files loose instead.
#
# Environment: GPU_CHECK_WORK (where run unpacks the payload, default /tmp/mlpx-gpu-prep),
# GPU_CHECK_BUDGET (seconds for the whole run, default 470), JOBS (prepare's
# build parallelism, default 2), GPU_CHECK_FORCE_BUILD=1 (run/selftest: skip the prebuilt
# binaries and build against .gpu-prep/prefix), GPU_CHECK_CUDA_LIB_DIRS (colon-separated
# folders searched first for libcublas/libcudart).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$(pwd -P)

PREP=$ROOT/.gpu-prep  # travels: payload.tar.gz (prefix/, bin/, lib/) and build.env
PREP_BUILD=$ROOT/build-gpu-prep  # prepare's build tree and staging folder (stays here)
PAYLOAD=$PREP/payload.tar.gz
# Where the payload is laid out: prepare stages it under its build tree; run and selftest
# unpack it outside the repository, so that nothing unpacked travels with the next call.
PP=$PREP_BUILD/_stage
DEVICE_BUILD=$ROOT/build-gpu-device  # the fallback build tree on the GPU machine
MAX_MIB=60
ARCH_TRIPLET=x86_64-linux-gnu

# What the GPU machine lacks (it has no Debian -dev packages), unpacked into .gpu-prep/prefix.
PREP_DEBS="libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian libopenblas-pthread-dev
libopenblas0-pthread libgfortran5 libquadmath0 nlohmann-json3-dev libcli11-dev zlib1g-dev zlib1g"

# Shared libraries never copied into .gpu-prep/lib: the C/C++ runtime and zlib (in every
# image), the driver, and the CUDA libraries that the machine's toolkit and PyTorch bring.
SYSTEM_LIBS='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libutil|libstdc\+\+|libgcc_s|libz|libcuda|libcudart|libcublas|libcublasLt|libnvidia-[a-z-]+)\.so'

log() { printf '%s\n' "gpu-check: $*"; }
die() {
  printf '%s\n' "gpu-check: error: $*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# prepare
# ---------------------------------------------------------------------------------------------

prepare_prefix() {
  local debs=$PREP_BUILD/_debs prefix=$PP/prefix
  mkdir -p "$debs"
  log "downloading: $(echo $PREP_DEBS)"
  (cd "$debs" && rm -f ./*.deb &&
    apt-get download -q -o APT::Sandbox::User=root $PREP_DEBS) || die "apt-get download failed"
  rm -rf "$prefix"
  mkdir -p "$prefix"
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$prefix" || die "dpkg-deb -x $deb failed"; done

  # Drop what neither a build nor a run needs: docs, sources, static OpenBLAS (58 MB), LAPACK.
  rm -rf "$prefix/usr/share/doc" "$prefix/usr/share/man" "$prefix/usr/share/lintian" \
    "$prefix/usr/src"
  find "$prefix" \( -name 'libopenblas*.a' -o -name 'libblas.a' -o -name 'liblapack*' \
    -o -name 'libz.a' \) -exec rm -f {} +

  # Debian points these through /etc/alternatives (not in any package): make them here, so
  # that CMake finds OpenBLAS under the prefix as it does under /usr.
  local lib=$prefix/usr/lib/$ARCH_TRIPLET inc=$prefix/usr/include/$ARCH_TRIPLET
  ln -sfn openblas-pthread/libopenblas.so "$lib/libopenblas.so"
  ln -sfn openblas-pthread/libopenblas.so.0 "$lib/libopenblas.so.0"
  ln -sfn openblas-pthread/cblas.h "$inc/cblas.h"
  ln -sfn openblas-pthread/openblas_config.h "$inc/openblas_config.h"

  # Absolute links (libz.so -> /lib/...) would point outside the prefix: make them relative.
  local link target
  while IFS= read -r link; do
    target=$(readlink "$link")
    case $target in
      /*) ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$prefix$target")" "$link" ;;
    esac
  done < <(find "$prefix" -type l)
  local dangling
  dangling=$(find "$prefix" -xtype l)
  [ -z "$dangling" ] || die "dangling links in the prefix: $dangling"
  log "prefix: $(du -sh "$prefix" | cut -f1) in $prefix"
}

prepare_build() {
  local nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
  [ -x "$nvcc" ] || nvcc=$(command -v nvcc) || die "prepare needs nvcc (CUDA toolkit)"
  log "building for sm_90 in $PREP_BUILD (this takes a few minutes on 2 cores)"
  cmake -S "$ROOT" -B "$PREP_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLPX_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES=90 >"$PREP_BUILD.configure.log" 2>&1 ||
    {
      tail -30 "$PREP_BUILD.configure.log"
      die "configure failed (log: $PREP_BUILD.configure.log)"
    }
  nice cmake --build "$PREP_BUILD" -j "${JOBS:-2}" || die "build failed"

  # The binaries, in the build tree's layout (tests/, bench/, the CLI at the top), so that
  # paths the tests compute from MLPX_BINARY_DIR hold there too.
  local bin=$PP/bin f
  rm -rf "$bin"
  mkdir -p "$bin/tests" "$bin/bench"
  for f in "$PREP_BUILD"/tests/mlpx_*_tests; do [ -x "$f" ] && cp "$f" "$bin/tests/"; done
  for f in "$PREP_BUILD"/bench/mlpx_bench_*; do [ -x "$f" ] && [ -f "$f" ] && cp "$f" "$bin/bench/"; done
  [ -x "$PREP_BUILD/mlpx" ] && cp "$PREP_BUILD/mlpx" "$bin/"
  strip --strip-debug "$bin"/tests/* "$bin"/bench/* "$bin"/mlpx 2>/dev/null
  ls "$bin"/tests/mlpx_*_tests >/dev/null 2>&1 || die "no test binaries were built"
  {
    echo "SOURCE_DIR=$ROOT"
    echo "BINARY_DIR=$PREP_BUILD"
    echo "NVCC_VERSION='$("$nvcc" --version | tail -1)'"
    echo "GLIBC='$(ldd --version | head -1)'"
    echo "BUILT='$(date -u +%Y-%m-%dT%H:%M:%SZ)'"
    echo "COMMIT='$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo +changes)'"
  } >"$PREP/build.env"
}

# The non-system shared libraries that the binaries load: a link into the prefix when the
# prefix has the file, else a copy.
prepare_libs() {
  local lib=$PP/lib soname path in_prefix
  rm -rf "$lib"
  mkdir -p "$lib"
  while read -r soname path; do
    [[ $soname =~ $SYSTEM_LIBS ]] && continue
    in_prefix=$(find "$PP/prefix" -name "$soname" \( -type f -o -type l \) | head -1)
    if [ -n "$in_prefix" ]; then
      ln -sfn "$(realpath --relative-to="$lib" "$in_prefix")" "$lib/$soname"
    else
      cp -L "$path" "$lib/$soname"
    fi
  done < <(for f in "$PP"/bin/tests/* "$PP"/bin/bench/* "$PP"/bin/mlpx; do
    [ -f "$f" ] && ldd "$f"
  done | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u)
  log "libraries in the payload's lib/: $(cd "$lib" && ls | tr '\n' ' ')"
}

# The four Fashion-MNIST .gz files (about 30 MB, already compressed: they travel beside the
# payload, not inside it) for the train stage, when this machine has Debian's package.
FASHION_SRC=/usr/share/datasets/fashion-mnist
prepare_fashion_mnist() {
  rm -rf "${PREP:?}/fashion-mnist"
  if ls "$FASHION_SRC"/*-ubyte.gz >/dev/null 2>&1; then
    mkdir -p "$PREP/fashion-mnist" && cp "$FASHION_SRC"/*-ubyte.gz "$PREP/fashion-mnist/"
    log "fashion-mnist: $(du -sh "$PREP/fashion-mnist" | cut -f1) copied for the train stage"
  else
    log "fashion-mnist: not in $FASHION_SRC; the train stage will skip"
  fi
}

do_prepare() {
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    die "prepare runs on the Debian machine (needs apt-get and dpkg-deb)"
  local start=$SECONDS
  mkdir -p "$PREP" "$PREP_BUILD"
  rm -rf "${PP:?}" "${PREP:?}"/prefix "${PREP:?}"/bin "${PREP:?}"/lib "$PAYLOAD"
  mkdir -p "$PP"
  prepare_prefix
  prepare_build
  prepare_libs
  cp "$PREP/build.env" "$PP/"
  prepare_fashion_mnist
  # OpenBLAS alone is 36 MB: the payload travels compressed (about a third of the size).
  tar -C "$PP" -czf "$PAYLOAD" prefix bin lib build.env || die "tar failed"
  local bytes mib
  bytes=$(du -sb "$PREP" | cut -f1)
  mib=$(((bytes + 1048575) / 1048576))
  echo
  du -sh "$PP"/prefix "$PP"/bin "$PP"/lib | sed 's/^/  /'
  du -sh "$PREP"/* | sed 's/^/  /'
  log "prepared in $((SECONDS - start)) s; .gpu-prep is $mib MiB (limit $MAX_MIB MiB)"
  [ "$mib" -le "$MAX_MIB" ] || die ".gpu-prep is over $MAX_MIB MiB: it would not travel"
  log "now: run(command=\"bash scripts/gpu-check.sh run \$OUT/gpu\", carry=[\".gpu-prep\"], timeout_s=540)"
}

# ---------------------------------------------------------------------------------------------
# run / selftest
# ---------------------------------------------------------------------------------------------

S_NAME=() S_RESULT=() S_SECS=() S_NOTE=() FAIL_LOGS=()
FAILED=0

# record NAME RESULT SECONDS NOTE REQUIRED(0|1)
record() {
  S_NAME+=("$1") S_RESULT+=("$2") S_SECS+=("$3") S_NOTE+=("$4")
  if [ "$5" = 1 ] && [ "$2" != PASS ] && [ "$2" != SKIP ]; then FAILED=1; fi
  printf '%s\n' "--- $1: $2 ($3 s) $4"
}

# Seconds a stage may use: its cap, or what is left of the budget less a reserve.
stage_limit() {
  local cap=$1 left=$((DEADLINE - SECONDS - 20))
  [ "$left" -lt "$cap" ] && cap=$left
  [ "$cap" -lt 0 ] && cap=0
  echo "$cap"
}

# Runs "$@" with our LD_LIBRARY_PATH, under timeout, output to a log; returns its status.
run_logged() {
  local limit=$1 logf=$2
  shift 2
  LD_LIBRARY_PATH="$RUN_LD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    timeout -k 10 "$limit" "$@" >"$logf" 2>&1
}

find_nvcc() {
  command -v nvcc 2>/dev/null && return
  ls -d /usr/local/cuda/bin/nvcc /usr/local/cuda*/bin/nvcc 2>/dev/null | head -1
}

python_site() {
  python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null
}

# Folders holding CUDA's shared libraries on this machine: the toolkit's, then PyTorch's wheels.
cuda_lib_dirs() {
  local site d nvcc
  nvcc=$(find_nvcc)
  {
    tr ':' '\n' <<<"${GPU_CHECK_CUDA_LIB_DIRS:-}"
    [ -n "$nvcc" ] && echo "$(dirname "$(dirname "$(realpath "$nvcc")")")/lib64" &&
      echo "$(dirname "$(dirname "$(realpath "$nvcc")")")/lib"
    ls -d /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda*/lib64 \
      /usr/local/cuda*/targets/*/lib 2>/dev/null
    site=$(python_site)
    [ -n "$site" ] && ls -d "$site"/nvidia/*/lib "$site"/nvidia/cu*/lib 2>/dev/null
  } | while read -r d; do
    [ -d "$d" ] || continue
    if [[ ":${GPU_CHECK_CUDA_LIB_DIRS:-}:" == *":$d:"* ]] || compgen -G "$d/libcublas.so*" >/dev/null ||
      compgen -G "$d/libcudart.so*" >/dev/null; then
      realpath "$d"
    fi
  done | awk '!seen[$0]++'
}

stage_facts() {
  local start=$SECONDS f=$OUTDIR/facts.log
  {
    echo "== os"; grep PRETTY_NAME /etc/os-release 2>/dev/null; uname -srm; ldd --version | head -1
    echo "== nproc $(nproc)"; free -g 2>/dev/null | head -2
    echo "== nvidia-smi"; timeout 30 nvidia-smi 2>&1 || echo "nvidia-smi: not available"
    echo "== nvcc"; local nvcc; nvcc=$(find_nvcc)
    if [ -n "$nvcc" ]; then echo "$nvcc"; "$nvcc" --version; else echo "nvcc: not found"; fi
    echo "== compilers and tools"
    for t in g++ c++ gcc clang++ cmake ninja make compute-sanitizer; do
      printf '%-18s %s\n' "$t" "$(command -v $t || echo -)"
    done
    echo "== python3 / torch"
    timeout 60 python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -1
    echo "== CUDA library folders"; cuda_lib_dirs
    echo "== .gpu-prep/build.env"; cat "$PREP/build.env" 2>/dev/null || echo "(no .gpu-prep: run prepare here first)"
  } >"$f" 2>&1
  sed 's/^/  /' "$f" | grep -vE '^\s*$' | head -60
  local gpus
  gpus=$(timeout 30 nvidia-smi -L 2>/dev/null | sed -nE 's/^GPU [0-9]+: (.*) \(UUID.*/\1/p' | paste -sd, -)
  record facts PASS $((SECONDS - start)) "GPU: ${gpus:-none visible}" 0
}

# LD_LIBRARY_PATH for our binaries: .gpu-prep/lib, then each folder that holds a library the
# binaries need and do not find there.
setup_libs() {
  local start=$SECONDS dirs missing soname d found note="" unresolved=""
  RUN_LD=$PP/lib
  dirs=$(cuda_lib_dirs)
  missing=$(for f in "$BIN"/tests/mlpx_*_tests; do
    LD_LIBRARY_PATH=$RUN_LD ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 == "not" {print $1}'
  done | sort -u)
  for soname in $missing; do
    found=""
    for d in $dirs; do
      if [ -e "$d/$soname" ]; then found=$d; break; fi
    done
    if [ -n "$found" ]; then
      case ":$RUN_LD:" in *":$found:"*) ;; *) RUN_LD=$RUN_LD:$found ;; esac
      note="$note $soname<-$found"
    else
      unresolved="$unresolved $soname"
    fi
  done
  echo "LD_LIBRARY_PATH for mlpx binaries: $RUN_LD" | tee "$OUTDIR/libs.log"
  echo "resolved:$note" >>"$OUTDIR/libs.log"
  if [ -n "$unresolved" ]; then
    echo "not found:$unresolved" >>"$OUTDIR/libs.log"
    record libraries FAIL $((SECONDS - start)) "not found:$unresolved" 0
  else
    record libraries PASS $((SECONDS - start)) "${note:- all found}" 0
  fi
}

# Do the prebuilt binaries start here? (--gtest_list_tests loads every library and the CUDA
# runtime's static initialisers without running a test.)
stage_prebuilt() {
  local start=$SECONDS f bad="" lim
  if [ "${GPU_CHECK_FORCE_BUILD:-0}" = 1 ]; then
    record prebuilt SKIP 0 "GPU_CHECK_FORCE_BUILD=1" 0
    return 1
  fi
  if ! ls "$PP"/bin/tests/mlpx_*_tests >/dev/null 2>&1; then
    record prebuilt FAIL 0 "no prebuilt tests: run 'scripts/gpu-check.sh prepare' here and carry .gpu-prep" 0
    return 1
  fi
  BIN=$PP/bin
  link_build_paths
  setup_libs
  lim=$(stage_limit 60)
  for f in "$BIN"/tests/mlpx_*_tests; do
    run_logged "$lim" "$OUTDIR/prebuilt-$(basename "$f").log" "$f" --gtest_list_tests || {
      bad="$bad $(basename "$f")"
      FAIL_LOGS+=("$OUTDIR/prebuilt-$(basename "$f").log")
    }
  done
  if [ -n "$bad" ]; then
    record prebuilt FAIL $((SECONDS - start)) "did not start:$bad (see prebuilt-*.log)" 0
    return 1
  fi
  record prebuilt PASS $((SECONDS - start)) "built $(. "$PREP/build.env" && echo "$BUILT, $COMMIT")" 0
}

# The prebuilt tests carry the paths of the tree they were built in (MLPX_SOURCE_DIR,
# MLPX_BINARY_DIR); point those paths at this copy when they do not exist here.
link_build_paths() {
  local SOURCE_DIR="" BINARY_DIR=""
  [ -f "$PREP/build.env" ] && . "$PREP/build.env"
  if [ -n "$SOURCE_DIR" ] && [ ! -e "$SOURCE_DIR" ]; then
    mkdir -p "$(dirname "$SOURCE_DIR")" && ln -s "$ROOT" "$SOURCE_DIR" &&
      log "linked $SOURCE_DIR -> $ROOT (the prebuilt tests' source dir)"
  fi
  if [ -n "$BINARY_DIR" ] && [ ! -e "$BINARY_DIR" ]; then
    ln -s "$PP/bin" "$BINARY_DIR" && log "linked $BINARY_DIR -> $PP/bin"
  fi
}

# Fallback: build here against .gpu-prep/prefix (needs a host C++ compiler, nvcc and cmake).
stage_build() {
  local start=$SECONDS cxx nvcc gen=() lim p=$PP/prefix/usr extra=() cudalib d
  cxx=$(command -v g++ || command -v c++ || command -v clang++)
  nvcc=$(find_nvcc)
  if [ -z "$cxx" ] || [ -z "$nvcc" ] || ! command -v cmake >/dev/null; then
    record build FAIL 0 "cannot build here: c++=${cxx:-none} nvcc=${nvcc:-none} cmake=$(command -v cmake || echo none)" 1
    return 1
  fi
  [ -d "$p" ] || {
    record build FAIL 0 "no prefix (payload): run 'scripts/gpu-check.sh prepare' and carry .gpu-prep" 1
    return 1
  }
  command -v ninja >/dev/null && gen=(-G Ninja)
  # cuBLAS from PyTorch's wheels has no unversioned libcublas.so: name the files.
  cudalib=$(dirname "$(dirname "$(realpath "$nvcc")")")
  if ! ls "$cudalib"/lib64/libcublas.so "$cudalib"/lib/libcublas.so \
    "$cudalib"/targets/*/lib/libcublas.so >/dev/null 2>&1; then
    for d in $(cuda_lib_dirs); do
      if ls "$d"/libcublas.so.* >/dev/null 2>&1; then
        extra+=(-DCUDA_cublas_LIBRARY="$(ls "$d"/libcublas.so.* | head -1)"
          -DCUDA_cublasLt_LIBRARY="$(ls "$d"/libcublasLt.so.* | head -1)")
        break
      fi
    done
  fi
  export CMAKE_PREFIX_PATH=$p${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  export CPLUS_INCLUDE_PATH=$p/include:$p/include/$ARCH_TRIPLET${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}
  export LIBRARY_PATH=$p/lib/$ARCH_TRIPLET:$PP/prefix/lib/$ARCH_TRIPLET${LIBRARY_PATH:+:$LIBRARY_PATH}
  lim=$(stage_limit 300)
  {
    echo "+ c++=$cxx nvcc=$nvcc"
    timeout -k 10 "$lim" cmake -S "$ROOT" -B "$DEVICE_BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DMLPX_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_HOST_COMPILER="$cxx" \
      -DMLPX_CBLAS_INCLUDE_DIR="$p/include/$ARCH_TRIPLET/openblas-pthread" \
      -DGTest_DIR="$p/lib/$ARCH_TRIPLET/cmake/GTest" \
      -Dbenchmark_DIR="$p/lib/$ARCH_TRIPLET/cmake/benchmark" \
      -Dnlohmann_json_DIR="$p/share/cmake/nlohmann_json" -DCLI11_DIR="$p/share/cmake/CLI11" \
      -DZLIB_INCLUDE_DIR="$p/include" -DZLIB_LIBRARY="$p/lib/$ARCH_TRIPLET/libz.so" \
      -DBLAS_openblas_LIBRARY="$p/lib/$ARCH_TRIPLET/libopenblas.so" "${extra[@]}" &&
      timeout -k 10 "$(stage_limit 300)" cmake --build "$DEVICE_BUILD" -j "$(nproc)"
  } >"$OUTDIR/build.log" 2>&1
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    FAIL_LOGS+=("$OUTDIR/build.log")
    record build "$([ "$rc" = 124 ] && echo TIMEOUT || echo FAIL)" $((SECONDS - start)) "see build.log" 1
    return 1
  fi
  BIN=$DEVICE_BUILD
  RUN_LD=$PP/lib
  setup_libs
  record build PASS $((SECONDS - start)) "built here with $(basename "$cxx") against the payload's prefix" 1
}

stage_tests() {
  local start=$SECONDS f name rc bad="" skipped_gpu="" lim counts total=0 nskip=0
  for f in "$BIN"/tests/mlpx_*_tests; do
    name=$(basename "$f")
    lim=$(stage_limit 180)
    if [ "$lim" -lt 10 ]; then bad="$bad $name(no-time)"; continue; fi
    run_logged "$lim" "$OUTDIR/$name.log" "$f" --gtest_output="xml:$OUTDIR/$name.xml" --gtest_color=no
    rc=$?
    [ "$rc" -eq 0 ] || { bad="$bad $name(exit $rc)" && FAIL_LOGS+=("$OUTDIR/$name.log"); }
    # gtest's closing lines: "[==========] N tests from M test suites ran." and
    # "[  SKIPPED ] K tests, listed below:"
    counts=$(sed -nE 's/^\[==========\] ([0-9]+) tests? from .* ran\..*/\1/p' "$OUTDIR/$name.log" | tail -1)
    total=$((total + ${counts:-0}))
    counts=$(sed -nE 's/^\[  SKIPPED \] ([0-9]+) tests?, listed below.*/\1/p' "$OUTDIR/$name.log" | tail -1)
    nskip=$((nskip + ${counts:-0}))
    if grep -qE 'no usable CUDA device|built without the CUDA backend' "$OUTDIR/$name.log"; then
      skipped_gpu="$skipped_gpu $name"
    fi
  done
  local note="$total tests, $nskip skipped"
  if [ -n "$bad" ]; then
    record tests FAIL $((SECONDS - start)) "$note; failed:$bad" 1
  elif [ -n "$skipped_gpu" ] && [ "$MODE" = run ]; then
    record tests FAIL $((SECONDS - start)) "$note; GPU tests SKIPPED on a GPU machine in:$skipped_gpu" 1
  else
    record tests PASS $((SECONDS - start)) "$note" 1
  fi
}

stage_sanitizer() {
  local start=$SECONDS cs f name rc lim bad="" ran=0 filter
  cs=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer \
    /usr/local/cuda*/compute-sanitizer/compute-sanitizer /opt/nvidia/*/compute-sanitizer 2>/dev/null | head -1)
  if [ -z "$cs" ]; then
    record sanitizer SKIP 0 "compute-sanitizer not found" 0
    return
  fi
  if [ "$MODE" = selftest ] && ! nvidia-smi -L >/dev/null 2>&1; then
    record sanitizer SKIP 0 "no GPU here" 0
    return
  fi
  # memcheck (with leak check) over the GPU tests of every binary; racecheck, initcheck and
  # synccheck over the parity binary, which drives every kernel.
  local tool args log
  for tool in memcheck racecheck initcheck synccheck; do
    for f in "$BIN"/tests/mlpx_*_tests; do
      name=$(basename "$f")
      case $tool:$name in
        memcheck:*parity*) filter='*' ;;
        memcheck:*) filter='*Cuda*:*Gpu*:*Parity*:*GPU*' ;;
        *:*parity*) filter='*' ;;
        *) continue ;;
      esac
      case $tool in
        memcheck) args=(--tool memcheck --leak-check full) ;;
        racecheck) args=(--tool racecheck --racecheck-report all) ;;
        initcheck) args=(--tool initcheck --track-unused-memory no) ;;
        synccheck) args=(--tool synccheck) ;;
      esac
      lim=$(stage_limit 120)
      if [ "$lim" -lt 15 ]; then bad="$bad $name:$tool(no-time)"; continue; fi
      log="$OUTDIR/sanitizer-$tool-$name.log"
      run_logged "$lim" "$log" "$cs" "${args[@]}" --error-exitcode 86 "$f" \
        --gtest_filter="$filter" --gtest_color=no
      rc=$?
      if grep -qE 'Device not supported|CUDA_ERROR_NOT_SUPPORTED' "$log"; then
        record sanitizer SKIP $((SECONDS - start)) "compute-sanitizer: Device not supported here" 0
        return
      fi
      ran=$((ran + 1))
      [ "$rc" -eq 0 ] || FAIL_LOGS+=("$log")
      case $rc in
        0) ;;
        86) bad="$bad $name:$tool(errors)" ;;
        124 | 137) bad="$bad $name:$tool(timeout)" ;;
        *) bad="$bad $name:$tool(exit $rc)" ;;
      esac
    done
  done
  if [ -n "$bad" ] && [ -z "$(tr ' ' '\n' <<<"$bad" | grep -vE '^$|\((timeout|no-time)\)$')" ]; then
    # Only out of time: memcheck is slow, that is not a finding.
    record sanitizer TIMEOUT $((SECONDS - start)) "$bad (not counted as a failure)" 0
  elif [ -n "$bad" ]; then
    record sanitizer FAIL $((SECONDS - start)) "$bad (see sanitizer-*.log)" 1
  else
    record sanitizer PASS $((SECONDS - start)) "memcheck+leaks, racecheck, initcheck, synccheck clean ($ran runs)" 1
  fi
}

stage_bench() {
  local start=$SECONDS f name lim bad="" n=0
  if ! ls "$BIN"/bench/mlpx_bench_* >/dev/null 2>&1; then
    record bench SKIP 0 "no mlpx_bench_* binaries" 0
    return
  fi
  for f in "$BIN"/bench/mlpx_bench_*; do
    [ -x "$f" ] && [ -f "$f" ] || continue
    name=$(basename "$f")
    lim=$(stage_limit 120)
    if [ "$lim" -lt 10 ]; then bad="$bad $name(no-time)"; continue; fi
    run_logged "$lim" "$OUTDIR/$name.log" "$f" --benchmark_min_time=0.05 \
      --benchmark_out="$OUTDIR/$name.json" --benchmark_out_format=json ||
      { bad="$bad $name(exit $?)" && FAIL_LOGS+=("$OUTDIR/$name.log"); }
    n=$((n + 1))
  done
  if [ -n "$bad" ] && [ -z "$(tr ' ' '\n' <<<"$bad" | grep -vE '^$|\(no-time\)$')" ]; then
    record bench SKIP $((SECONDS - start)) "out of the time budget" 0
  elif [ -n "$bad" ]; then
    record bench FAIL $((SECONDS - start)) "$bad" 0
  else
    record bench PASS $((SECONDS - start)) "$n suites, JSON in OUTDIR" 0
  fi
}

# mlpx train --device cuda with the default config on Fashion-MNIST: test accuracy and wall
# time (informational). The data comes from .gpu-prep/fashion-mnist or the machine's own copy.
stage_train() {
  local start=$SECONDS dir="" lim cfg acc
  for dir in "$PREP/fashion-mnist" "$FASHION_SRC"; do
    ls "$dir"/train-images-idx3-ubyte.gz >/dev/null 2>&1 && break
    dir=""
  done
  if [ -z "$dir" ] || [ ! -x "$BIN/mlpx" ]; then
    record train SKIP 0 "no Fashion-MNIST files or no mlpx binary" 0
    return
  fi
  lim=$(stage_limit 75)
  if [ "$lim" -lt 20 ]; then
    record train SKIP 0 "out of the time budget" 0
    return
  fi
  cfg=$OUTDIR/train-config.json
  printf '{"device": "cuda", "data": {"dir": "%s"}, "output": {"checkpoint": "%s", "log": "%s"}}\n' \
    "$dir" "$OUTDIR/train-model.safetensors" "$OUTDIR/train-metrics.json" >"$cfg"
  if run_logged "$lim" "$OUTDIR/train.log" "$BIN/mlpx" train --config "$cfg"; then
    acc=$(grep -o 'test loss [0-9.]* accuracy [0-9.]*' "$OUTDIR/train.log" | tail -1)
    record train PASS $((SECONDS - start)) "${acc:-no test line}; wall $((SECONDS - start)) s" 0
  else
    FAIL_LOGS+=("$OUTDIR/train.log")
    record train FAIL $((SECONDS - start)) "exit $? (see train.log)" 0
  fi
  rm -f "$OUTDIR/train-model.safetensors"
}

# Ceilings (copy bandwidth, fp32/tf32/bf16 GEMM) and mlpx against PyTorch (scripts/gpu-speed.py).
stage_speed() {
  local start=$SECONDS lim
  if ! command -v python3 >/dev/null || [ ! -x "$BIN/mlpx" ]; then
    record speed SKIP 0 "no python3 or no mlpx binary" 0
    return
  fi
  lim=$(stage_limit 90)
  if [ "$lim" -lt 30 ]; then
    record speed SKIP 0 "out of the time budget" 0
    return
  fi
  if run_logged "$lim" "$OUTDIR/speed.log" python3 "$ROOT/scripts/gpu-speed.py" \
    --mlpx "$BIN/mlpx" --json "$OUTDIR/speed.json" --budget "$((lim - 10))" --bench-dir "$OUTDIR"; then
    record speed PASS $((SECONDS - start)) "table in speed.log, figures in speed.json" 0
  else
    FAIL_LOGS+=("$OUTDIR/speed.log")
    record speed FAIL $((SECONDS - start)) "exit $? (see speed.log)" 0
  fi
}

print_failure_tails() {
  local f
  for f in "${FAIL_LOGS[@]}"; do
    [ -f "$f" ] || continue
    echo
    echo "=== $(basename "$f"): failures, then its last lines ==="
    grep -E '^\[  FAILED  \]|ERROR SUMMARY|^FAILED:|error:' "$f" | head -20
    echo "..."
    tail -20 "$f"
  done
}

summary() {
  local i
  {
    echo
    echo "=== gpu-check $MODE summary ($(date -u +%H:%M:%SZ), $((SECONDS)) s in all) ==="
    printf '%-10s | %-7s | %7s | %s\n' stage result seconds note
    for i in "${!S_NAME[@]}"; do
      printf '%-10s | %-7s | %7s | %s\n' "${S_NAME[$i]}" "${S_RESULT[$i]}" "${S_SECS[$i]}" "${S_NOTE[$i]}"
    done
    echo "gpu-check: $([ "$FAILED" = 0 ] && echo PASS || echo FAIL)"
  } | tee "$OUTDIR/summary.txt"
}

pack_outdir() {
  [ "${GPU_CHECK_PACK:-1}" = 1 ] || return 0
  local files
  files=$(cd "$OUTDIR" && ls -- *.log *.xml *.json 2>/dev/null)
  [ -n "$files" ] || return 0
  # shellcheck disable=SC2086
  (cd "$OUTDIR" && tar czf logs.tar.gz $files && rm -f $files)
}

# Lays the payload out under GPU_CHECK_WORK (a fresh copy each run).
unpack_payload() {
  PP=${GPU_CHECK_WORK:-/tmp/mlpx-gpu-prep}
  [ -f "$PAYLOAD" ] || return 1
  rm -rf "$PP" && mkdir -p "$PP" && tar -C "$PP" -xzf "$PAYLOAD"
}

do_run() {
  OUTDIR=${1:-}
  [ -n "$OUTDIR" ] || die "usage: scripts/gpu-check.sh $MODE OUTDIR"
  mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
  OUTDIR=$(realpath "$OUTDIR")
  rm -f "$OUTDIR"/*.log "$OUTDIR"/*.xml "$OUTDIR"/*.json "$OUTDIR"/logs.tar.gz "$OUTDIR"/summary.txt
  DEADLINE=$((SECONDS + ${GPU_CHECK_BUDGET:-470}))
  BIN=""
  log "$MODE in $ROOT, results in $OUTDIR, budget ${GPU_CHECK_BUDGET:-470} s"
  unpack_payload || log "no $PAYLOAD: run 'scripts/gpu-check.sh prepare' here first and carry .gpu-prep"
  RUN_LD=$PP/lib

  stage_facts
  stage_prebuilt || stage_build
  if [ -n "$BIN" ]; then
    stage_tests
    stage_sanitizer
    stage_bench
    stage_train
    stage_speed
  else
    record tests FAIL 0 "no binaries to run" 1
  fi
  print_failure_tails
  if [ -f "$OUTDIR/speed.log" ]; then
    echo
    echo "=== speed (scripts/gpu-speed.py) ==="
    tail -30 "$OUTDIR/speed.log"
  fi
  pack_outdir
  summary
  exit "$FAILED"
}

MODE=${1:-}
case $MODE in
  prepare) do_prepare ;;
  run) do_run "${2:-}" ;;
  selftest) do_run "${2:-/tmp/mlpx-gpu-selftest}" ;;
  *)
    sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit 2
    ;;
esac
