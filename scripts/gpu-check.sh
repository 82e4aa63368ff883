#!/usr/bin/env bash
# Checks mlpx on an NVIDIA GPU in one short, prepared call, and writes what it found where a
# call that is cut short still returns it.
#
#   scripts/gpu-check.sh prepare        on a Debian 12 build machine with nvcc (no GPU needed):
#                                       builds what the device run needs (CUDA on, oneDNN, MPI
#                                       and Python off, sm_90 unless GPU_CHECK_ARCHS says
#                                       otherwise) into build-gpu-prep/, and puts into .gpu-prep/
#                                       payload.tar.xz (the GPU test binaries, the CLI and the
#                                       shared libraries a GPU machine may lack), build.env and
#                                       Fashion-MNIST's four .gz files. Prints the size and fails
#                                       above 48 MiB (the tree and the payload travel together in
#                                       64 MiB).
#   scripts/gpu-check.sh run OUTDIR     on the GPU machine, in a copy of this repository with
#                                       .gpu-prep/ beside it. The stages, in this order, each
#                                       under its own cap: facts, tests (the GPU tests only),
#                                       train, speed, sanitizer, nccl, bench. After every stage
#                                       OUTDIR holds summary.txt, report.md and logs.tar.gz (at
#                                       most 8 files, each under 16 MiB): a run killed at any
#                                       point leaves what the stages before it found.
#   scripts/gpu-check.sh rehearse [OUTDIR]  the whole run path on this machine: the simulator
#                                       build (GPU_CHECK_SIM_BUILD, default build-sim) in place
#                                       of the GPU binaries, stand-ins for nvidia-smi and
#                                       compute-sanitizer; checks that every stage writes its
#                                       files, the limits on the payload and OUTDIR, a kill at
#                                       each stage boundary, and the plan. Exit 77: skipped (its
#                                       inputs are missing; the line says which).
#   scripts/gpu-check.sh record OUTDIR  appends OUTDIR/report.md (a run's, copied back here) to
#                                       docs/gpu-results.md.
#   scripts/gpu-check.sh plan [STAGE=S ...]  the stages in order with their caps and start
#                                       times, each assumed to use its whole cap (or S seconds).
#
# Environment: GPU_CHECK_BUDGET (seconds for the whole run, default 440), GPU_CHECK_ARCHS
# (prepare: CUDA architectures, default 90), GPU_CHECK_RESULTS (the file record appends to,
# default docs/gpu-results.md), GPU_CHECK_WORK (where run unpacks the payload, default
# /tmp/mlpx-gpu-prep), GPU_CHECK_CUDA_LIB_DIRS (folders searched first for the CUDA libraries),
# GPU_CHECK_PREP (the prepared folder, default .gpu-prep; rehearse points it at its own),
# JOBS (prepare's build parallelism, default 2), GPU_CHECK_STAGES (run only these stages, e.g.
# "tests train" for a rerun; facts always runs). What a rehearsal shrinks (each has a default
# for the real run): GPU_CHECK_TEST_FILTER (gtest filter for every GPU test binary),
# GPU_CHECK_TRAIN_EPOCHS, GPU_CHECK_TRAIN_MIN_ACCURACY (default 0.88), GPU_CHECK_NCCL_EPOCHS
# (default 2), GPU_CHECK_CONFIG_EXTRA (KEY=JSON items set in every mlpx config after the
# stage's own), GPU_CHECK_SPEED_ARGS (extra gpu-speed.py arguments), GPU_CHECK_BENCH_ARGS,
# GPU_CHECK_SANITIZER_FILTER (gtest filter of the sanitizer's runs), GPU_CHECK_CAP_TEST (one
# test binary's cap within the tests stage's, default 60).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$(pwd -P)
SCRIPT=$ROOT/scripts/gpu-check.sh

PREP=${GPU_CHECK_PREP:-$ROOT/.gpu-prep} # travels (carry ".gpu-prep"): payload, build.env, data
PREP_BUILD=$ROOT/build-gpu-prep         # prepare's build tree (stays here)
PAYLOAD=$PREP/payload.tar.xz
MAX_MIB=48        # .gpu-prep's limit: with the tree (about 2 MiB) well under a call's 64 MiB
OUT_MAX_FILES=8   # what a device call brings back from $OUT: 8 files ...
OUT_MAX_MIB=16    # ... each under 16 MiB
ARCH_TRIPLET=x86_64-linux-gnu

# The GPU test binaries (in this order: the most telling first) and the CLI: all that the
# payload carries. CPU-only tests do not run on the device; CI runs them.
GPU_TEST_BINARIES=(mlpx_parity_tests mlpx_training_tests mlpx_cli_tests mlpx_core_tests mlpx_dist_tests)
# Each binary's GPU tests: every parity test; elsewhere the tests named Cuda/Gpu/Parity/Nccl,
# less those that skip on one GPU by design (two devices, the simulator's counters, MPI ranks)
# or check the CPU-only path. A skip among what is left means a GPU test did not run.
GPU_FILTER_DEFAULT='*Cuda*:*Gpu*:*Parity*:*Nccl*:-TwoDevices.*:EvaluateCuda.*:NcclRanks.*:Device.WithoutCudaGpuTensorsFailClearly:TrainingTest.Tf32NeedsACudaDevice'
gpu_filter() {
  if [ -n "${GPU_CHECK_TEST_FILTER:-}" ]; then echo "$GPU_CHECK_TEST_FILTER"; return; fi
  case $1 in
    mlpx_parity_tests) echo '*' ;;
    mlpx_cli_tests) echo 'GpuTrainCli.*' ;;
    *) echo "$GPU_FILTER_DEFAULT" ;;
  esac
}

# The stages in order, and each one's cap in seconds (the stage ends by then, whatever it
# runs). The caps plus RESERVE make the default budget: `plan` prints the schedule.
STAGES=(facts tests train speed sanitizer nccl bench)
declare -A CAP=([facts]=25 [tests]=90 [train]=60 [speed]=100 [sanitizer]=90 [nccl]=30 [bench]=30)
# The least time a stage needs to be worth starting; below it the stage is skipped, not cut.
declare -A MIN=([facts]=5 [tests]=15 [train]=20 [speed]=30 [sanitizer]=20 [nccl]=10 [bench]=10)
RESERVE=15 # kept at the end for the last rewrite of OUTDIR
BUDGET=${GPU_CHECK_BUDGET:-440}
CAP_TEST=${GPU_CHECK_CAP_TEST:-60} # one test binary (within the tests stage's cap)
CAP_MEMCHECK=55 # memcheck over the parity binary (within the sanitizer's cap)

# Shared libraries never copied into the payload: the C/C++ runtime and zlib (in every image),
# the driver, and the CUDA libraries the GPU machine's toolkit or PyTorch wheels bring.
SYSTEM_LIBS='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libutil|libstdc\+\+|libgcc_s|libz|libcuda|libcudart|libcublas|libcublasLt|libnccl|libnvidia-[a-z-]+)\.so'
FASHION_SRC=/usr/share/datasets/fashion-mnist
FASHION_FILES="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"

log() { printf '%s\n' "gpu-check: $*"; }
die() {
  printf '%s\n' "gpu-check: error: $*" >&2
  exit 1
}
mib_of() { echo $((($(du -sb "$1" | cut -f1) + 1048575) / 1048576)); }

# ---------------------------------------------------------------------------------------------
# prepare
# ---------------------------------------------------------------------------------------------

