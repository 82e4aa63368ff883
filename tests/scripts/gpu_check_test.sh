#!/usr/bin/env bash
# Tests scripts/gpu-check.sh without a GPU: a copy of the script runs in a scratch repository
# whose .gpu-prep payload holds fake test binaries and a fake mlpx, with fake nvidia-smi,
# compute-sanitizer and python3 (for `import torch` only) first on PATH, and `timeout` wrapped
# to log its arguments. Checks the stage order and caps, that only the GPU test binaries run and
# with which filters and environment (NCCL_SOCKET_IFNAME, MLPX_FASHION_MNIST_DIR, unbuffered
# Python), that a skipped GPU test fails the run, that OUTDIR is rewritten after every stage
# within a device call's limits (8 files, 16 MiB each), that a SIGKILL at each stage boundary
# and one inside a stage leave a summary, the refusal without a payload, record, and the plan.
# (`gpu-check.sh rehearse` runs the same path on the simulator's real binaries.)
#
#   bash tests/scripts/gpu_check_test.sh      # about 20 s; exit 0 when every check passes
set -uo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
T=$(mktemp -d /tmp/gpu-check-test.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$T"' EXIT
FAILS=0
ok() { printf 'ok   %s\n' "$1"; }
bad() {
  printf 'FAIL %s\n' "$1"
  FAILS=$((FAILS + 1))
}
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
STAGES="facts tests train speed sanitizer nccl bench"

# --- a scratch repository: the script, the recipe, a fake gpu-speed.py ----------------------------
R=$T/repo
mkdir -p "$R/scripts" "$R/docs" "$R/configs"
cp "$SRC/scripts/gpu-check.sh" "$R/scripts/"
cp "$SRC/configs/fashion-mnist.json" "$R/configs/"
cat >"$R/scripts/gpu-speed.py" <<'EOF'
import os, sys
with open(os.environ["CALLS"], "a") as f:
    f.write(f"gpu-speed {' '.join(sys.argv[1:])} PYTHONUNBUFFERED={os.environ.get('PYTHONUNBUFFERED', '')}"
            f" unbuffered={sys.stdout.write_through}"
            f" LD_LIBRARY_PATH={os.environ.get('LD_LIBRARY_PATH', '')}"
            f" MLPX_LD_LIBRARY_PATH={os.environ.get('MLPX_LD_LIBRARY_PATH', '')}\n")
print("row small  fp32      mlpx                100     0.500")
print("row small  fp32      torch eager         200     1.000")
EOF
CALLS=$T/calls.log # every fake appends a line here
export CALLS

# --- fake binaries of the payload --------------------------------------------------------------------
P=$T/payload
mkdir -p "$P/bin/tests" "$P/lib"
for name in mlpx_parity_tests mlpx_training_tests mlpx_cli_tests mlpx_core_tests mlpx_dist_tests mlpx_numerics_tests; do
  cat >"$P/bin/tests/$name" <<EOF
#!/usr/bin/env bash
echo "$name \$* NCCL_SOCKET_IFNAME=\${NCCL_SOCKET_IFNAME:-} MLPX_FASHION_MNIST_DIR=\${MLPX_FASHION_MNIST_DIR:-}" >>"\$CALLS"
case "\$*" in *--gtest_list_tests*) echo "Suite."; echo "  Test"; exit 0 ;; esac
[ "$name" = mlpx_parity_tests ] && echo "cuBLAS math for tf32: TF32 tensor cores, relative error 0.0003"
[ "$name" = mlpx_core_tests ] && [ -n "\${FAKE_BIG_LOG:-}" ] && head -c 5000000 /dev/urandom | base64
if [ "$name" = mlpx_parity_tests ] && [ -n "\${FAKE_SKIP:-}" ]; then
  echo "[  SKIPPED ] Tf32Parity.GemmIsWithinTf32ToleranceAndFp32IsExact (0 ms)"
  echo "[  SKIPPED ] 1 test, listed below:"
  echo "[  SKIPPED ] Tf32Parity.GemmIsWithinTf32ToleranceAndFp32IsExact"
fi
echo "[==========] 3 tests from 1 test suite ran. (1 ms total)"
echo "[  PASSED  ] 3 tests."
EOF
done
cat >"$P/bin/mlpx" <<'EOF'
#!/usr/bin/env bash
echo "mlpx $* NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-}" >>"$CALLS"
case $1 in
  --version) echo "mlpx (fake)" ;;
  train) echo "data: fashion-mnist (fake)"; echo "epoch 1  12345 samples/s"
         echo "test loss 0.3000 accuracy ${FAKE_ACCURACY:-0.8900} (10000 rows) in 1.0 s" ;;
  bench) echo '{"batch_size": 128, "samples_per_s": 1000}' ;;
