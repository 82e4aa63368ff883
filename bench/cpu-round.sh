#!/usr/bin/env bash
# One round of CPU measurements for docs/benchmarks.md and docs/precision.md, as markdown:
# the machine (CPU model, its vector ISA from /proc/cpuinfo, oneDNN's own ISA line), then
#   1. mlpx vs PyTorch, default model 784-256-128-10, fp32, Adam, batch 1 to full;
#   2. 784-2048-2048-10 at batch 1024: mlpx fp32 and bf16, PyTorch fp32 and autocast bf16,
#      PyTorch's square matmul ceiling in each precision, the bf16 step against its bound;
#   3. OpenMP wait policy: mlpx bf16 with libgomp's spinning default vs passive (what the
#      tool sets), interleaved A/B/A/B, samples/s and CPU seconds per 1000 samples;
#   4. oneDNN primitives created against matmuls executed (ONEDNN_VERBOSE=2), where bf16 runs on
#      oneDNN;
#   5. bench/gemm_share.py at batch 1024 and full: sgemm time against each side's own work
#      (when the bench targets are built: build/bench/libmlpx_gemm_timer.so).
# Every table carries the load average before and after. About 5 minutes on 2 cores; run it on
# a quiet machine (nothing else compiling), from the repository root, after `make build`.
#
# Usage: [MLPX=build/mlpx] [OUT=cpu-round.md] [QUICK=1: shorter rounds] bench/cpu-round.sh
# The tables go to stdout and to $OUT; paste them into docs/benchmarks.md's section of the CPU
# family measured (one section per family: never mix two families in one table).
set -euo pipefail

MLPX=${MLPX:-build/mlpx}
OUT=${OUT:-cpu-round.md}
PY=${PY:-/usr/bin/python3}
SECONDS_PER=${SECONDS_PER:-1.5}
ROUNDS=${ROUNDS:-2}
[[ ${QUICK:-0} == 1 ]] && SECONDS_PER=0.7 && ROUNDS=1
[[ -x $MLPX ]] || { echo "error: expected the mlpx binary at $MLPX (make build), found none" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }

# ---- the machine ----------------------------------------------------------------------------
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
flags=$(grep -m1 '^flags' /proc/cpuinfo)
isa=""
for f in avx2 avx512f avx512_bf16 amx_bf16 amx_tile; do
  [[ " $flags " == *" $f "* ]] && isa+="${isa:+, }$f"
done
cores=$(nproc)
cat > "$work/bf16-small.json" <<'EOF'
{"data": {"source": "synthetic", "synthetic": {"train_samples": 256, "test_samples": 64, "features": 64, "classes": 4}},
 "model": {"layers": [{"units": 64, "activation": "relu"}, {"units": 4, "activation": "identity"}]},
 "precision": "bf16"}
EOF
onednn_isa=$(ONEDNN_VERBOSE=1 "$MLPX" bench --config "$work/bf16-small.json" --device cpu --target 0 \
  --batch-sizes 32 --seconds 0.05 --warmup 1 --max-seconds 0.001 2>&1 |
  grep -m1 'isa:' | sed 's/.*isa://' || true)
engine=$("$MLPX" bench --config "$work/bf16-small.json" --device cpu --target 0 --batch-sizes 32 \
  --seconds 0.05 --warmup 1 --max-seconds 0.001 2>&1 | grep -im1 'bf16' | sed 's/^ *//' || true)
{
  echo "## CPU round: ${cpu_model}"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
  echo "| commit | $(git rev-parse --short HEAD 2>/dev/null || echo unknown) |"
  echo "| CPU | ${cpu_model}, ${cores} cores |"
  echo "| ISA (/proc/cpuinfo) | ${isa:-baseline x86-64} |"
  echo "| oneDNN | ${onednn_isa:-no oneDNN line (no bf16 matmul created)} |"
  echo "| mlpx bf16 engine | ${engine:-unknown} |"
  echo "| OMP_WAIT_POLICY / OPENBLAS_NUM_THREADS | ${OMP_WAIT_POLICY:-unset (mlpx sets passive)} / ${OPENBLAS_NUM_THREADS:-unset (all cores)} |"
  echo
} | tee "$OUT"