prepare_build() {
  local nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc} archs=${GPU_CHECK_ARCHS:-90} targets=(mlpx_cli)
  [ -x "$nvcc" ] || nvcc=$(command -v nvcc) || die "prepare needs nvcc (CUDA toolkit)"
  targets+=("${GPU_TEST_BINARIES[@]}")
  log "building ${targets[*]} for CUDA architectures $archs in $PREP_BUILD"
  mkdir -p "$PREP_BUILD"
  cmake -S "$ROOT" -B "$PREP_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLPX_CUDA=ON \
    -DMLPX_ONEDNN=OFF -DMLPX_MPI=OFF -DMLPX_PYTHON=OFF -DMLPX_BUILD_BENCH=OFF \
    -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$archs" \
    >"$PREP_BUILD/configure.log" 2>&1 || {
    tail -30 "$PREP_BUILD/configure.log"
    die "configure failed (log: $PREP_BUILD/configure.log)"
  }
  nice cmake --build "$PREP_BUILD" -j "${JOBS:-2}" --target "${targets[@]}" || die "build failed"
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

# pack_payload BUILD_DIR STAGE_DIR MODE: lays out the payload of BUILD_DIR's binaries under
# STAGE_DIR (bin/ as in the build tree, so that the paths the tests compute from
# MLPX_BINARY_DIR hold; lib/ the non-system shared libraries they load) and packs it into
# $PAYLOAD, xz-compressed (OpenBLAS's 36 MB shrink to 4 MiB, against gzip's 10). MODE copy:
# stripped copies (prepare); link: symbolic links to the binaries (rehearse: the simulator
# build stays where it is; a fast xz level, its libraries being what is packed).
pack_payload() {
  local build=$1 stage=$2 mode=$3 name f soname path
  rm -rf "$stage" && mkdir -p "$stage/bin/tests" "$stage/lib"
  for name in "${GPU_TEST_BINARIES[@]}"; do
    f=$build/tests/$name
    [ -x "$f" ] || die "$f is missing: build it first"
    if [ "$mode" = copy ]; then cp "$f" "$stage/bin/tests/"; else ln -s "$f" "$stage/bin/tests/$name"; fi
  done
  [ -x "$build/mlpx" ] || die "$build/mlpx is missing: build mlpx_cli first"
  if [ "$mode" = copy ]; then
    cp "$build/mlpx" "$stage/bin/"
    strip --strip-debug "$stage"/bin/tests/* "$stage/bin/mlpx" || die "strip failed"
  else
    ln -s "$build/mlpx" "$stage/bin/mlpx"
  fi
  while read -r soname path; do
    [[ $soname =~ $SYSTEM_LIBS ]] && continue
    cp -L "$path" "$stage/lib/$soname"
  done < <(for f in "$stage"/bin/tests/* "$stage/bin/mlpx"; do ldd "$f"; done |
    awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u)
  cp "$PREP/build.env" "$stage/"
  tar -C "$stage" -cf - bin lib build.env | xz "-$([ "$mode" = copy ] && echo 6 || echo 0)" -T2 >"$PAYLOAD" ||
    die "tar | xz failed"
}

# Fashion-MNIST's four .gz files (about 29 MiB, already compressed), beside the payload: the
# train, nccl and bench stages and the GPU CLI test read them. ROWS (rehearse): the first ROWS
# training and ROWS/3 test rows only, written as IDX.
prepare_fashion_mnist() {
  local rows=${1:-} f
  rm -rf "${PREP:?}/fashion-mnist" && mkdir -p "$PREP/fashion-mnist"
  for f in $FASHION_FILES; do
    [ -f "$FASHION_SRC/$f" ] || return 1
  done
  if [ -z "$rows" ]; then
    for f in $FASHION_FILES; do cp "$FASHION_SRC/$f" "$PREP/fashion-mnist/"; done
  else
    python3 - "$FASHION_SRC" "$PREP/fashion-mnist" "$rows" <<'EOF' || return 1
import gzip, struct, sys
src, dst, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name, keep in (("train", rows), ("t10k", max(1, rows // 3))):
    for kind in ("images-idx3", "labels-idx1"):
        path = f"{name}-{kind}-ubyte.gz"
        with gzip.open(f"{src}/{path}") as f:
            magic = f.read(4)
            dims = struct.unpack(">" + "I" * magic[3], f.read(4 * magic[3]))
            per = 1
            for d in dims[1:]:
                per *= d
            body = f.read(keep * per)
        with gzip.open(f"{dst}/{path}", "wb", compresslevel=1) as f:
            f.write(magic + struct.pack(">" + "I" * len(dims), keep, *dims[1:]) + body)
EOF
  fi
}

# The payload's size against the limit; prints the parts.
check_prep_size() {
  local mib
  mib=$(mib_of "$PREP")
  du -sh "$PREP"/* | sed 's/^/  /'
  log ".gpu-prep is $mib MiB (limit $MAX_MIB MiB)"
  [ "$mib" -le "$MAX_MIB" ] || die ".gpu-prep is $mib MiB, over $MAX_MIB MiB: with the tree it would not travel"
}

do_prepare() {
  local start=$SECONDS
  mkdir -p "$PREP" "$PREP_BUILD"
  rm -rf "${PREP:?}"/* 
  prepare_build
  pack_payload "$PREP_BUILD" "$PREP_BUILD/_stage" copy
  prepare_fashion_mnist || die "Fashion-MNIST is not in $FASHION_SRC: apt-get install dataset-fashion-mnist"
  log "libraries in the payload: $(cd "$PREP_BUILD/_stage/lib" && ls | tr '\n' ' ')"
  log "prepared in $((SECONDS - start)) s"
  check_prep_size
  log "next: the device call in docs/building.md (carry .gpu-prep; bash scripts/gpu-check.sh run \$OUT)"
}

# ---------------------------------------------------------------------------------------------
# run: the stages, each under its cap, OUTDIR rewritten after each
# ---------------------------------------------------------------------------------------------

S_NAME=() S_RESULT=() S_SECS=() S_NOTE=() FAIL_LOGS=()
FAILED=0
SNAPSHOT=0
REQUIRED=" tests train sanitizer nccl " # a FAIL of these fails the run; speed and bench inform

# stage_open NAME: a RUNNING row, written out before the stage starts, so that a run cut inside
# the stage says where it stopped.
stage_open() {
  S_NAME+=("$1") S_RESULT+=(RUNNING) S_SECS+=("-")
  S_NOTE+=("started at $SECONDS s; no result: the run was cut inside this stage")
  rewrite_out
}

# record NAME RESULT SECONDS NOTE: the stage's result, in place of its RUNNING row.
record() {
  local i=$((${#S_NAME[@]} - 1))
  if [ "$i" -lt 0 ] || [ "${S_NAME[$i]}" != "$1" ] || [ "${S_RESULT[$i]}" != RUNNING ]; then
    S_NAME+=("$1") S_RESULT+=("") S_SECS+=("") S_NOTE+=("")
    i=$((${#S_NAME[@]} - 1))
  fi
  S_RESULT[$i]=$2 S_SECS[$i]=$3 S_NOTE[$i]=$4
  if [ "$2" = FAIL ] && [[ $REQUIRED == *" $1 "* ]]; then FAILED=1; fi
  printf '%s\n' "--- $1: $2 ($3 s) $4"
}

# Seconds since the start: the shell's clock, or plan's simulated one.
now() {
  if [ "$MODE" = plan ]; then echo "$PLAN_NOW"; else echo "$SECONDS"; fi
}

# limit CAP END: seconds a run may use: CAP, but no later than END (its stage's end) and the
# budget's end less the reserve; 0 when none is left.
limit() {
  local cap=$1 t
  t=$(now)
  [ $((DEADLINE - RESERVE - t)) -lt "$cap" ] && cap=$((DEADLINE - RESERVE - t))
  [ $(($2 - t)) -lt "$cap" ] && cap=$(($2 - t))
  [ "$cap" -lt 0 ] && cap=0
  echo "$cap"
}

# run_logged LIMIT LOG COMMAND...: under timeout (SIGTERM, then SIGKILL 5 s later), stdout line
# buffered (a cut run keeps what it printed), output to LOG. A limit under 1 s runs nothing.
run_logged() {
  local lim=$1 logf=$2
  shift 2
  if ! [ "$lim" -ge 1 ] 2>/dev/null; then
    echo "gpu-check: not started: no time left (limit '$lim')" >"$logf"
    return 124
  fi
  echo "+ $* (limit $lim s)" >"$logf"
  if [ -z "$RUN_LD" ]; then
    timeout -k 5 "$lim" "${STDBUF[@]}" "$@" >>"$logf" 2>&1
  else
    LD_LIBRARY_PATH="$RUN_LD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
      timeout -k 5 "$lim" "${STDBUF[@]}" "$@" >>"$logf" 2>&1
  fi
}

python_site() {
  python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null
}

# Folders holding CUDA's shared libraries (cuBLAS, the runtime, NCCL) on this machine: the
# toolkit's, then PyTorch's nvidia/*/lib wheels.
cuda_lib_dirs() {
  local site d nvcc
  nvcc=$(command -v nvcc || ls /usr/local/cuda*/bin/nvcc 2>/dev/null | head -1)
  {
    tr ':' '\n' <<<"${GPU_CHECK_CUDA_LIB_DIRS:-}"
    if [ -n "$nvcc" ]; then
      d=$(dirname "$(dirname "$(realpath "$nvcc")")")
      echo "$d/lib64"
      echo "$d/lib"
    fi
    ls -d /usr/local/cuda/lib64 /usr/local/cuda*/lib64 /usr/local/cuda*/targets/*/lib 2>/dev/null
    site=$(python_site)
    [ -n "$site" ] && ls -d "$site"/nvidia/*/lib "$site"/nvidia/cu*/lib 2>/dev/null
  } | while read -r d; do
    [ -d "$d" ] || continue
    if compgen -G "$d/libcublas.so*" >/dev/null || compgen -G "$d/libcudart.so*" >/dev/null ||
      compgen -G "$d/libnccl.so*" >/dev/null; then
      realpath "$d"
    fi
  done | awk '!seen[$0]++'
}

# LD_LIBRARY_PATH for the payload's binaries: its lib/, then each folder that holds a library
# they need and do not find. Sets RUN_LD and MISSING_LIBS.
setup_libs() {
  local missing soname d found dirs
  RUN_LD=$PP/lib
  dirs=$(cuda_lib_dirs)
  missing=$(for f in "${GPU_TEST_BINARIES[@]/#/$BIN/tests/}" "$BIN/mlpx"; do
    LD_LIBRARY_PATH=$RUN_LD ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 == "not" {print $1}'
  done | sort -u)
  MISSING_LIBS=""
  for soname in $missing; do
    found=""
    for d in $dirs; do
      if [ -e "$d/$soname" ]; then found=$d; break; fi
    done
    if [ -n "$found" ]; then
      case ":$RUN_LD:" in *":$found:"*) ;; *) RUN_LD=$RUN_LD:$found ;; esac
    else
      MISSING_LIBS="$MISSING_LIBS $soname"
    fi
  done
}

