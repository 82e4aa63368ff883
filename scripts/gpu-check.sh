#!/usr/bin/env bash
# Checks mlpx on an NVIDIA GPU: the test suite with the GPU tests on, a training run, a speed
# table against PyTorch, the GPU benchmarks and compute-sanitizer, and writes a report.
#
# A GPU machine often lacks what a build needs (Debian's -dev packages, a package registry), so
# the work splits in two; on a Debian machine that has the GPU, run both there, one after the
# other.
#
#   scripts/gpu-check.sh prepare          on a Debian 12 build machine (no GPU needed; nvcc):
#                                         put into .gpu-prep/ what the GPU machine lacks, as
#                                         payload.tar.gz: Debian's -dev packages unpacked
#                                         (prefix/), a Release build of the test, bench and CLI
#                                         binaries (bin/) and the shared libraries they need
#                                         that a GPU machine may not have (lib/). Fails when
#                                         .gpu-prep is over 60 MiB.
#   scripts/gpu-check.sh run OUTDIR       on the GPU machine, in a copy of this repository with
#                                         .gpu-prep copied beside it. Stages, in this order:
#                                         facts, prebuilt (or a build there against
#                                         .gpu-prep/prefix when the binaries do not start),
#                                         tests, train, nccl (one rank through NCCL), bench
#                                         (GPU benchmarks only), speed,
#                                         sanitizer (compute-sanitizer, under its own total cap);
#                                         a summary table last. Writes OUTDIR/report.md and
#                                         appends it to docs/gpu-results.md.
#   scripts/gpu-check.sh record OUTDIR    appends OUTDIR/report.md (from a run on another
#                                         machine, copied back here) to docs/gpu-results.md.
#   scripts/gpu-check.sh plan [STAGE=S ...]  prints the stages in order with their time limits,
#                                         assuming each stage uses its whole limit (or S seconds).
#   scripts/gpu-check.sh selftest [OUTDIR]  the run logic on a machine without a GPU (GPU tests
#                                         skip; nothing is appended to docs/gpu-results.md).
#
# OUTDIR ends up holding summary.txt, report.md and logs.tar.gz (every *.log, *.xml and *.json);
# GPU_CHECK_PACK=0 leaves the files loose instead.
#
# Environment: GPU_CHECK_BUDGET (seconds for the whole run, default 470: set it below the time
# you have on the machine), GPU_CHECK_SANITIZER_CAP (seconds for all compute-sanitizer runs
# together, default 150), GPU_CHECK_ARCHS (CUDA architectures of the build, default: the GPU's
# own when nvidia-smi sees one, else 90), GPU_CHECK_RESULTS (the file run appends its report
# to, default docs/gpu-results.md; empty: none), GPU_CHECK_WORK (where run unpacks the payload,
# default /tmp/mlpx-gpu-prep), JOBS (prepare's build parallelism, default 2),
# GPU_CHECK_FORCE_BUILD=1 (run/selftest: skip the prebuilt binaries and build against
# .gpu-prep/prefix), GPU_CHECK_CUDA_LIB_DIRS (colon-separated folders searched first for
# libcublas/libcudart).
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

# The run's stages after facts and prebuilt/build, in order. train, bench and speed come before
# the sanitizer, which is the slowest and would otherwise leave them no time.
RUN_STAGES=(tests train nccl bench speed sanitizer)
BUDGET=${GPU_CHECK_BUDGET:-470}
RESERVE=20    # seconds kept at the end for the failure tails, the packing and the summary
# Time limits in seconds: per run (one binary, one tool), per stage (all its runs together), and
# the least a run needs to be worth starting (below it the run is left out, never started).
CAP_LIST=60                                     # prebuilt: each binary's --gtest_list_tests
CAP_BUILD=300                                   # fallback build: configure, then build
CAP_TEST=170 CAP_TESTS=170 MIN_TEST=10          # each test binary; the tests stage
CAP_TRAIN=75 MIN_TRAIN=20                       # mlpx train on Fashion-MNIST
CAP_NCCL=30 MIN_NCCL=10                         # two short runs, through NCCL and without
CAP_BENCH=60 CAP_BENCHES=60 MIN_BENCH=10        # each bench binary (GPU benchmarks only)
CAP_SPEED=90 MIN_SPEED=30                       # scripts/gpu-speed.py
CAP_SAN=120 CAP_SANITIZER=${GPU_CHECK_SANITIZER_CAP:-150} MIN_SAN=15  # compute-sanitizer
BENCH_FILTER=Gpu  # Google Benchmark regex: the GPU benchmarks (BM_*Gpu*), not their CPU twins
ARCH_TRIPLET=x86_64-linux-gnu