esac
EOF
chmod +x "$P"/bin/tests/* "$P/bin/mlpx"
printf "SOURCE_DIR=%s\nBINARY_DIR=%s\nNVCC_VERSION='fake'\nCUDA_ARCHS='90'\nBUILT='then'\nCOMMIT='abc1234'\n" \
  "$R" "$T/no-such-build" >"$P/build.env"
mkdir -p "$R/.gpu-prep/fashion-mnist"
: >"$R/.gpu-prep/fashion-mnist/train-images-idx3-ubyte.gz"
tar -C "$P" -cJf "$R/.gpu-prep/payload.tar.xz" bin lib build.env

# --- fake tools on PATH ------------------------------------------------------------------------------
PB=$T/path
mkdir -p "$PB"
cat >"$PB/nvidia-smi" <<'EOF'
#!/usr/bin/env bash
case "$*" in
  -L) echo "GPU 0: Fake GPU 80GB (UUID: GPU-0)" ;;
  *query-gpu*) echo "999.99" ;;
  *) echo "fake nvidia-smi" ;;
esac
EOF
cat >"$PB/compute-sanitizer" <<'EOF'
#!/usr/bin/env bash
echo "compute-sanitizer $*" >>"$CALLS"
# The device's timeout, inside this stage: the run's whole session (timeout's group too).
[ -n "${FAKE_SAN_KILL:-}" ] && kill -KILL -- -"$(ps -o sid= -p $$ | tr -d ' ')" 0
echo "========= ERROR SUMMARY: 0 errors"
EOF
cat >"$PB/timeout" <<'EOF'
#!/usr/bin/env bash
echo "timeout $*" >>"$CALLS"
exec /usr/bin/timeout "$@"
EOF
REAL_PY=$(command -v python3)
cat >"$PB/python3" <<EOF
#!/usr/bin/env bash
case "\$*" in *"import torch"*) echo "torch (fake)"; exit 0 ;; esac
exec "$REAL_PY" "\$@"
EOF
chmod +x "$PB"/*
export PATH=$PB:$PATH
export GPU_CHECK_WORK=$T/work

calls() { cat "$CALLS" 2>/dev/null; }
stages() { sed -nE 's/^([a-z]+) +\| [A-Z]+ .*/\1/p' "$1/summary.txt" | paste -sd' ' -; }
result() { sed -nE "s/^$2 +\\| ([A-Z]+) .*/\\1/p" "$1/summary.txt"; }
no_timeout_zero() { ! calls | grep -qE '^timeout (-k [0-9]+ )?0+ '; }
# What a device call brings back: at most 8 plain files, each under 16 MiB, plain names.
within_limits() {
  [ "$(find "$1" -mindepth 1 | wc -l)" -le 8 ] && [ -z "$(find "$1" -type f -size +16383k)" ] &&
    [ -z "$(find "$1" -mindepth 1 \( -type d -o ! -regex '.*/[A-Za-z0-9._-]+' \))" ]
}
packed() { tar -tzf "$1/logs.tar.gz" | sed 's|^\./||' | paste -sd' ' -; }
run() { # run OUTDIR [VAR=VALUE ...]: a run in its own session (a SIGKILL of its group stays there)
  local out=$1
  shift
  (env "$@" setsid -w bash "$R/scripts/gpu-check.sh" run "$out" >"$out.log" 2>&1; rc=$?; exit $rc) 2>/dev/null
}

# --- 1. a whole run -----------------------------------------------------------------------------------
: >"$CALLS"
out=$T/out1
run "$out"
rc=$?
check "run exits 0 (got $rc; $out.log)" [ "$rc" = 0 ]
check "stages in order: $STAGES (got: $(stages "$out"))" [ "$(stages "$out")" = "$STAGES" ]
for s in $STAGES; do check "$s passed" [ "$(result "$out" "$s")" = PASS ]; done
check "OUTDIR within a device call's limits ($(ls "$out" | paste -sd' ' -))" within_limits "$out"
check "OUTDIR: summary.txt, report.md, logs.tar.gz" [ "$(ls "$out" | paste -sd' ' -)" = "logs.tar.gz report.md summary.txt" ]
p=$(packed "$out")
for f in facts.log mlpx_parity_tests.log train.log speed.log sanitizer-memcheck.log \
  sanitizer-racecheck.log nccl-nccl.log nccl-host.log bench.log; do
  check "logs.tar.gz holds $f" grep -qw "$f" <<<"$p"
done
check "the tests' build-tree path (build.env's BINARY_DIR) now leads to the payload's bin/" \
  [ "$(readlink "$T/no-such-build")" = "$T/work/payload/bin" ]