# The prebuilt tests carry the paths of the tree they were built in (MLPX_SOURCE_DIR,
# MLPX_BINARY_DIR): point those paths at this copy where they do not exist here.
link_build_paths() {
  local SOURCE_DIR="" BINARY_DIR=""
  # shellcheck disable=SC1091
  [ -f "$PP/build.env" ] && . "$PP/build.env"
  if [ -n "$SOURCE_DIR" ] && [ ! -e "$SOURCE_DIR" ]; then
    mkdir -p "$(dirname "$SOURCE_DIR")" && ln -s "$ROOT" "$SOURCE_DIR"
  fi
  if [ -n "$BINARY_DIR" ] && [ ! -e "$BINARY_DIR" ]; then
    mkdir -p "$(dirname "$BINARY_DIR")" && ln -s "$BIN" "$BINARY_DIR"
  fi
}

# 1. facts: the machine, the GPU, the toolkit, PyTorch, the libraries; and whether every
# binary starts (--gtest_list_tests loads every library without running a test).
stage_facts() {
  local start=$SECONDS f=$LOGS/facts.log end bad="" b lim
  end=$((start + CAP[facts]))
  {
    echo "== os"; grep PRETTY_NAME /etc/os-release 2>/dev/null; uname -srm; ldd --version | head -1
    echo "== nproc $(nproc)"; free -g 2>/dev/null | head -2
    echo "== nvidia-smi"; timeout 5 nvidia-smi 2>&1 || echo "nvidia-smi: not available"
    echo "== nvcc"; timeout 3 nvcc --version 2>&1 | tail -2 || echo "nvcc: not found"
    echo "== compute-sanitizer: $(command -v compute-sanitizer || echo not found)"
    echo "== python3 / torch"
    timeout 8 python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -1
    echo "== CUDA library folders"; cuda_lib_dirs
    echo "== payload build.env"; cat "$PP/build.env"
    echo "== LD_LIBRARY_PATH for mlpx: $RUN_LD"
    echo "== not found:${MISSING_LIBS:- none}"
    echo "== env: NCCL_SOCKET_IFNAME=$NCCL_SOCKET_IFNAME MLPX_FASHION_MNIST_DIR=$MLPX_FASHION_MNIST_DIR"
  } >"$f" 2>&1
  GPUS=$(timeout 3 nvidia-smi -L 2>/dev/null | sed -nE 's/^GPU [0-9]+: (.*) \(UUID.*/\1/p' | paste -sd, -)
  DRIVER=$(timeout 3 nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
  for b in "${GPU_TEST_BINARIES[@]/#/$BIN/tests/}" "$BIN/mlpx"; do
    lim=$(limit 10 "$end")
    if [ "$(basename "$b")" = mlpx ]; then
      run_logged "$lim" "$LOGS/start-mlpx.log" "$b" --version || bad="$bad mlpx"
    else
      run_logged "$lim" "$LOGS/start-$(basename "$b").log" "$b" --gtest_list_tests || bad="$bad $(basename "$b")"
    fi
  done
  if [ -n "$MISSING_LIBS$bad" ]; then
    record facts FAIL $((SECONDS - start)) "GPU: ${GPUS:-none visible}; libraries not found:${MISSING_LIBS:- none}; did not start:${bad:- none}"
    STARTS=0
  else
    record facts PASS $((SECONDS - start)) "GPU: ${GPUS:-none visible}${DRIVER:+, driver $DRIVER}"
  fi
}

# 2. tests: the GPU tests of each GPU test binary (gpu_filter). On a device every one must run:
# a skip means the GPU path was not checked, and fails the stage.
stage_tests() {
  local start=$SECONDS end b name lim rc bad="" skips="" total=0 n tf32=""
  end=$((start + CAP[tests]))
  for name in "${GPU_TEST_BINARIES[@]}"; do
    b=$BIN/tests/$name
    lim=$(limit "$CAP_TEST" "$end")
    if [ "$lim" -lt 5 ]; then bad="$bad $name(no time)"; continue; fi
    run_logged "$lim" "$LOGS/$name.log" "$b" --gtest_filter="$(gpu_filter "$name")" \
      --gtest_output="xml:$LOGS/$name.xml" --gtest_color=no
    rc=$?
    case $rc in
      0) ;;
      124 | 137) bad="$bad $name(cut at $lim s)" ;;
      *) bad="$bad $name(exit $rc)" ;;
    esac
    [ "$rc" -eq 0 ] || FAIL_LOGS+=("$LOGS/$name.log")
    n=$(sed -nE 's/^\[==========\] ([0-9]+) tests? from .* ran\..*/\1/p' "$LOGS/$name.log" | tail -1)
    total=$((total + ${n:-0}))
    # gtest's closing line: "[  SKIPPED ] K tests, listed below:".
    n=$(sed -nE 's/^\[  SKIPPED \] ([0-9]+) tests?, listed below.*/\1/p' "$LOGS/$name.log" | tail -1)
    [ "${n:-0}" -gt 0 ] && skips="$skips $name($n)"
    [ -z "$tf32" ] && tf32=$(sed -nE 's/.*cuBLAS math for tf32: (.*)$/\1/p' "$LOGS/$name.log" | head -1)
  done
  local note="$total GPU tests${tf32:+; tf32 GEMM: $tf32}"
  if [ -n "$bad" ]; then
    record tests FAIL $((SECONDS - start)) "$note; failed:$bad"
  elif [ -n "$skips" ]; then
    record tests FAIL $((SECONDS - start)) "$note; GPU tests SKIPPED on a device in:$skips (see the logs)"
  elif [ "$total" -eq 0 ]; then
    record tests FAIL $((SECONDS - start)) "no test ran"
  else
    record tests PASS $((SECONDS - start)) "$note, none skipped"
  fi
}