# ---- 1. default model, fp32, every batch regime ---------------------------------------------
before=$(load)
"$PY" "$here/compare_torch.py" --mlpx "$MLPX" --batch-sizes 1,32,128,1024,full \
  --rounds "$ROUNDS" --seconds "$SECONDS_PER" --json "$work/fp32.json" > "$work/fp32.txt"
after=$(load)
{
  echo "### 784-256-128-10, fp32, Adam: mlpx vs PyTorch (best of $ROUNDS interleaved rounds; load $before -> $after)"
  echo
  grep '^|' "$work/fp32.txt"
  echo
} | tee -a "$OUT"

# ---- 2. 784-2048-2048-10 at batch 1024: fp32, bf16, and the bound ---------------------------
before=$(load)
for p in fp32 bf16; do
  "$PY" "$here/compare_torch.py" --mlpx "$MLPX" --layers 2048,2048,10 --batch-sizes 1024 \
    --precision $p --threads "$cores" --warmup 1 --min-steps 2 --seconds 2 --rounds "$ROUNDS" \
    --peaks --json "$work/wide-$p.json" > "$work/wide-$p.txt"
done
after=$(load)
"$PY" - "$work" "$before" "$after" <<'EOF' | tee -a "$OUT"
import json, sys, time
import numpy as np
work, before, after = sys.argv[1:4]
fp32 = json.load(open(f"{work}/wide-fp32.json"))
bf16 = json.load(open(f"{work}/wide-bf16.json"))
flops = bf16["gemm_flops_per_sample"]
# Copy bandwidth: the best of a few 256 MiB numpy copies (read + write bytes counted).
a = np.ones(64 << 20, dtype=np.float32); b = np.empty_like(a); best = 0.0
for _ in range(5):
    t = time.perf_counter(); np.copyto(b, a); t = time.perf_counter() - t
    best = max(best, 2 * a.nbytes / t)
params = 784 * 2048 + 2048 + 2048 * 2048 + 2048 + 2048 * 10 + 10
batch = 1024
# Adam reads p, g, m, v and writes p, m, v (28 B per parameter); the bf16 weight copy is 2 B more
# written by the optimizer where it keeps one.
opt_bytes = 28 * params
ceiling = bf16["torch_gemm_peak"]["flops_per_s"]
bound_s = flops * batch / ceiling + opt_bytes / best
m32, mb = fp32["rows"][0]["mlpx"], bf16["rows"][0]["mlpx"]
t32, tb = fp32["rows"][0]["torch"], bf16["rows"][0]["torch"]
step_b = batch / mb
print(f"### 784-2048-2048-10, batch 1024, Adam (load {before} -> {after})\n")
print("| | fp32 | bf16 | bf16 / fp32 |")
print("|---|---:|---:|---:|")
print(f"| mlpx samples/s | {m32:.0f} | {mb:.0f} | {mb / m32:.2f} |")
print(f"| PyTorch samples/s (bf16: autocast) | {t32:.0f} | {tb:.0f} | {tb / t32:.2f} |")
print(f"| mlpx / PyTorch | {m32 / t32:.2f} | {mb / tb:.2f} | |")
p32 = fp32["torch_gemm_peak"]["flops_per_s"]
print(f"| PyTorch square matmul ceiling | {p32 / 1e9:.0f} GFLOP/s | {ceiling / 1e9:.0f} GFLOP/s | {ceiling / p32:.2f} |")
print(f"| mlpx step GEMM rate, of the ceiling | {m32 * flops / 1e9:.0f} GFLOP/s, {m32 * flops / p32:.2f} | {mb * flops / 1e9:.0f} GFLOP/s, {mb * flops / ceiling:.2f} | |")
print()
print(f"bf16 step bound: {flops * batch / 1e9:.1f} GFLOP / {ceiling / 1e9:.0f} GFLOP/s + "
      f"{opt_bytes / 1e6:.0f} MB (Adam, 28 B/parameter) / {best / 1e9:.1f} GB/s copy bandwidth = "
      f"{bound_s * 1e3:.1f} ms; mlpx bf16 step {step_b * 1e3:.1f} ms = **{step_b / bound_s:.2f}x the bound**.\n")
EOF

