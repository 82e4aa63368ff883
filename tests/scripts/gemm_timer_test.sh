#!/usr/bin/env bash
# bench/gemm_timer.cpp preloaded into `mlpx bench` on the CPU: it times mlpx's sgemm calls (a
# whole number of training steps' worth: 8 per step of the default 3-layer model) and writes
# them at exit only when asked to. Usage: gemm_timer_test.sh MLPX_BINARY TIMER_LIBRARY
set -euo pipefail
mlpx=$1 timer=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

run_bench() {
  LD_PRELOAD="$timer" "$mlpx" bench --json --device cpu --target 0 --batch-sizes 32 --seconds 0.2 \
    --warmup 2 --max-seconds 0.001 > "$dir/bench.json"
}

MLPX_GEMM_TIMER_OUT="$dir/timer.json" run_bench
grep -q '"samples_per_s"' "$dir/bench.json" || { echo "FAIL: mlpx bench printed no row"; exit 1; }
/usr/bin/python3 - "$dir/timer.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
assert t["calls"] > 0 and t["calls"] % 8 == 0, f"calls: expected a positive multiple of 8, found {t}"
assert t["seconds"] > 0, f"seconds: expected > 0, found {t}"
PY

rm "$dir/timer.json"
run_bench  # without MLPX_GEMM_TIMER_OUT: nothing written
[ "$(ls "$dir")" = bench.json ] || { echo "FAIL: the timer wrote a file unasked"; ls "$dir"; exit 1; }
echo "gemm_timer: ok"