# A config (JSON) of configs/fashion-mnist.json, the default recipe, on the payload's data:
# mlpx_config OUT [KEY=JSON ...] sets each dotted KEY, then those of GPU_CHECK_CONFIG_EXTRA
# (rehearse: a smaller model for the simulator).
mlpx_config() {
  # shellcheck disable=SC2086  # word splitting intended: KEY=JSON items without spaces
  python3 - "$ROOT/configs/fashion-mnist.json" "$@" ${GPU_CHECK_CONFIG_EXTRA:-} <<'EOF'
import json, sys
config = json.load(open(sys.argv[1]))
out = sys.argv[2]
for item in sys.argv[3:]:
    key, value = item.split("=", 1)
    node = config
    *path, last = key.split(".")
    for part in path:
        node = node.setdefault(part, {})
    node[last] = json.loads(value)
json.dump(config, open(out, "w"), indent=1)
EOF
}

# 3. train: `mlpx train` with the default recipe on the GPU (CUDA graphs on, the default), on
# the payload's Fashion-MNIST: its test accuracy must reach GPU_CHECK_TRAIN_MIN_ACCURACY.
stage_train() {
  local start=$SECONDS lim cfg acc epochs=${GPU_CHECK_TRAIN_EPOCHS:-} min=${GPU_CHECK_TRAIN_MIN_ACCURACY:-0.88}
  cfg=$LOGS/train-config.json
  mlpx_config "$cfg" "device=\"cuda\"" "data.dir=\"$DATA\"" "output.checkpoint=\"\"" \
    "output.log=\"$LOGS/train-metrics.jsonl\"" ${epochs:+"train.epochs=$epochs"} ||
    { record train FAIL 0 "could not write the config (python3)"; return; }
  lim=$(limit "${CAP[train]}" $((start + CAP[train])))
  run_logged "$lim" "$LOGS/train.log" "$BIN/mlpx" train --config "$cfg"
  local rc=$?
  acc=$(sed -nE 's/.*test loss [0-9.]+ accuracy ([0-9.]+).*/\1/p' "$LOGS/train.log" | tail -1)
  if [ "$rc" -ne 0 ]; then
    FAIL_LOGS+=("$LOGS/train.log")
    record train FAIL $((SECONDS - start)) "exit $rc$([ "$rc" = 124 ] && echo " (cut at $lim s)") (see train.log)"
  elif ! grep -q 'fashion-mnist' "$LOGS/train.log"; then
    record train FAIL $((SECONDS - start)) "did not train on Fashion-MNIST (see train.log)"
  elif [ -z "$acc" ] || ! awk -v a="$acc" -v m="$min" 'BEGIN { exit !(a >= m) }'; then
    record train FAIL $((SECONDS - start)) "test accuracy ${acc:-missing}, below $min"
  else
    record train PASS $((SECONDS - start)) "test accuracy $acc (at least $min); $(grep -o '[0-9.]* samples/s' "$LOGS/train.log" | tail -1)"
  fi
}

# 4. speed: scripts/gpu-speed.py: the device's ceilings, then mlpx's rows, then PyTorch's; each
# row against the ceiling and the PyTorch row of its own precision.
stage_speed() {
  local start=$SECONDS lim rc extra=()
  lim=$(limit "${CAP[speed]}" $((start + CAP[speed])))
  # Unset: the counted models (a), (b), (c) (docs/benchmarks.md's counters) plus the narrow
  # ones, with fused against unfused rows (docs/gpu-speed.md's "Fused MLP"); the budget cuts
  # the list short, so the counted models go first.
  # shellcheck disable=SC2206  # word splitting intended: extra arguments
  extra=(${GPU_CHECK_SPEED_ARGS---models small,medium,xl,narrow128,narrow256 --fused-compare})
  # PyTorch with the machine's own libraries (not the payload's OpenBLAS and gfortran); mlpx,
  # which gpu-speed.py starts, with ours (MLPX_LD_LIBRARY_PATH).
  local ld=$RUN_LD RUN_LD=""
  MLPX_LD_LIBRARY_PATH=$ld run_logged "$lim" "$LOGS/speed.log" python3 -u "$ROOT/scripts/gpu-speed.py" \
    --mlpx "$BIN/mlpx" --json "$LOGS/speed.json" --budget "$((lim - 10))" "${extra[@]}"
  rc=$?
  if [ "$rc" -eq 0 ]; then
    record speed PASS $((SECONDS - start)) "$(grep -c '^row ' "$LOGS/speed.log") rows (speed.log, speed.json)"
  else
    FAIL_LOGS+=("$LOGS/speed.log")
    record speed FAIL $((SECONDS - start)) "exit $rc$([ "$rc" = 124 ] && echo " (cut at $lim s)"); $(grep -c '^row ' "$LOGS/speed.log") rows before it (speed.log)"
  fi
}