# ---- 3. OpenMP wait policy A/B (bf16: oneDNN's OpenMP threads) ------------------------------
cat > "$work/wide-bf16.json" <<'EOF'
{"data": {"source": "fashion-mnist", "validation_split": 0.1},
 "model": {"layers": [{"units": 2048, "activation": "relu"}, {"units": 2048, "activation": "relu"},
                      {"units": 10, "activation": "identity"}], "init": "he_normal"},
 "loss": "cross_entropy", "optimizer": {"type": "adam", "lr": 0.001}, "precision": "bf16"}
EOF
{
  echo "### OpenMP wait policy, 784-2048-2048-10 bf16 batch 1024 (interleaved; CPU s = user + sys per 1000 samples)"
  echo
  echo "| run | policy | load (1 min) | samples/s | CPU s / 1000 samples |"
  echo "|---:|---|---:|---:|---:|"
} | tee -a "$OUT"
for run in 1 2 3; do
  for policy in spin passive; do
    if [[ $policy == spin ]]; then envs=(OMP_WAIT_POLICY=passive GOMP_SPINCOUNT=300000); else envs=(OMP_WAIT_POLICY=passive); fi
    l=$(cut -d' ' -f1 /proc/loadavg)
    /usr/bin/time -f '%U %S' -o "$work/time" env "${envs[@]}" "$MLPX" bench --json \
      --config "$work/wide-bf16.json" --device cpu --target 0 --batch-sizes 1024 --seconds 3 \
      --warmup 1 --max-seconds 0.001 > "$work/ab.json" 2>/dev/null
    "$PY" - "$work" "$run" "$policy" "$l" <<'EOF' | tee -a "$OUT"
import json, sys
work, run, policy, l = sys.argv[1:5]
row = [json.loads(x) for x in open(f"{work}/ab.json") if x.startswith("{")][0]
user, sys_ = map(float, open(f"{work}/time").read().split()[-2:])
# CPU time of the whole process (data loading included) per 1000 samples timed: a comparison
# between the two policies, not an absolute cost.
samples = row["samples_per_s"] * row.get("seconds", 3.0)
label = "libgomp default (spin 300000)" if policy == "spin" else "passive (mlpx's default)"
print(f"| {run} | {label} | {l} | {row['samples_per_s']:.0f} | {1000 * (user + sys_) / max(samples, 1):.3f} |")
EOF
  done
done
echo | tee -a "$OUT"

# ---- 4. oneDNN primitives per step ------------------------------------------------------------
# ONEDNN_VERBOSE=2 prints a `create` line per primitive created (cache hit or miss) and an `exec`
# line per call: with every shape's primitive kept, creates are the shapes, not the calls.
counts=$(ONEDNN_VERBOSE=2 "$MLPX" bench --config "$work/bf16-small.json" --device cpu --target 0 \
  --batch-sizes 32 --seconds 0.1 --warmup 2 --max-seconds 0.001 2>&1 |
  grep -oE '^onednn_verbose,(create:cache_miss|create:cache_hit|exec)' | sort | uniq -c | tr '\n' ' ' || true)
{
  echo "oneDNN calls of a bf16 run (64-64-4, batch 32, ONEDNN_VERBOSE=2): ${counts:-none (no oneDNN bf16 matmul on this CPU)}"
  echo
} | tee -a "$OUT"
# ---- 5. where a full-batch step's time goes (item: full batch >= 1.2x PyTorch) ---------------
TIMER=${TIMER:-$(dirname "$MLPX")/bench/libmlpx_gemm_timer.so}
if [[ -f $TIMER ]]; then
  before=$(load)
  "$PY" "$here/gemm_share.py" --mlpx "$MLPX" --timer "$TIMER" --batch-sizes 1024,full \
    --rounds "$ROUNDS" --seconds "$SECONDS_PER" > "$work/share.txt" 2>/dev/null || true
  after=$(load)
  {
    echo "### 784-256-128-10 fp32: sgemm time and each side's own work per step (bench/gemm_share.py; load $before -> $after)"
    echo
    grep '^|' "$work/share.txt" || echo "(gemm_share.py gave no table)"
    echo
  } | tee -a "$OUT"
else
  echo "(skipped bench/gemm_share.py: no $TIMER; build the bench targets)" | tee -a "$OUT"
fi
echo "written: $OUT" >&2
