#!/usr/bin/env bash
# Tests scripts/gpu-check.sh without a GPU: a copy of the script runs in a scratch repository
# whose .gpu-prep payload holds fake test, bench and CLI binaries, with fake nvidia-smi,
# compute-sanitizer, nvcc and cmake first on PATH, and `timeout` wrapped to log its arguments.
# Checks the stage order (train, bench and speed before the sanitizer), the sanitizer's total
# cap, that no command ever gets `timeout 0`, the GPU-only bench filter, the fallback build's
# LD_LIBRARY_PATH, the report in docs/gpu-results.md, and the plan mode.
#
#   bash tests/scripts/gpu_check_test.sh      # about 30 s; exit 0 when every check passes
set -uo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
T=$(mktemp -d /tmp/gpu-check-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
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

# --- a scratch repository with the script and a fake gpu-speed.py --------------------------------
R=$T/repo
mkdir -p "$R/scripts" "$R/docs"
cp "$SRC/scripts/gpu-check.sh" "$R/scripts/"
cat >"$R/scripts/gpu-speed.py" <<'EOF'
import sys
print("speed table: mlpx 1.00x PyTorch (fake)")
sys.exit(0)
EOF
CALLS=$T/calls.log # every fake tool appends a line here
export CALLS

# --- fake binaries of the payload ----------------------------------------------------------------
FB=$T/fakebin-tree
mkdir -p "$FB/tests" "$FB/bench"
for name in mlpx_core_tests mlpx_parity_tests; do
  cat >"$FB/tests/$name" <<EOF
#!/usr/bin/env bash
echo "$name \$*" >>"\$CALLS"
case "\$*" in *--gtest_list_tests*) echo "Suite."; echo "  Test"; exit 0 ;; esac
echo "[==========] 3 tests from 1 test suite ran. (1 ms total)"
echo "[  PASSED  ] 3 tests."
EOF
done
cat >"$FB/bench/mlpx_bench_gemm" <<'EOF'
#!/usr/bin/env bash
echo "mlpx_bench_gemm $*" >>"$CALLS"
EOF
cat >"$FB/mlpx" <<'EOF'
#!/usr/bin/env bash
echo "mlpx $*" >>"$CALLS"
echo "test loss 0.3000 accuracy 0.8900"
EOF
chmod +x "$FB"/tests/* "$FB"/bench/* "$FB/mlpx"

# The payload: bin/, lib/, a prefix with the folders the fallback build points at, build.env.
P=$T/payload
mkdir -p "$P/lib" "$P/prefix/usr/lib/x86_64-linux-gnu/openblas-pthread" "$P/prefix/usr/include"
cp -r "$FB" "$P/bin"
printf "SOURCE_DIR=%s\nBINARY_DIR=%s\nNVCC_VERSION='fake'\nCUDA_ARCHS='90'\nBUILT='then'\nCOMMIT='abc1234'\n" \
  "$R" "$T/no-such-build" >"$P/build.env"
mkdir -p "$R/.gpu-prep/fashion-mnist"
cp "$P/build.env" "$R/.gpu-prep/build.env"
: >"$R/.gpu-prep/fashion-mnist/train-images-idx3-ubyte.gz"
tar -C "$P" -czf "$R/.gpu-prep/payload.tar.gz" prefix bin lib build.env

# --- fake tools on PATH ----------------------------------------------------------------------------
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
sleep "${FAKE_SAN_SLEEP:-0}"
echo "========= ERROR SUMMARY: 0 errors"
EOF
cat >"$PB/timeout" <<'EOF'
#!/usr/bin/env bash
echo "timeout $*" >>"$CALLS"
exec /usr/bin/timeout "$@"
EOF
cat >"$PB/nvcc" <<'EOF'
#!/usr/bin/env bash
echo "Cuda compilation tools, release 13.0 (fake)"
EOF
# cmake: configure does nothing; --build DIR copies the fake binaries into DIR and logs the
# LD_LIBRARY_PATH it got (the test binaries run during a real build, to list their tests).
cat >"$PB/cmake" <<EOF
#!/usr/bin/env bash
echo "cmake \$* LD_LIBRARY_PATH=\${LD_LIBRARY_PATH:-}" >>"\$CALLS"
if [ "\$1" = --build ]; then mkdir -p "\$2" && cp -r "$FB"/. "\$2"/; fi
EOF
chmod +x "$PB"/*
export PATH=$PB:$PATH
export GPU_CHECK_WORK=$T/work GPU_CHECK_PACK=0

calls() { cat "$CALLS" 2>/dev/null; }
# The stage names of summary.txt, in order.
stages() { sed -nE 's/^([a-z]+) +\| (PASS|FAIL|SKIP|TIMEOUT) .*/\1/p' "$1/summary.txt" | paste -sd' ' -; }
result() { sed -nE "s/^$2 +\\| ([A-Z]+) .*/\\1/p" "$1/summary.txt"; }
no_timeout_zero() { ! calls | grep -qE '^timeout (-k [0-9]+ )?0+ '; }

# --- 1. a run: order, sanitizer cap, bench filter, report ---------------------------------------
: >"$CALLS"
out=$T/out1
GPU_CHECK_BUDGET=200 GPU_CHECK_SANITIZER_CAP=20 FAKE_SAN_SLEEP=4 \
  bash "$R/scripts/gpu-check.sh" run "$out" >"$T/run1.log" 2>&1
rc=$?
check "run exits 0 (got $rc; $T/run1.log)" [ "$rc" = 0 ]
order=$(stages "$out")
check "stage order is train, nccl, bench, speed before sanitizer (got: $order)" \
  [ "$order" = "facts libraries prebuilt tests train nccl bench speed sanitizer" ]