# 5. sanitizer: memcheck (with leak check) over the parity binary; racecheck over the same,
# limited to mlpx's own kernels (cuBLAS's and CUB's reports are not mlpx's to fix).
stage_sanitizer() {
  # By default all the parity tests but the 2^20-parameter optimizer cases (elementwise: the
  # smaller sizes cover their code; under memcheck they alone would take the cap).
  local start=$SECONDS end cs tool lim rc bad="" ran="" filter=${GPU_CHECK_SANITIZER_FILTER:-*-*_n1048579*}
  local b=$BIN/tests/mlpx_parity_tests
  end=$((start + CAP[sanitizer]))
  cs=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
  if [ -z "$cs" ]; then
    record sanitizer SKIP 0 "compute-sanitizer not found"
    return
  fi
  local STDBUF=() # no preloaded stdbuf beside the sanitizer's own injection
  for tool in memcheck racecheck; do
    local args=(--tool "$tool")
    case $tool in
      memcheck) args+=(--leak-check full) lim=$(limit "$CAP_MEMCHECK" "$end") ;;
      racecheck) args+=(--racecheck-report all --kernel-name kns=mlpx) lim=$(limit "${CAP[sanitizer]}" "$end") ;;
    esac
    if [ "$lim" -lt 10 ]; then bad="$bad $tool(no time)"; continue; fi
    run_logged "$lim" "$LOGS/sanitizer-$tool.log" "$cs" "${args[@]}" --error-exitcode 86 "$b" \
      --gtest_filter="$filter" --gtest_color=no
    rc=$?
    if grep -qE 'Device not supported|CUDA_ERROR_NOT_SUPPORTED' "$LOGS/sanitizer-$tool.log"; then
      record sanitizer SKIP $((SECONDS - start)) "compute-sanitizer: Device not supported here"
      return
    fi
    case $rc in
      0) ran="$ran $tool" ;;
      86) bad="$bad $tool(errors)" && FAIL_LOGS+=("$LOGS/sanitizer-$tool.log") ;;
      124 | 137) bad="$bad $tool(cut at $lim s)" ;;
      *) bad="$bad $tool(exit $rc)" && FAIL_LOGS+=("$LOGS/sanitizer-$tool.log") ;;
    esac
  done
  if [[ $bad == *errors* ]] || [[ $bad == *exit* ]]; then
    record sanitizer FAIL $((SECONDS - start)) "clean:${ran:- none}; not:$bad"
  elif [ -n "$bad" ]; then
    record sanitizer TIMEOUT $((SECONDS - start)) "clean:${ran:- none}; out of time:$bad"
  else
    record sanitizer PASS $((SECONDS - start)) "memcheck (leaks too) and racecheck (mlpx kernels) clean over the parity tests"
  fi
}

# 6. nccl: one rank through NCCL (the all-reduce on the GPU's stream, inside the captured step),
# then the same epochs without it: one rank's sum is its own gradient, so the test lines match.
stage_nccl() {
  local start=$SECONDS end kind cfg lim rc a b epochs=${GPU_CHECK_NCCL_EPOCHS:-2}
  end=$((start + CAP[nccl]))
  for kind in nccl host; do
    cfg=$LOGS/nccl-$kind-config.json
    mlpx_config "$cfg" "device=\"cuda\"" "data.dir=\"$DATA\"" "output.checkpoint=\"\"" \
      "train.epochs=$epochs" "train.collectives=\"$kind\"" ||
      { record nccl FAIL 0 "could not write the config (python3)"; return; }
    lim=$(limit $((CAP[nccl] / 2)) "$end")
    run_logged "$lim" "$LOGS/nccl-$kind.log" "$BIN/mlpx" train --config "$cfg"
    rc=$?
    if [ "$rc" -ne 0 ]; then
      FAIL_LOGS+=("$LOGS/nccl-$kind.log")
      record nccl FAIL $((SECONDS - start)) "collectives $kind: exit $rc (see nccl-$kind.log)"
      return
    fi
  done
  a=$(grep -o 'test loss [0-9.]* accuracy [0-9.]*' "$LOGS/nccl-nccl.log" | tail -1)
  b=$(grep -o 'test loss [0-9.]* accuracy [0-9.]*' "$LOGS/nccl-host.log" | tail -1)
  if [ -n "$a" ] && [ "$a" = "$b" ]; then
    record nccl PASS $((SECONDS - start)) "$a with and without NCCL (NCCL_SOCKET_IFNAME=$NCCL_SOCKET_IFNAME)"
  else
    record nccl FAIL $((SECONDS - start)) "test lines differ: nccl '$a', host '$b'"
  fi
}

# 7. bench: `mlpx bench` on the GPU over the default recipe's data: throughput per batch size.
stage_bench() {
  local start=$SECONDS lim cfg rc extra=()
  cfg=$LOGS/bench-config.json
  mlpx_config "$cfg" "data.dir=\"$DATA\"" || { record bench FAIL 0 "could not write the config"; return; }
  # shellcheck disable=SC2206  # word splitting intended
  extra=(${GPU_CHECK_BENCH_ARGS:---batch-sizes 32,128,512,2048,full --target 0 --seconds 1 --max-seconds 3})
  lim=$(limit "${CAP[bench]}" $((start + CAP[bench])))
  run_logged "$lim" "$LOGS/bench.log" "$BIN/mlpx" bench --device cuda --config "$cfg" --json "${extra[@]}"
  rc=$?
  if [ "$rc" -eq 0 ]; then
    record bench PASS $((SECONDS - start)) "$(grep -c '^{' "$LOGS/bench.log") batch sizes (bench.log)"
  else
    record bench FAIL $((SECONDS - start)) "exit $rc$([ "$rc" = 124 ] && echo " (cut at $lim s)"); $(grep -c '^{' "$LOGS/bench.log") batch sizes before it"
  fi
}

verdict() {
  local i
  for i in "${!S_RESULT[@]}"; do
    [ "${S_RESULT[$i]}" = RUNNING ] && { echo "CUT in ${S_NAME[$i]}"; return; }
  done
  if [ "$FAILED" = 0 ]; then echo PASS; else echo FAIL; fi
}

summary_text() {
  local i
  echo "=== gpu-check $MODE ($(date -u +%Y-%m-%dT%H:%M:%SZ), $SECONDS s of a $BUDGET s budget) ==="
  printf '%-10s | %-7s | %7s | %s\n' stage result seconds note
  for i in "${!S_NAME[@]}"; do
    printf '%-10s | %-7s | %7s | %s\n' "${S_NAME[$i]}" "${S_RESULT[$i]}" "${S_SECS[$i]}" "${S_NOTE[$i]}"
  done
  echo "gpu-check: $(verdict)"
}