check "the CPU-only test binary never ran" bash -c "! grep -q '^mlpx_numerics_tests' '$CALLS'"
check "parity runs whole; others with the GPU filter" \
  bash -c "grep -q '^mlpx_parity_tests --gtest_filter=\\* ' '$CALLS' && grep -q '^mlpx_core_tests --gtest_filter=\\*Cuda\\*:\\*Gpu\\*:\\*Parity\\*:\\*Nccl\\*:-TwoDevices' '$CALLS' && grep -q '^mlpx_cli_tests --gtest_filter=GpuTrainCli' '$CALLS'"
check "GPU tests first: parity is the first binary run" \
  [ "$(calls | grep -E '^mlpx_[a-z]+_tests --gtest_filter' | head -1 | cut -d' ' -f1)" = mlpx_parity_tests ]
check "NCCL_SOCKET_IFNAME=lo for the dist tests and the nccl stage's runs" \
  bash -c "grep -q '^mlpx_dist_tests --gtest_filter.* NCCL_SOCKET_IFNAME=lo ' '$CALLS' && grep -q '^mlpx train .*nccl-nccl-config.json NCCL_SOCKET_IFNAME=lo' '$CALLS'"
check "the GPU CLI test gets MLPX_FASHION_MNIST_DIR, the payload's folder" \
  grep -q "^mlpx_cli_tests --gtest_filter.* MLPX_FASHION_MNIST_DIR=$R/.gpu-prep/fashion-mnist\$" "$CALLS"
check "gpu-speed.py runs unbuffered" grep -q '^gpu-speed .*PYTHONUNBUFFERED=1 unbuffered=True' "$CALLS"
check "gpu-speed.py (PyTorch) without the payload's libraries; mlpx gets them" \
  grep -qE "^gpu-speed .* LD_LIBRARY_PATH= MLPX_LD_LIBRARY_PATH=$T/work/payload/lib" "$CALLS"
check "the train stage's config is the default recipe on the payload's data, on cuda" \
  bash -c "tar -xzOf '$out/logs.tar.gz' ./train-config.json | python3 -c 'import json,sys; c=json.load(sys.stdin); sys.exit(not (c[\"device\"] == \"cuda\" and c[\"data\"][\"dir\"] == \"$R/.gpu-prep/fashion-mnist\" and c[\"train\"][\"epochs\"] == 15 and c[\"schedule\"][\"type\"] == \"step\"))'"
check "memcheck and racecheck over the parity binary; racecheck on mlpx's kernels only" \
  bash -c "[ \$(grep -c '^compute-sanitizer' '$CALLS') = 2 ] && grep -q '^compute-sanitizer --tool racecheck .*--kernel-name kns=mlpx .*mlpx_parity_tests' '$CALLS'"
check "each run's limit is within its stage's cap (train 60 s, memcheck 55 s; a second may have passed)" \
  bash -c "grep -qE '^timeout -k 5 (59|60) .*mlpx train --config .*/train-config.json' '$CALLS' && grep -qE '^timeout -k 5 (54|55) .*--tool memcheck' '$CALLS'"
check "the tf32 math is in the summary" grep -q 'tf32 GEMM: TF32 tensor cores' "$out/summary.txt"
check "report.md has the stage table and the speed rows" \
  bash -c "grep -q '^| bench | PASS |' '$out/report.md' && grep -q '^row small' '$out/report.md'"
check "no command got timeout 0" no_timeout_zero

# --- 2. record appends the report -----------------------------------------------------------------
GPU_CHECK_RESULTS=docs/gpu-results.md bash "$R/scripts/gpu-check.sh" record "$out" >/dev/null 2>&1
GPU_CHECK_RESULTS=docs/gpu-results.md bash "$R/scripts/gpu-check.sh" record "$out" >/dev/null 2>&1
check "record: a title once, two sections" \
  [ "$(grep -c '^# GPU results' "$R/docs/gpu-results.md")/$(grep -c '^## ' "$R/docs/gpu-results.md")" = 1/2 ]

# --- 3. verdicts ----------------------------------------------------------------------------------------
out=$T/skip
run "$out" FAKE_SKIP=1
rc=$?
check "a GPU test skipped on the device fails the tests stage and the run" \
  [ "$(result "$out" tests)/$rc" = FAIL/1 ]
check "... naming the binary and the count" grep -q 'SKIPPED on a device in: mlpx_parity_tests(1)' "$out/summary.txt"
out=$T/lowacc
run "$out" FAKE_ACCURACY=0.5000
check "train below 0.88 accuracy fails" [ "$(result "$out" train)" = FAIL ]