check "train, nccl and speed passed" \
  [ "$(result "$out" train) $(result "$out" nccl) $(result "$out" speed)" = "PASS PASS PASS" ]
check "the nccl stage ran mlpx with collectives nccl, then host" \
  [ "$(calls | grep -c '^mlpx train --config .*nccl-\(nccl\|host\)-config.json')" = 2 ]
# 5 sanitizer runs of 4 s each would take 20 s; the 20 s cap with 15 s needed per run admits 2.
nsan=$(calls | grep -c '^compute-sanitizer ')
check "the sanitizer's total cap stops it after 2 runs (ran $nsan)" [ "$nsan" = 2 ]
check "a sanitizer cut by its cap is TIMEOUT, not FAIL" [ "$(result "$out" sanitizer)" = TIMEOUT ]
calls_grep_bench() { calls | grep -q '^mlpx_bench_gemm --benchmark_filter=Gpu '; }
check "bench runs the GPU benchmarks only" calls_grep_bench
check "no command got timeout 0" no_timeout_zero
check "report.md in OUTDIR" [ -s "$out/report.md" ]
check "docs/gpu-results.md created with a title and the run's section" \
  grep -q '^# GPU results' "$R/docs/gpu-results.md"
check "the section names the GPU and the commit" \
  grep -q 'Fake GPU 80GB (driver 999.99).*' "$R/docs/gpu-results.md"
check "the section has the stage table" grep -q '^| speed | PASS |' "$R/docs/gpu-results.md"

# --- 2. record appends a report from elsewhere ---------------------------------------------------
bash "$R/scripts/gpu-check.sh" record "$out" >/dev/null 2>&1
n=$(grep -c '^## ' "$R/docs/gpu-results.md")
check "record appends a second section ($n sections)" [ "$n" = 2 ]
check "the title is written once" [ "$(grep -c '^# GPU results' "$R/docs/gpu-results.md")" = 1 ]

# --- 3. a budget too small for anything: stages skip, never timeout 0 -------------------------
: >"$CALLS"
out=$T/out3
GPU_CHECK_BUDGET=21 GPU_CHECK_RESULTS='' bash "$R/scripts/gpu-check.sh" run "$out" >"$T/run3.log" 2>&1
check "budget 21 s: no command got timeout 0" no_timeout_zero
# shellcheck disable=SC2016  # $CALLS expands in the inner shell (exported)
check "budget 21 s: no test binary ran" bash -c '! grep -q "^mlpx_core_tests --gtest_output" "$CALLS"'
check "budget 21 s: the run fails (tests not run)" bash -c "grep -q 'gpu-check: FAIL' '$out/summary.txt'"

# --- 4. the fallback build gets the prefix's and the payload's libraries -----------------------
: >"$CALLS"
out=$T/out4
GPU_CHECK_FORCE_BUILD=1 GPU_CHECK_BUDGET=200 GPU_CHECK_SANITIZER_CAP=0 GPU_CHECK_RESULTS='' \
  bash "$R/scripts/gpu-check.sh" run "$out" >"$T/run4.log" 2>&1
rc=$?
check "fallback build run exits 0 (got $rc; $T/run4.log)" [ "$rc" = 0 ]
build_ld=$(calls | sed -n 's/^cmake --build .* LD_LIBRARY_PATH=//p')
check "cmake --build gets LD_LIBRARY_PATH with OpenBLAS's folder (got: $build_ld)" \
  grep -q "$T/work/prefix/usr/lib/x86_64-linux-gnu/openblas-pthread" <<<"$build_ld"
check "... and the payload's lib/" grep -q "$T/work/lib" <<<"$build_ld"
check "sanitizer cap 0: sanitizer TIMEOUT, no run" \
  [ "$(result "$out" sanitizer)/$(calls | grep -c '^compute-sanitizer ')" = "TIMEOUT/0" ]
check "fallback: no command got timeout 0" no_timeout_zero

# --- 5. plan ---------------------------------------------------------------------------------------
plan=$(bash "$R/scripts/gpu-check.sh" plan)
porder=$(sed -nE 's/^([a-z]+) +\|.*/\1/p' <<<"$plan" | grep -v '^stage$' | paste -sd' ' -)
check "plan lists the run's order (got: $porder)" \
  [ "$porder" = "facts prebuilt tests train nccl bench speed sanitizer" ]
check "plan, worst case at the default budget: train and speed get their whole limit" \
  grep -qE '^train +\| +[0-9]+ \| +75 \| +75 \| +75 \| 75 s' <<<"$plan"
check "... speed too" grep -qE '^speed +\| +[0-9]+ \| +90 \| +90 \| +90 \| 90 s' <<<"$plan"
plan=$(GPU_CHECK_BUDGET=900 GPU_CHECK_SANITIZER_CAP=100 bash "$R/scripts/gpu-check.sh" plan)
check "plan: the sanitizer gets its cap, not the rest of a large budget" \
  grep -qE '^sanitizer +\| +[0-9]+ \| +120 \| +100 \| +100 \|' <<<"$plan"
check "plan rejects a bad budget" bash -c "! GPU_CHECK_BUDGET=abc bash '$R/scripts/gpu-check.sh' plan 2>/dev/null"

echo
if [ "$FAILS" = 0 ]; then echo "gpu_check_test: PASS"; else echo "gpu_check_test: $FAILS FAILED"; fi
[ "$FAILS" = 0 ]