# What the GPU machine lacks (it has no Debian -dev packages), unpacked into .gpu-prep/prefix.
PREP_DEBS="libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian libopenblas-pthread-dev
libopenblas0-pthread libgfortran5 libquadmath0 nlohmann-json3-dev libcli11-dev zlib1g-dev zlib1g"

# Shared libraries never copied into .gpu-prep/lib: the C/C++ runtime and zlib (in every
# image), the driver, and the CUDA libraries that the machine's toolkit and PyTorch bring.
SYSTEM_LIBS='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libutil|libstdc\+\+|libgcc_s|libz|libcuda|libcudart|libcublas|libcublasLt|libnccl|libnvidia-[a-z-]+)\.so'

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

# The CUDA architectures to build for: GPU_CHECK_ARCHS, else the GPU's own when nvidia-smi sees
# one here, else 90 (H100/H200). Binaries built for another GPU than the one they run on fail
# their GPU tests ("no kernel image"): prepare with GPU_CHECK_ARCHS=<compute capability>, e.g. 80
# (A100), 86 (RTX 30xx), 89 (RTX 40xx, L4), 90 (H100/H200), or a list "80;90".
cuda_archs() {
  if [ -n "${GPU_CHECK_ARCHS:-}" ]; then
    echo "$GPU_CHECK_ARCHS"
  elif timeout 30 nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    echo native
  else
    echo 90
  fi
}

prepare_build() {
  local nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc} archs
  [ -x "$nvcc" ] || nvcc=$(command -v nvcc) || die "prepare needs nvcc (CUDA toolkit)"
  archs=$(cuda_archs)
  log "building for CUDA architectures $archs in $PREP_BUILD (a few minutes on 2 cores)"
  cmake -S "$ROOT" -B "$PREP_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLPX_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$archs" >"$PREP_BUILD.configure.log" 2>&1 ||
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
    echo "CUDA_ARCHS='$archs'"
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
  log "next, on the GPU machine, in a copy of this repository with .gpu-prep: bash scripts/gpu-check.sh run OUTDIR"
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

# Seconds since the start: the shell's clock, or plan's simulated one.
now() {
  if [ "$MODE" = plan ]; then echo "$PLAN_NOW"; else echo "$SECONDS"; fi
}

# stage_limit CAP [END]: seconds a run may use: CAP, but no later than END (a stage's own end,
# in now() seconds) and no later than the budget's end less the reserve; 0 when none is left.
stage_limit() {
  local cap=$1 t left
  t=$(now)
  left=$((DEADLINE - RESERVE - t))
  [ "$left" -lt "$cap" ] && cap=$left
  if [ -n "${2:-}" ]; then
    left=$(($2 - t))
    [ "$left" -lt "$cap" ] && cap=$left
  fi
  [ "$cap" -lt 0 ] && cap=0
  echo "$cap"
}

# stage_end CAP: the now() second by which a stage with a total cap of CAP must be done.
stage_end() {
  echo $(($(now) + $(stage_limit "$1")))
}