# The report (Markdown): when, which GPU, which build, each stage's result, the speed table,
# the failures' tails.
write_report() {
  local i note f
  # shellcheck disable=SC1091,SC2153
  local built
  built=$( (. "$PP/build.env" && echo "commit $COMMIT, built $BUILT, ${NVCC_VERSION:-nvcc ?}, CUDA architectures $CUDA_ARCHS") 2>/dev/null)
  echo "## $(date -u '+%Y-%m-%d %H:%M UTC'): ${GPUS:-no GPU visible}, gpu-check $MODE $(verdict)"
  echo
  echo "| | |"
  echo "| --- | --- |"
  echo "| GPU | ${GPUS:-none visible}${DRIVER:+ (driver $DRIVER)} |"
  echo "| mlpx | ${built:-unknown build} |"
  echo "| machine | $(grep PRETTY_NAME /etc/os-release 2>/dev/null | cut -d= -f2 | tr -d '"'), $(nproc) cores |"
  echo "| time | $SECONDS s of a $BUDGET s budget |"
  echo
  echo "| stage | result | seconds | note |"
  echo "| --- | --- | --- | --- |"
  for i in "${!S_NAME[@]}"; do
    note=${S_NOTE[$i]//|//}
    echo "| ${S_NAME[$i]} | ${S_RESULT[$i]} | ${S_SECS[$i]} | $note |"
  done
  if [ -f "$LOGS/speed.log" ]; then
    echo
    echo "Speed (scripts/gpu-speed.py; each row against its own precision's ceiling and PyTorch):"
    echo
    echo '```text'
    grep -vE '^\+ ' "$LOGS/speed.log" | tail -40
    echo '```'
  fi
  for f in "${FAIL_LOGS[@]}"; do
    [ -f "$f" ] || continue
    echo
    echo "$(basename "$f"), its failures and last lines:"
    echo
    echo '```text'
    grep -E '^\[  FAILED  \]|ERROR SUMMARY|error:' "$f" | head -15
    echo "..."
    tail -15 "$f" | cut -c1-300
    echo '```'
  done
}

# atomic_write FILE: stdin into FILE through a temporary beside it (a kill leaves the old FILE
# or the new one, never half of one).
atomic_write() {
  cat >"$1.tmp" && mv -f "$1.tmp" "$1"
}

# After every stage (and before it): summary.txt, report.md and logs.tar.gz, rewritten whole.
# The logs are packed with each cut to its last 2 MiB, so the archive stays under 16 MiB.
rewrite_out() {
  summary_text | atomic_write "$OUTDIR/summary.txt"
  write_report | atomic_write "$OUTDIR/report.md"
  local f packed=$WORK/packed
  rm -rf "$packed" && mkdir -p "$packed"
  for f in "$LOGS"/*; do
    [ -f "$f" ] || continue
    if [ "$(stat -c %s "$f")" -gt 2097152 ]; then
      { echo "[gpu-check: cut to its last 2 MiB]"; tail -c 2097152 "$f"; } >"$packed/$(basename "$f")"
    else
      cp "$f" "$packed/"
    fi
  done
  tar -C "$packed" -czf "$OUTDIR/logs.tar.gz.tmp" . && mv -f "$OUTDIR/logs.tar.gz.tmp" "$OUTDIR/logs.tar.gz"
  if [ -n "${GPU_CHECK_SNAPSHOTS:-}" ]; then # rehearse: OUTDIR as a kill here would leave it
    local snap=$GPU_CHECK_SNAPSHOTS/$((++SNAPSHOT))-${S_NAME[-1]:-start}-${S_RESULT[-1]:-none}
    mkdir -p "$snap" && cp "$OUTDIR"/* "$snap/"
  fi
  if [ -n "${GPU_CHECK_KILL_AFTER:-}" ] && [ "${S_NAME[-1]:-}" = "$GPU_CHECK_KILL_AFTER" ] &&
    [ "${S_RESULT[-1]}" != RUNNING ]; then # rehearse: as the device's timeout would
    kill -KILL 0
  fi
}

# The payload's layout under GPU_CHECK_WORK (a fresh copy each run): by tar and xz, else by
# Python's tarfile (an image without xz).
unpack_payload() {
  PP=$WORK/payload
  rm -rf "$PP" && mkdir -p "$PP" || return 1
  command -v xz >/dev/null && tar -C "$PP" -xJf "$PAYLOAD" 2>/dev/null && return 0
  python3 - "$PAYLOAD" "$PP" <<'EOF'
import sys, tarfile
with tarfile.open(sys.argv[1]) as tar:
    if hasattr(tarfile, "fully_trusted_filter"):
        tar.extractall(sys.argv[2], filter="fully_trusted")  # our own archive: links as packed
    else:
        tar.extractall(sys.argv[2])
EOF
}

do_run() {
  OUTDIR=${1:-}
  [ -n "$OUTDIR" ] || die "usage: scripts/gpu-check.sh $MODE OUTDIR"
  mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
  OUTDIR=$(realpath "$OUTDIR")
  rm -f "$OUTDIR"/summary.txt "$OUTDIR"/report.md "$OUTDIR"/logs.tar.gz
  if [ ! -f "$PAYLOAD" ] || [ ! -d "$PREP/fashion-mnist" ]; then
    local why="no prepared payload at ${PAYLOAD#"$ROOT"/} (and its fashion-mnist/): run 'scripts/gpu-check.sh prepare' on the build machine, then name \".gpu-prep\" in the device call's carry (carry: [\".gpu-prep\"])"
    echo "gpu-check: refused to start: $why" | atomic_write "$OUTDIR/summary.txt"
    die "$why"
  fi
  WORK=${GPU_CHECK_WORK:-/tmp/mlpx-gpu-prep}
  LOGS=$WORK/logs
  rm -rf "$LOGS" && mkdir -p "$LOGS"
  DEADLINE=$((SECONDS + BUDGET))
  unpack_payload || die "could not unpack $PAYLOAD into $WORK"
  BIN=$PP/bin
  DATA=$(realpath "$PREP/fashion-mnist")
  # One rank needs no network: without this NCCL looks for an interface to bind (ncclGetUniqueId).
  export NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-lo}
  # The GPU CLI test reads its rows from here (never silently from a fixed path).
  export MLPX_FASHION_MNIST_DIR=$DATA
  export PYTHONUNBUFFERED=1
  STDBUF=()
  command -v stdbuf >/dev/null && STDBUF=(stdbuf -oL -eL)
  log "$MODE in $ROOT, results in $OUTDIR, budget $BUDGET s"
  link_build_paths
  setup_libs
  local stage
  STARTS=1
  for stage in "${STAGES[@]}"; do
    # A rerun of some stages (GPU_CHECK_STAGES="tests train"): facts always, the others left out.
    if [ -n "${GPU_CHECK_STAGES:-}" ] && [ "$stage" != facts ] &&
      [[ " $GPU_CHECK_STAGES " != *" $stage "* ]]; then
      continue
    fi
    stage_open "$stage"
    if [ "$STARTS" = 0 ] && [ "$stage" != facts ]; then
      record "$stage" SKIP 0 "the binaries do not start here (see facts)"
      FAILED=1
    elif [ "$(limit "${CAP[$stage]}" "$DEADLINE")" -lt "${MIN[$stage]}" ]; then
      record "$stage" SKIP 0 "out of the time budget"
      # No verdict on the GPU without its tests and its training run.
      [[ " tests train " == *" $stage "* ]] && FAILED=1
    else
      "stage_$stage"
    fi
    rewrite_out
  done
  summary_text
  exit "$FAILED"
}

# ---------------------------------------------------------------------------------------------
# record: append a report to docs/gpu-results.md
# ---------------------------------------------------------------------------------------------

RESULTS=${GPU_CHECK_RESULTS-docs/gpu-results.md}
case $RESULTS in "" | /*) ;; *) RESULTS=$ROOT/$RESULTS ;; esac

do_record() {
  local report=${1:-}/report.md
  [ -n "${1:-}" ] || die "usage: scripts/gpu-check.sh record OUTDIR"
  [ -n "$RESULTS" ] || die "GPU_CHECK_RESULTS is empty: nowhere to append the report"
  [ -s "$report" ] || die "no report at $report"
  if [ ! -s "$RESULTS" ]; then
    {
      echo "# GPU results"
      echo
      echo "What \`scripts/gpu-check.sh run\` found on real NVIDIA GPUs, one section per run, newest"
      echo "last: the machine, the build, each stage's result and the speed table. Figures from the"
      echo "GPU simulator (sim/) never go here."
    } >"$RESULTS"
  fi
  { echo; cat "$report"; } >>"$RESULTS"
  log "appended $report to $RESULTS"
}

# ---------------------------------------------------------------------------------------------
# plan: the schedule, computed by the run's own limit() on a simulated clock
# ---------------------------------------------------------------------------------------------

do_plan() {
  local arg name stage lim use note
  declare -A assume=()
  for arg in "$@"; do
    [[ $arg =~ ^([a-z]+)=([0-9]+)$ ]] || die "plan: expected STAGE=SECONDS, got '$arg'"
    name=${BASH_REMATCH[1]}
    [[ " ${STAGES[*]} " == *" $name "* ]] || die "plan: no stage '$name'"
    assume[$name]=${BASH_REMATCH[2]}
  done
  PLAN_NOW=0
  DEADLINE=$BUDGET
  echo "gpu-check plan: budget $BUDGET s (GPU_CHECK_BUDGET), the last $RESERVE s kept for the last rewrite"
  printf '%-10s | %6s | %4s | %6s | %s\n' stage starts cap limit assumed
  for stage in "${STAGES[@]}"; do
    lim=$(limit "${CAP[$stage]}" $((PLAN_NOW + CAP[$stage])))
    if [ "$lim" -lt "${MIN[$stage]}" ]; then
      use=0 note="skipped: under the ${MIN[$stage]} s it needs"
    else
      use=${assume[$stage]:-$lim}
      [ "$use" -gt "$lim" ] && use=$lim
      note="$use s"
    fi
    printf '%-10s | %6s | %4s | %6s | %s\n' "$stage" "$PLAN_NOW" "${CAP[$stage]}" "$lim" "$note"
    PLAN_NOW=$((PLAN_NOW + use))
  done
  echo "ends by $((PLAN_NOW + RESERVE)) s at the latest (budget $BUDGET s)"
}

# ---------------------------------------------------------------------------------------------
# rehearse: the run path here, on the simulator build
# ---------------------------------------------------------------------------------------------

skip() {
  echo "gpu-check rehearse: skipped: $*"
  exit 77
}

REH_FAILS=0
rcheck() { # rcheck DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; REH_FAILS=$((REH_FAILS + 1)); fi
}

# out_within_limits DIR: what a device call brings back: at most 8 plain files at the top, each
# under 16 MiB, named in letters, digits, '.', '_' and '-'.
out_within_limits() {
  local n big odd
  n=$(find "$1" -mindepth 1 | wc -l)
  big=$(find "$1" -type f -size +$((OUT_MAX_MIB * 1024 - 1))k | wc -l)
  odd=$(find "$1" -mindepth 1 \( -type d -o ! -regex '.*/[A-Za-z0-9._-]+' \) | wc -l)
  [ "$n" -le "$OUT_MAX_FILES" ] && [ "$big" = 0 ] && [ "$odd" = 0 ]
}

# summary_stages DIR: the stage names of DIR/summary.txt, in order.
summary_stages() { sed -nE 's/^([a-z]+) +\| [A-Z]+ .*/\1/p' "$1/summary.txt" | paste -sd' ' -; }

do_rehearse() {
  local out=${1:-/tmp/mlpx-gpu-rehearse} sim=${GPU_CHECK_SIM_BUILD:-$ROOT/build-sim} name
  case $sim in /*) ;; *) sim=$ROOT/$sim ;; esac
  grep -q '^MLPX_CUDA:STRING=SIM' "$sim/CMakeCache.txt" 2>/dev/null ||
    skip "no simulator build at $sim (cmake --preset sim; GPU_CHECK_SIM_BUILD names another)"
  for name in mlpx "${GPU_TEST_BINARIES[@]/#/tests/}"; do
    [ -x "$sim/$name" ] || skip "$sim/$name is not built (ninja -C $sim mlpx_cli ${GPU_TEST_BINARIES[*]})"
  done
  for name in $FASHION_FILES; do
    [ -f "$FASHION_SRC/$name" ] || skip "no $FASHION_SRC/$name (apt-get install dataset-fashion-mnist)"
  done
  T=$(mktemp -d /tmp/mlpx-gpu-rehearse.XXXXXX)
  trap 'rm -rf "$T"' EXIT
  mkdir -p "$out" && out=$(realpath "$out")

  # The payload, packed by prepare's own code from the simulator build (linked, not copied),
  # with the first 3,000 Fashion-MNIST training rows and 1,000 test rows (what the GPU CLI
  # test reads). A real one (prepare's) is checked for size too.
  if [ -f "$ROOT/.gpu-prep/payload.tar.xz" ]; then
    local real
    real=$(mib_of "$ROOT/.gpu-prep")
    rcheck "prepare's .gpu-prep is $real MiB, within $MAX_MIB MiB" [ "$real" -le "$MAX_MIB" ]
  fi
  PREP=$T/prep PAYLOAD=$T/prep/payload.tar.xz
  mkdir -p "$PREP"
  printf "SOURCE_DIR=%s\nBINARY_DIR=%s\nNVCC_VERSION='(simulator)'\nCUDA_ARCHS='sim'\nBUILT='%s'\nCOMMIT='%s'\n" \
    "$ROOT" "$sim" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    >"$PREP/build.env"
  (pack_payload "$sim" "$T/stage" link) || { echo "FAIL packing the payload"; exit 1; }
  prepare_fashion_mnist 3000 || { echo "FAIL writing the Fashion-MNIST rows"; exit 1; }
  rcheck "the rehearsal payload is $(mib_of "$PREP") MiB, within $MAX_MIB MiB" [ "$(mib_of "$PREP")" -le "$MAX_MIB" ]

  # Stand-ins: nvidia-smi names the simulated device; compute-sanitizer checks its arguments
  # (racecheck limited to mlpx's kernels) and runs the program.
  mkdir -p "$T/path"
  cat >"$T/path/nvidia-smi" <<'EOF'
#!/usr/bin/env bash
case "$*" in
  -L) echo "GPU 0: mlpx simulator (stand-in) (UUID: GPU-sim)" ;;
  *query-gpu*) echo "sim" ;;
  *) echo "nvidia-smi stand-in (rehearse): GPU 0 is the mlpx simulator" ;;
esac
EOF
  cat >"$T/path/compute-sanitizer" <<'EOF'
#!/usr/bin/env bash
# compute-sanitizer stand-in (rehearse): records its arguments, then runs the program.
echo "compute-sanitizer $*" >>"$REHEARSE_CALLS"
tool=memcheck names=""
while [ $# -gt 0 ]; do
  case $1 in
    --tool) tool=$2; shift 2 ;;
    --kernel-name|--kernel-name-exclude) names="$names $1=$2"; shift 2 ;;
    --leak-check|--racecheck-report|--error-exitcode) shift 2 ;;
    -*) echo "compute-sanitizer stand-in: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ "$tool" = racecheck ] && [ -z "$names" ]; then
  echo "compute-sanitizer stand-in: racecheck over every kernel (cuBLAS's, CUB's too)" >&2; exit 3
fi
"$@"
rc=$?
echo "========= ERROR SUMMARY: 0 errors (stand-in)"
exit $rc
EOF
  chmod +x "$T/path"/*
  export REHEARSE_CALLS=$T/calls.log
  : >"$REHEARSE_CALLS"

  # What the rehearsal shrinks: a few GPU tests per binary, one epoch, tiny speed models. The
  # simulator build has ASan, whose runtime must otherwise be the first library loaded (the
  # run's stdbuf preloads its own).
  local env=(PATH="$T/path:$PATH" GPU_CHECK_PREP="$PREP" GPU_CHECK_WORK="$T/work"
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
    GPU_CHECK_TEST_FILTER="${REHEARSE_TEST_FILTER:-Tf32Parity.*:TensorCuda.*:BatchingCuda.*:NcclOneRank.CollectivesOnADeviceBuffer:GpuTrainCli.*}"
    GPU_CHECK_TRAIN_EPOCHS=1 GPU_CHECK_TRAIN_MIN_ACCURACY=0.3 GPU_CHECK_NCCL_EPOCHS=1
    GPU_CHECK_CAP_TEST=85 # the GPU CLI test alone takes 30 to 40 s on the simulator
    GPU_CHECK_CONFIG_EXTRA='model.layers=[{"units":32,"activation":"relu"},{"units":10,"activation":"identity"}] train.batch_size=256'
    GPU_CHECK_SPEED_ARGS="--models tiny --repeats 1" GPU_CHECK_SANITIZER_FILTER='Tf32Parity.*'
    GPU_CHECK_BENCH_ARGS="--batch-sizes 128 --target 0 --seconds 0.2 --warmup 1 --max-seconds 5"
    GPU_CHECK_BUDGET="${GPU_CHECK_BUDGET:-$BUDGET}")

  # 1. The whole run, with OUTDIR copied at each rewrite (what a kill there would leave).
  echo "gpu-check rehearse: the run path on $sim (results in $out)"
  local t0=$SECONDS
  env "${env[@]}" GPU_CHECK_SNAPSHOTS="$T/snaps" MODE_LABEL=rehearse bash "$SCRIPT" run "$out" >"$T/run.log" 2>&1
  local rc=$?
  sed 's/^/  | /' "$T/run.log" | tail -20
  rcheck "the run ended (exit $rc) in $((SECONDS - t0)) s with a summary" [ -s "$out/summary.txt" ]
  rcheck "its stages, in order: ${STAGES[*]}" [ "$(summary_stages "$out")" = "${STAGES[*]}" ]
  for name in "${STAGES[@]}"; do
    rcheck "stage $name passed" grep -qE "^$name +\| PASS " "$out/summary.txt"
  done
  rcheck "OUTDIR is within a device call's limits ($(ls "$out" | paste -sd' ' -))" out_within_limits "$out"
  local listing
  listing=$(tar -tzf "$out/logs.tar.gz" 2>/dev/null | sed 's|^\./||' | paste -sd' ' -)
  for name in facts.log mlpx_parity_tests.log mlpx_parity_tests.xml mlpx_cli_tests.log train.log \
    speed.log speed.json sanitizer-memcheck.log sanitizer-racecheck.log nccl-nccl.log nccl-host.log bench.log; do
    rcheck "logs.tar.gz holds $name" grep -qw "$name" <<<"$listing"
  done
  rcheck "report.md has the stage table" grep -q '^| bench | PASS |' "$out/report.md"
  rcheck "racecheck was limited to mlpx's kernels" grep -q -- '--tool racecheck .*--kernel-name kns=mlpx' "$REHEARSE_CALLS"
  rcheck "the GPU CLI test read the payload's rows" \
    bash -c "tar -xzOf '$out/logs.tar.gz' ./mlpx_cli_tests.log | grep -q 'Fashion-MNIST from $PREP/fashion-mnist'"
  rcheck "the tf32 test said which math cuBLAS used" grep -q 'tf32 GEMM: ' "$out/summary.txt"
  rcheck "speed: mlpx rows before PyTorch rows" \
    bash -c "tar -xzOf '$out/logs.tar.gz' ./speed.log | awk '/^row /{ if (\$4 ~ /^torch/) t=1; else if (t) bad=1 } END { exit bad }'"

  # 2. A kill at each stage boundary: the snapshots (OUTDIR right after each rewrite) hold a
  # summary naming every stage so far, and logs that unpack.
  local snap n=0 okays=0 want
  for snap in "$T"/snaps/*; do
    n=$((n + 1))
    want=$(summary_stages "$snap")
    if [ -s "$snap/summary.txt" ] && tar -tzf "$snap/logs.tar.gz" >/dev/null 2>&1 && [ -s "$snap/report.md" ] &&
      out_within_limits "$snap"; then okays=$((okays + 1)); fi
  done
  rcheck "each of the $n rewrites (before and after each stage) left summary, report and logs ($okays whole)" \
    [ "$n/$okays" = "$((2 * ${#STAGES[@]}))/$n" ]
  # And one real SIGKILL of the whole run (its session: as the device's timeout ends a call)
  # after the tests stage, which runs one GPU test here.
  (env "${env[@]}" GPU_CHECK_KILL_AFTER=tests GPU_CHECK_TEST_FILTER='TensorCuda.*' \
    setsid -w bash "$SCRIPT" run "$T/killed" >"$T/killed.log" 2>&1; true) 2>/dev/null
  rcheck "killed after tests: the summary has facts, tests" [ "$(summary_stages "$T/killed")" = "facts tests" ]
  rcheck "... and its logs unpack" tar -tzf "$T/killed/logs.tar.gz" >/dev/null
  # Killed inside a stage (facts, whose PyTorch probe hangs here): the RUNNING row names it.
  local py
  py=$(command -v python3)
  mkdir -p "$T/hang"
  printf '#!/usr/bin/env bash
case "$*" in *"import torch"*) exec sleep 600 ;; esac
exec %s "$@"
' "$py" >"$T/hang/python3"
  chmod +x "$T/hang/python3"
  (env "${env[@]}" PATH="$T/hang:$T/path:$PATH" setsid -w timeout -s KILL 10 bash "$SCRIPT" run "$T/cut" \
    >"$T/cut.log" 2>&1; true) 2>/dev/null
  rcheck "killed inside facts: the summary says 'CUT in facts'" grep -q '^gpu-check: CUT in facts' "$T/cut/summary.txt"

  # 3. A missing payload: refused with the carry entry named.
  env "${env[@]}" GPU_CHECK_PREP="$T/none" bash "$SCRIPT" run "$T/nopayload" >"$T/nopayload.log" 2>&1
  rcheck "no payload: refused, naming carry .gpu-prep" grep -q 'refused to start.*carry: \[".gpu-prep"\]' "$T/nopayload/summary.txt"

  # 4. The plan: the stage order, within 480 s, and each stage's time in the run within its cap.
  local plan
  plan=$(bash "$SCRIPT" plan)
  rcheck "plan: the stages in order" [ "$(sed -nE 's/^([a-z]+) +\| +[0-9]+ .*/\1/p' <<<"$plan" | paste -sd' ' -)" = "${STAGES[*]}" ]
  rcheck "plan: ends within 480 s, sanitizer included ($(tail -1 <<<"$plan"))" \
    awk '/^ends by/ { exit !($3 <= 480) }' <<<"$plan"
  for name in "${STAGES[@]}"; do
    rcheck "stage $name took no longer than its cap (${CAP[$name]} s)" \
      awk -v s="$name" -v c="${CAP[$name]}" -F' *[|] *' '$1 == s { exit !($3 <= c) }' "$out/summary.txt"
  done
  echo
  if [ "$REH_FAILS" = 0 ]; then echo "gpu-check rehearse: PASS"; else echo "gpu-check rehearse: $REH_FAILS FAILED"; fi
  [ "$REH_FAILS" = 0 ]
}

check_number() {
  [[ $2 =~ ^[0-9]+$ ]] || die "$1 must be a whole number of seconds, not '$2'"
}

MODE=${1:-}
check_number GPU_CHECK_BUDGET "$BUDGET"
check_number GPU_CHECK_CAP_TEST "$CAP_TEST"
case $MODE in
  prepare) do_prepare ;;
  run)
    MODE=${MODE_LABEL:-run}
    do_run "${2:-}"
    ;;
  rehearse) do_rehearse "${2:-}" ;;
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