# --- 4. a big log: packed cut to its last 2 MiB, OUTDIR stays within limits ----------------------------
out=$T/big
run "$out" FAKE_BIG_LOG=1
check "a 6.7 MB log: OUTDIR within limits" within_limits "$out"
check "... that log is packed cut, and says so" \
  bash -c "tar -xzOf '$out/logs.tar.gz' ./mlpx_core_tests.log | head -1 | grep -q 'cut to its last 2 MiB'"

# --- 5. a SIGKILL at each stage boundary, and one inside a stage -------------------------------------
want=""
for s in $STAGES; do
  want="${want:+$want }$s"
  out=$T/kill-$s
  run "$out" GPU_CHECK_KILL_AFTER="$s"
  check "killed after $s: the summary has '$want', logs unpack, within limits" \
    bash -c "[ \"\$(sed -nE 's/^([a-z]+) +\\| [A-Z]+ .*/\\1/p' '$out/summary.txt' | paste -sd' ' -)\" = '$want' ] && tar -tzf '$out/logs.tar.gz' >/dev/null && [ -s '$out/report.md' ]"
  within_limits "$out" || bad "killed after $s: OUTDIR over the limits"
done
out=$T/cut
run "$out" FAKE_SAN_KILL=1
check "killed inside the sanitizer: summary says 'CUT in sanitizer', with the stages before" \
  bash -c "grep -q '^gpu-check: CUT in sanitizer' '$out/summary.txt' && grep -qE '^speed +\\| PASS' '$out/summary.txt'"
check "... and report.md says it too" grep -q 'gpu-check run CUT in sanitizer' "$out/report.md"

# --- 6. no payload: refused, naming the carry entry -----------------------------------------------------
mv "$R/.gpu-prep" "$T/hidden-prep"
out=$T/nopayload
run "$out"
rc=$?
check "no payload: exit 1, summary names carry .gpu-prep" \
  bash -c "[ $rc = 1 ] && grep -q 'refused to start.*carry: \[\".gpu-prep\"\]' '$out/summary.txt'"
mv "$T/hidden-prep" "$R/.gpu-prep"

# --- 7. a small budget: later stages skip, nothing gets timeout 0 -------------------------------------
: >"$CALLS"
out=$T/small
run "$out" GPU_CHECK_BUDGET=40
check "budget 40 s: no command got timeout 0" no_timeout_zero
check "budget 40 s: no run's limit goes past the budget less the reserve (25 s)" \
  bash -c "! grep -E '^timeout -k 5 [0-9]+ ' '$CALLS' | awk '\$4 > 25 { found = 1 } END { exit !found }'"
out=$T/tiny
run "$out" GPU_CHECK_BUDGET=30
check "budget 30 s: the stages that do not fit are skipped (got: $(grep -c '| SKIP ' "$out/summary.txt") skipped)" \
  grep -qE '^speed +\| SKIP +\| +0 \| out of the time budget' "$out/summary.txt"
out=$T/tiny2
run "$out" GPU_CHECK_BUDGET=20
rc=$?
check "budget 20 s: tests skipped, and the run fails (exit $rc): no verdict without the GPU tests" \
  bash -c "[ $rc = 1 ] && grep -qE '^tests +\| SKIP ' '$out/summary.txt' && grep -q '^gpu-check: FAIL' '$out/summary.txt'"

# --- 8. a rerun of some stages ----------------------------------------------------------------------
out=$T/rerun
run "$out" GPU_CHECK_STAGES="train nccl"
check "GPU_CHECK_STAGES='train nccl': facts, train, nccl only" [ "$(stages "$out")" = "facts train nccl" ]

# --- 9. plan ---------------------------------------------------------------------------------------------
plan=$(bash "$R/scripts/gpu-check.sh" plan)
check "plan lists the stages in order" \
  [ "$(sed -nE 's/^([a-z]+) +\| +[0-9]+ .*/\1/p' <<<"$plan" | paste -sd' ' -)" = "$STAGES" ]
check "plan ends within 480 s ($(tail -1 <<<"$plan"))" awk '/^ends by/ { exit !($3 <= 480) }' <<<"$plan"
check "plan: the sanitizer starts at 275 s with its 90 s" grep -qE '^sanitizer +\| +275 \| +90 \| +90 \|' <<<"$plan"
plan=$(bash "$R/scripts/gpu-check.sh" plan tests=10 train=20)
check "plan tests=10 train=20 moves speed to 55 s" grep -qE '^speed +\| +55 \|' <<<"$plan"
check "plan rejects a bad budget" bash -c "! GPU_CHECK_BUDGET=abc bash '$R/scripts/gpu-check.sh' plan 2>/dev/null"

echo
if [ "$FAILS" = 0 ]; then echo "gpu_check_test: PASS"; else echo "gpu_check_test: $FAILS FAILED"; fi
[ "$FAILS" = 0 ]