# Runs "$@" with our LD_LIBRARY_PATH, under timeout, output to a log; returns its status.
# A limit under 1 s runs nothing and returns 124 (timeout 0 would mean no limit at all).
run_logged() {
  local limit=$1 logf=$2
  shift 2
  if ! [ "$limit" -ge 1 ] 2>/dev/null; then
    echo "gpu-check: not started: no time left in the budget (limit '$limit')" >"$logf"
    return 124
  fi
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
    # libnccl (218 MB, too big for the payload) comes from the machine: its toolkit, or
    # PyTorch's nvidia/nccl wheel.
    if [[ ":${GPU_CHECK_CUDA_LIB_DIRS:-}:" == *":$d:"* ]] || compgen -G "$d/libcublas.so*" >/dev/null ||
      compgen -G "$d/libcudart.so*" >/dev/null || compgen -G "$d/libnccl.so*" >/dev/null; then
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
  GPUS=$(timeout 30 nvidia-smi -L 2>/dev/null | sed -nE 's/^GPU [0-9]+: (.*) \(UUID.*/\1/p' | paste -sd, -)
  DRIVER=$(timeout 30 nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
  record facts PASS $((SECONDS - start)) "GPU: ${GPUS:-none visible}" 0
}

# The payload's library folders: lib/ (what prepare picked), then the prefix's own (OpenBLAS,
# gfortran, quadmath, benchmark), which a build against the prefix links.
prefix_ld() {
  local p=$PP/prefix
  echo "$PP/lib:$p/usr/lib/$ARCH_TRIPLET/openblas-pthread:$p/usr/lib/$ARCH_TRIPLET:$p/lib/$ARCH_TRIPLET"
}

# setup_libs [BASE]: LD_LIBRARY_PATH for our binaries: BASE (default .gpu-prep/lib), then each
# folder (the prefix's, then CUDA's) that holds a library the binaries need and do not find.
setup_libs() {
  local start=$SECONDS dirs missing soname d found note="" unresolved=""
  RUN_LD=${1:-$PP/lib}
  dirs="$(prefix_ld | tr ':' '\n') $(cuda_lib_dirs)"
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
  for f in "$BIN"/tests/mlpx_*_tests; do
    lim=$(stage_limit "$CAP_LIST")
    run_logged "$lim" "$OUTDIR/prebuilt-$(basename "$f").log" "$f" --gtest_list_tests || {
      bad="$bad $(basename "$f")"
      FAIL_LOGS+=("$OUTDIR/prebuilt-$(basename "$f").log")
    }
  done
  if [ -n "$bad" ]; then
    record prebuilt FAIL $((SECONDS - start)) "did not start:$bad (see prebuilt-*.log)" 0
    return 1
  fi
  # shellcheck disable=SC1091,SC2153  # build.env (written by prepare) sets BUILT and COMMIT
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
  # The build runs the test binaries (gtest_discover_tests lists their tests after linking):
  # they must find OpenBLAS and its gfortran/quadmath in the prefix, and CUDA's libraries.
  local build_ld
  build_ld=$(prefix_ld)
  for d in $(cuda_lib_dirs); do build_ld=$build_ld:$d; done
  build_ld=$build_ld${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  lim=$(stage_limit "$CAP_BUILD")
  if [ "$lim" -lt 60 ]; then
    record build TIMEOUT 0 "no time left in the budget to build" 1
    return 1
  fi
  {
    echo "+ c++=$cxx nvcc=$nvcc archs=$(cuda_archs)"
    echo "+ LD_LIBRARY_PATH=$build_ld"
    LD_LIBRARY_PATH=$build_ld timeout -k 10 "$lim" cmake -S "$ROOT" -B "$DEVICE_BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DMLPX_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$(cuda_archs)" -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_HOST_COMPILER="$cxx" \
      -DMLPX_CBLAS_INCLUDE_DIR="$p/include/$ARCH_TRIPLET/openblas-pthread" \
      -DGTest_DIR="$p/lib/$ARCH_TRIPLET/cmake/GTest" \
      -Dbenchmark_DIR="$p/lib/$ARCH_TRIPLET/cmake/benchmark" \
      -Dnlohmann_json_DIR="$p/share/cmake/nlohmann_json" -DCLI11_DIR="$p/share/cmake/CLI11" \
      -DZLIB_INCLUDE_DIR="$p/include" -DZLIB_LIBRARY="$p/lib/$ARCH_TRIPLET/libz.so" \
      -DBLAS_openblas_LIBRARY="$p/lib/$ARCH_TRIPLET/libopenblas.so" "${extra[@]}" &&
      lim=$(stage_limit "$CAP_BUILD") &&
      if [ "$lim" -ge 1 ]; then
        LD_LIBRARY_PATH=$build_ld timeout -k 10 "$lim" cmake --build "$DEVICE_BUILD" -j "$(nproc)"
      else
        echo "gpu-check: no time left in the budget to build"
        (exit 124)
      fi
  } >"$OUTDIR/build.log" 2>&1
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    FAIL_LOGS+=("$OUTDIR/build.log")
    record build "$([ "$rc" = 124 ] && echo TIMEOUT || echo FAIL)" $((SECONDS - start)) "see build.log" 1
    return 1
  fi
  BIN=$DEVICE_BUILD
  setup_libs "$(prefix_ld)"
  record build PASS $((SECONDS - start)) "built here with $(basename "$cxx") against the payload's prefix" 1
}

stage_tests() {
  local start=$SECONDS f name rc bad="" skipped_gpu="" lim counts total=0 nskip=0 end
  end=$(stage_end "$CAP_TESTS")
  for f in "$BIN"/tests/mlpx_*_tests; do
    name=$(basename "$f")
    lim=$(stage_limit "$CAP_TEST" "$end")
    if [ "$lim" -lt "$MIN_TEST" ]; then bad="$bad $name(no-time)"; continue; fi
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

# compute-sanitizer, last: every run shares one total cap (GPU_CHECK_SANITIZER_CAP); the runs
# that no longer fit are listed as (no-time).
stage_sanitizer() {
  local start=$SECONDS cs f name rc lim bad="" ran=0 filter end
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
  end=$(stage_end "$CAP_SANITIZER")
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
      lim=$(stage_limit "$CAP_SAN" "$end")
      if [ "$lim" -lt "$MIN_SAN" ]; then bad="$bad $name:$tool(no-time)"; continue; fi
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
    record sanitizer TIMEOUT $((SECONDS - start)) "$ran runs clean within the ${CAP_SANITIZER} s cap; left out or cut:$bad (not counted as a failure)" 0
  elif [ -n "$bad" ]; then
    record sanitizer FAIL $((SECONDS - start)) "$bad (see sanitizer-*.log)" 1
  else
    record sanitizer PASS $((SECONDS - start)) "memcheck+leaks, racecheck, initcheck, synccheck clean ($ran runs)" 1
  fi
}

# The GPU benchmarks of each mlpx_bench_* binary (BENCH_FILTER), a short pass: their JSON feeds
# the speed stage's table.
stage_bench() {
  local start=$SECONDS f name lim bad="" n=0 end
  if ! ls "$BIN"/bench/mlpx_bench_* >/dev/null 2>&1; then
    record bench SKIP 0 "no mlpx_bench_* binaries" 0
    return
  fi
  end=$(stage_end "$CAP_BENCHES")
  for f in "$BIN"/bench/mlpx_bench_*; do
    [ -x "$f" ] && [ -f "$f" ] || continue
    name=$(basename "$f")
    lim=$(stage_limit "$CAP_BENCH" "$end")
    if [ "$lim" -lt "$MIN_BENCH" ]; then bad="$bad $name(no-time)"; continue; fi
    run_logged "$lim" "$OUTDIR/$name.log" "$f" --benchmark_filter="$BENCH_FILTER" --benchmark_min_time=0.05 \
      --benchmark_out="$OUTDIR/$name.json" --benchmark_out_format=json ||
      { bad="$bad $name(exit $?)" && FAIL_LOGS+=("$OUTDIR/$name.log"); }
    n=$((n + 1))
  done
  if [ -n "$bad" ] && [ -z "$(tr ' ' '\n' <<<"$bad" | grep -vE '^$|\(no-time\)$')" ]; then
    if [ "$n" -eq 0 ]; then
      record bench SKIP $((SECONDS - start)) "out of the time budget" 0
    else
      record bench PASS $((SECONDS - start)) "$n suites; left out (time):$bad" 0
    fi
  elif [ -n "$bad" ]; then
    record bench FAIL $((SECONDS - start)) "$bad" 0
  else
    record bench PASS $((SECONDS - start)) "$n suites (GPU benchmarks: --benchmark_filter=$BENCH_FILTER), JSON in OUTDIR" 0
  fi
}

# mlpx train --device cuda with the default config on Fashion-MNIST: test accuracy and wall
# time (informational). The data comes from .gpu-prep/fashion-mnist or the machine's own copy.
stage_train() {
  local start=$SECONDS dir lim cfg acc
  dir=$(fashion_dir)
  if [ -z "$dir" ] || [ ! -x "$BIN/mlpx" ]; then
    record train SKIP 0 "no Fashion-MNIST files or no mlpx binary" 0
    return
  fi
  lim=$(stage_limit "$CAP_TRAIN")
  if [ "$lim" -lt "$MIN_TRAIN" ]; then
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

# The folder holding Fashion-MNIST: .gpu-prep's copy, else the machine's own; empty: none.
fashion_dir() {
  local dir
  for dir in "$PREP/fashion-mnist" "$FASHION_SRC"; do
    ls "$dir"/train-images-idx3-ubyte.gz >/dev/null 2>&1 && echo "$dir" && return
  done
}

# One rank through NCCL on the device (train.collectives "nccl": the all-reduce runs on the
# GPU's stream, inside the captured step), then the same 2 epochs without it. One rank's sum is
# its own gradient, so both must print the same test line; each run's last-epoch samples/s
# (from its log) says what the NCCL call costs per step.
stage_nccl() {
  local start=$SECONDS dir lim kind cfg line_nccl line_host rate note=""
  dir=$(fashion_dir)
  if [ -z "$dir" ] || [ ! -x "$BIN/mlpx" ]; then
    record nccl SKIP 0 "no Fashion-MNIST files or no mlpx binary" 0
    return
  fi
  for kind in nccl host; do
    lim=$(stage_limit "$((CAP_NCCL / 2))")
    if [ "$lim" -lt "$((MIN_NCCL / 2))" ]; then
      record nccl SKIP $((SECONDS - start)) "out of the time budget" 0
      return
    fi
    cfg=$OUTDIR/nccl-$kind-config.json
    printf '{"device": "cuda", "data": {"dir": "%s"}, "train": {"epochs": 2, "collectives": "%s"}, "output": {"checkpoint": "", "log": "%s"}}\n' \
      "$dir" "$kind" "$OUTDIR/nccl-$kind-metrics.json" >"$cfg"
    if ! run_logged "$lim" "$OUTDIR/nccl-$kind.log" "$BIN/mlpx" train --config "$cfg"; then
      FAIL_LOGS+=("$OUTDIR/nccl-$kind.log")
      record nccl FAIL $((SECONDS - start)) "collectives $kind: exit $? (see nccl-$kind.log)" 0
      return
    fi
    rate=$(sed -nE 's/.*"samples_per_s": *([0-9.]+).*/\1/p' "$OUTDIR/nccl-$kind-metrics.json" 2>/dev/null | tail -1)
    note="$note${note:+, }$kind ${rate:-?} samples/s"
  done
  line_nccl=$(grep -o 'test loss [0-9.]* accuracy [0-9.]*' "$OUTDIR/nccl-nccl.log" | tail -1)
  line_host=$(grep -o 'test loss [0-9.]* accuracy [0-9.]*' "$OUTDIR/nccl-host.log" | tail -1)
  if [ -n "$line_nccl" ] && [ "$line_nccl" = "$line_host" ]; then
    record nccl PASS $((SECONDS - start)) "$line_nccl with and without NCCL; $note" 0
  else
    FAIL_LOGS+=("$OUTDIR/nccl-nccl.log")
    record nccl FAIL $((SECONDS - start)) "test lines differ: nccl '$line_nccl', host '$line_host'" 0
  fi
}

# Ceilings (copy bandwidth, fp32/tf32/bf16 GEMM) and mlpx against PyTorch (scripts/gpu-speed.py).
stage_speed() {
  local start=$SECONDS lim
  if ! command -v python3 >/dev/null || [ ! -x "$BIN/mlpx" ]; then
    record speed SKIP 0 "no python3 or no mlpx binary" 0
    return
  fi
  lim=$(stage_limit "$CAP_SPEED")
  if [ "$lim" -lt "$MIN_SPEED" ]; then
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
  rm -f "$OUTDIR"/report.md
  DEADLINE=$((SECONDS + BUDGET))
  BIN=""
  log "$MODE in $ROOT, results in $OUTDIR, budget $BUDGET s (sanitizer cap $CAP_SANITIZER s)"
  unpack_payload || log "no $PAYLOAD: run 'scripts/gpu-check.sh prepare' here first and carry .gpu-prep"
  RUN_LD=$PP/lib

  stage_facts
  stage_prebuilt || stage_build
  if [ -n "$BIN" ]; then
    local stage
    for stage in "${RUN_STAGES[@]}"; do "stage_$stage"; done
  else
    record tests FAIL 0 "no binaries to run" 1
  fi
  print_failure_tails
  if [ -f "$OUTDIR/speed.log" ]; then
    echo
    echo "=== speed (scripts/gpu-speed.py) ==="
    tail -30 "$OUTDIR/speed.log"
  fi
  write_report >"$OUTDIR/report.md"
  pack_outdir
  summary
  if [ "$MODE" = run ] && [ -n "$RESULTS" ]; then
    append_report "$OUTDIR/report.md" && log "report appended to $RESULTS"
  fi
  exit "$FAILED"
}

# ---------------------------------------------------------------------------------------------
# the report (OUTDIR/report.md, appended to docs/gpu-results.md)
# ---------------------------------------------------------------------------------------------

RESULTS=${GPU_CHECK_RESULTS-docs/gpu-results.md}
case $RESULTS in "" | /*) ;; *) RESULTS=$ROOT/$RESULTS ;; esac

# One section in Markdown: when, which GPU, which build, each stage's result, the speed table.
write_report() {
  local i built commit note
  # shellcheck disable=SC1091,SC2153  # build.env (written by prepare) sets COMMIT, BUILT, ...
  if [ "$BIN" = "$DEVICE_BUILD" ]; then
    commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    built="built on this machine, CUDA architectures $(cuda_archs)"
  else
    commit=$( (. "$PREP/build.env" && echo "$COMMIT") 2>/dev/null || echo unknown)
    built=$( (. "$PREP/build.env" && echo "prebuilt $BUILT, ${NVCC_VERSION:-nvcc ?}, CUDA architectures ${CUDA_ARCHS:-90}") 2>/dev/null)
  fi
  echo "## $(date -u '+%Y-%m-%d %H:%M UTC'): ${GPUS:-no GPU visible}, gpu-check $MODE $([ "$FAILED" = 0 ] && echo PASS || echo FAIL)"
  echo
  echo "| | |"
  echo "| --- | --- |"
  echo "| GPU | ${GPUS:-none visible}${DRIVER:+ (driver $DRIVER)} |"
  echo "| mlpx | commit $commit; ${built:-no binaries} |"
  echo "| machine | $(grep PRETTY_NAME /etc/os-release 2>/dev/null | cut -d= -f2 | tr -d '"'), $(nproc) cores |"
  echo "| time | $SECONDS s of a $BUDGET s budget |"
  echo
  echo "| stage | result | seconds | note |"
  echo "| --- | --- | --- | --- |"
  for i in "${!S_NAME[@]}"; do
    note=${S_NOTE[$i]//|//}
    echo "| ${S_NAME[$i]} | ${S_RESULT[$i]} | ${S_SECS[$i]} | $note |"
  done
  if [ -f "$OUTDIR/speed.log" ]; then
    echo
    echo "Speed (scripts/gpu-speed.py):"
    echo
    echo '```text'
    tail -30 "$OUTDIR/speed.log"
    echo '```'
  fi
}

# append_report FILE: appends FILE to $RESULTS, which starts with a title when new.
append_report() {
  [ -n "$RESULTS" ] || die "GPU_CHECK_RESULTS is empty: nowhere to append the report"
  [ -s "$1" ] || die "no report at $1"
  mkdir -p "$(dirname "$RESULTS")" || die "cannot create $(dirname "$RESULTS")"
  if [ ! -s "$RESULTS" ]; then
    {
      echo "# GPU results"
      echo
      echo "What \`scripts/gpu-check.sh run\` found on real NVIDIA GPUs, one section per run, newest"
      echo "last: the machine, the build, each stage's result and the speed table. Figures from the"
      echo "GPU simulator (sim/) never go here."
    } >"$RESULTS"
  fi
  { echo; cat "$1"; } >>"$RESULTS"
}

do_record() {
  [ -n "${1:-}" ] || die "usage: scripts/gpu-check.sh record OUTDIR"
  append_report "$1/report.md"
  log "appended $1/report.md to $RESULTS"
}

# ---------------------------------------------------------------------------------------------
# plan: the stages in order and their time limits, computed by the run's own stage_limit on a
# simulated clock. Each stage is assumed to use its whole limit, or the seconds given as
# STAGE=S (facts and prebuilt are assumed to take 10 s each unless given).
# ---------------------------------------------------------------------------------------------

do_plan() {
  local arg name secs stage per cap min lim use note
  declare -A assume=([facts]=10 [prebuilt]=10)
  for arg in "$@"; do
    [[ $arg =~ ^([a-z]+)=([0-9]+)$ ]] || die "plan: expected STAGE=SECONDS, got '$arg'"
    name=${BASH_REMATCH[1]} secs=${BASH_REMATCH[2]}
    [[ " facts prebuilt build ${RUN_STAGES[*]} " == *" $name "* ]] || die "plan: no stage '$name'"
    assume[$name]=$secs
  done
  PLAN_NOW=0
  DEADLINE=$BUDGET
  echo "gpu-check plan: budget $BUDGET s (GPU_CHECK_BUDGET), the last $RESERVE s kept for the summary"
  printf '%-10s | %6s | %7s | %9s | %6s | %s\n' stage starts per-run stage-cap limit assumed
  printf '%-10s | %6s | %7s | %9s | %6s | %s\n' facts 0 - - - "${assume[facts]} s"
  PLAN_NOW=${assume[facts]}
  if [ -n "${assume[build]:-}" ]; then
    lim=$(stage_limit "$CAP_BUILD")
    printf '%-10s | %6s | %7s | %9s | %6s | %s\n' build "$PLAN_NOW" "$CAP_BUILD" - "$lim" "${assume[build]} s (fallback build)"
    use=${assume[build]}
  else
    lim=$(stage_limit "$CAP_LIST")
    printf '%-10s | %6s | %7s | %9s | %6s | %s\n' prebuilt "$PLAN_NOW" "$CAP_LIST" - "$lim" "${assume[prebuilt]} s"
    use=${assume[prebuilt]}
  fi
  PLAN_NOW=$((PLAN_NOW + use))
  for stage in "${RUN_STAGES[@]}"; do
    case $stage in
      tests) per=$CAP_TEST cap=$CAP_TESTS min=$MIN_TEST ;;
      train) per=$CAP_TRAIN cap=$CAP_TRAIN min=$MIN_TRAIN ;;
      nccl) per=$CAP_NCCL cap=$CAP_NCCL min=$MIN_NCCL ;;
      bench) per=$CAP_BENCH cap=$CAP_BENCHES min=$MIN_BENCH ;;
      speed) per=$CAP_SPEED cap=$CAP_SPEED min=$MIN_SPEED ;;
      sanitizer) per=$CAP_SAN cap=$CAP_SANITIZER min=$MIN_SAN ;;
    esac
    lim=$(stage_limit "$cap")
    if [ "$lim" -lt "$min" ]; then
      use=0 note="skipped: under the $min s a run needs"
    else
      use=${assume[$stage]:-$lim}
      [ "$use" -gt "$lim" ] && use=$lim
      note="$use s"
    fi
    printf '%-10s | %6s | %7s | %9s | %6s | %s\n' "$stage" "$PLAN_NOW" "$per" "$cap" "$lim" "$note"
    PLAN_NOW=$((PLAN_NOW + use))
  done
  echo "ends by $((PLAN_NOW + RESERVE)) s at the latest (budget $BUDGET s)"
}

check_number() {
  [[ $2 =~ ^[0-9]+$ ]] || die "$1 must be a whole number of seconds, not '$2'"
}

MODE=${1:-}
check_number GPU_CHECK_BUDGET "$BUDGET"
check_number GPU_CHECK_SANITIZER_CAP "$CAP_SANITIZER"
case $MODE in
  prepare) do_prepare ;;
  run) do_run "${2:-}" ;;
  selftest) do_run "${2:-/tmp/mlpx-gpu-selftest}" ;;
  record) do_record "${2:-}" ;;
  plan)
    shift
    do_plan "$@"
    ;;
  *)
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
    exit 2
    ;;
esac
