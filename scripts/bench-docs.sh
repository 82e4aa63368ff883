#!/usr/bin/env bash
# Regenerates docs/benchmarks.md (CPU) or docs/gpu-benchmarks.md (DEVICE=cuda) from ONE run:
# bench/compare_torch.py (mlpx vs PyTorch, interleaved), the GEMM and training-step
# Google Benchmark suites (GEMM fraction) and an `mlpx bench` sweep, with the date, commit,
# machine, thread counts and the load average before and after.
#
#   scripts/bench-docs.sh                     # CPU; build/ must hold mlpx and the bench suites
#   BUILD_DIR=build-bench scripts/bench-docs.sh
#   DEVICE=cuda scripts/bench-docs.sh         # on a GPU machine: docs/gpu-benchmarks.md
#
# (docs/gpu-results.md is scripts/gpu-check.sh's, which appends one report per run.)
#
# Variables: BUILD_DIR=build  DEVICE=cpu|cuda  OUT=(docs/benchmarks.md | docs/gpu-benchmarks.md)
#            WAIT_LOAD=1.5  WAIT_SECONDS=600 (wait for a 1-minute load average below WAIT_LOAD)
#            SECONDS_PER=2 (timed seconds per measurement)  ROUNDS=2
#            SWEEP_MAX_SECONDS=30 (time-to-target cap of the sweep)  PYTHON=/usr/bin/python3
#            SWEEP_BATCHES=1,8,32,128,512,2048,8192,full
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
DEVICE=${DEVICE:-cpu}
if [ "$DEVICE" = cuda ]; then OUT=${OUT:-docs/gpu-benchmarks.md}; else OUT=${OUT:-docs/benchmarks.md}; fi
WAIT_LOAD=${WAIT_LOAD:-1.5}
WAIT_SECONDS=${WAIT_SECONDS:-600}
SECONDS_PER=${SECONDS_PER:-2}
ROUNDS=${ROUNDS:-2}
SWEEP_MAX_SECONDS=${SWEEP_MAX_SECONDS:-30}
SWEEP_BATCHES=${SWEEP_BATCHES:-1,8,32,128,512,2048,8192,full}
PYTHON=${PYTHON:-/usr/bin/python3}
MLPX=$BUILD_DIR/mlpx

for f in "$MLPX" "$BUILD_DIR/bench/mlpx_bench_gemm" "$BUILD_DIR/bench/mlpx_bench_train_step"; do
  [ -x "$f" ] || { echo "bench-docs: $f is missing; build first (make build BUILD_DIR=$BUILD_DIR)" >&2; exit 1; }
done
"$PYTHON" -c 'import torch, numpy' 2>/dev/null ||
  { echo "bench-docs: PyTorch is missing; apt-get install -y python3-torch python3-numpy" >&2; exit 1; }

load1() { cut -d' ' -f1 /proc/loadavg; }
waited=0
while awk -v l="$(load1)" -v w="$WAIT_LOAD" 'BEGIN { exit !(l >= w) }' && [ "$waited" -lt "$WAIT_SECONDS" ]; do
  echo "bench-docs: 1-minute load $(load1) >= $WAIT_LOAD; waiting ($waited s of $WAIT_SECONDS)" >&2
  sleep 30
  waited=$((waited + 30))
done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "bench-docs: compare_torch.py" >&2
CMP_ARGS=(--mlpx "$MLPX" --device "$DEVICE" --batch-sizes 1,32,128,1024,full
          --seconds "$SECONDS_PER" --rounds "$ROUNDS" --json "$TMP/compare.json")
[ "$DEVICE" = cuda ] && CMP_ARGS+=(--cuda-graph)
"$PYTHON" bench/compare_torch.py "${CMP_ARGS[@]}" > "$TMP/compare.txt"

if [ "$DEVICE" = cuda ]; then SUITE=Gpu; else SUITE=Cpu; fi
echo "bench-docs: GEMM suite" >&2
"$BUILD_DIR/bench/mlpx_bench_gemm" --benchmark_filter="BM_Gemm$SUITE" --benchmark_min_time=0.2 \
  --benchmark_format=json > "$TMP/gemm.json" 2> /dev/null
echo "bench-docs: training-step suite" >&2
"$BUILD_DIR/bench/mlpx_bench_train_step" --benchmark_filter="BM_TrainStep$SUITE/width:(0|512)/" \
  --benchmark_format=json > "$TMP/step.json" 2> /dev/null
echo "bench-docs: mlpx bench sweep" >&2
"$MLPX" bench --device "$DEVICE" --json --max-seconds "$SWEEP_MAX_SECONDS" \
  --batch-sizes "$SWEEP_BATCHES" > "$TMP/sweep.jsonl"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

export DEVICE OUT TMP LOAD_BEFORE LOAD_AFTER WAITED=$waited WAIT_LOAD SWEEP_MAX_SECONDS ROUNDS SECONDS_PER
export COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git status --porcelain 2>/dev/null | grep -q . && echo ' (with uncommitted changes)' || true)"
export CPU_MODEL="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
export CORES="$(nproc)"
export OPENBLAS="$(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null || dpkg-query -W -f='${Version}' libopenblas0 2>/dev/null || echo unknown)"
export OPENBLAS_THREADS="${OPENBLAS_NUM_THREADS:-$(nproc) (OpenBLAS default: all cores)}"
export GPU="$(command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 || echo none)"

"$PYTHON" - <<'EOF'
import json, os, datetime

env = os.environ
tmp = env["TMP"]
gpu = env["DEVICE"] == "cuda"
# One group of columns per precision measured by compare_torch.py: (name, its JSON). Another
# precision is one more entry here, and its table columns follow.
precisions = [("fp32", f"{tmp}/compare.json")]
compares = [(name, json.load(open(path))) for name, path in precisions if os.path.exists(path)]
compare = compares[0][1]
gemm = [b for b in json.load(open(f"{tmp}/gemm.json"))["benchmarks"] if "error_occurred" not in b]
step = [b for b in json.load(open(f"{tmp}/step.json"))["benchmarks"] if "error_occurred" not in b]
sweep = [json.loads(l) for l in open(f"{tmp}/sweep.jsonl") if l.startswith("{")]

def arg(name, key):
    for part in name.split("/"):
        if part.startswith(key + ":"):
            return int(part.split(":")[1])
    return None

# GEMM shapes of the default model (784-256-128-10): achieved rate per batch, summed over the
# 9 calls of a step (forward, dx, dW of each layer), against the square reference.
square = max((b["FLOP/s"] for b in gemm if arg(b["name"], "op") == 3), default=float("nan"))
shape_rate = {}
for batch in (128, 1024, 54000):
    calls = [b for b in gemm if arg(b["name"], "op") in (0, 1, 2) and arg(b["name"], "batch") == batch]
    if calls:
        flops = sum(b["FLOP/s"] * b["real_time"] * 1e-6 for b in calls)  # real_time in us
        secs = sum(b["real_time"] * 1e-6 for b in calls)
        shape_rate[batch] = flops / secs

out = []
w = out.append
title = "GPU results" if gpu else "Benchmarks"
w(f"# {title}\n")
w("Generated by `scripts/bench-docs.sh` (do not edit by hand; rerun it). " +
  ("GPU figures: mlpx vs PyTorch eager (and CUDA graph) at batch 128.\n"
   if gpu else "CPU figures. GPU figures, where a GPU has run them: docs/gpu-benchmarks.md "
               "(this script with DEVICE=cuda) and docs/gpu-results.md (scripts/gpu-check.sh).\n"))
w("| | |\n|---|---|")
w(f"| date | {datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')} |")
w(f"| commit | {env['COMMIT']} |")
w(f"| machine | {env['CPU_MODEL']}, {env['CORES']} cores |")
if gpu:
    w(f"| GPU | {env['GPU']} |")
w(f"| OpenBLAS | {env['OPENBLAS']}, threads {env['OPENBLAS_THREADS']} |")
w(f"| PyTorch | {compare['torch']} (Debian python3-torch on the CPU) |")
w(f"| load average (1, 5, 15 min) | before {env['LOAD_BEFORE']}; after {env['LOAD_AFTER']} |")
quiet = float(env["LOAD_BEFORE"].split()[0]) < float(env["WAIT_LOAD"])
if not quiet:
    w(f"| note | the machine never got below a 1-minute load of {env['WAIT_LOAD']} "
      f"(waited {env['WAITED']} s): other work shared the cores, so absolute figures are low "
      "and noisy; the ratios come from interleaved runs |")
w("")

w("## mlpx vs PyTorch: training-step samples/s\n")
w(f"Model 784-256-128-10 (ReLU, He-normal, zero biases), cross-entropy, Adam(lr 1e-3), float32, "
  f"Fashion-MNIST's 54000 training rows, a fresh shuffle every epoch. Each figure is the best of "
  f"{env['ROUNDS']} interleaved rounds of about {env['SECONDS_PER']} s of steps after a warm-up. "
  + ("PyTorch: TF32 off, Adam fused where available; 'graph' = the step captured in a CUDA graph.\n"
     if gpu else
     "PyTorch runs at 1 thread and at all cores, and the better one counts; mlpx runs at its "
     "default (OpenBLAS: all cores for GEMMs of 2^25 multiply-adds and more, one thread below).\n"))
cols = ["batch"]
for name, _ in compares:
    cols += [f"mlpx {name} samples/s", f"PyTorch {name} samples/s",
             "PyTorch threads" if not gpu else "PyTorch Adam", f"mlpx / PyTorch {name}"]
    if gpu:
        cols += [f"PyTorch graph {name} samples/s", f"mlpx / graph {name}"]
w("| " + " | ".join(cols) + " |")
w("|" + "|".join("---:" for _ in cols) + "|")
for i, first in enumerate(compare["rows"]):
    label = first["label"] + (f" ({first['batch']})" if first["label"] == "full" else "")
    cells = [label]
    for _, c in compares:
        r = c["rows"][i]
        cells += [f"{r['mlpx']:.0f}", f"{r['torch']:.0f}",
                  str(r["torch_threads"]) if not gpu else "see compare_torch",
                  f"**{r['ratio']:.2f}**"]
        if gpu:
            cells += [f"{r['graph']:.0f}" if r.get("graph") else "n/a",
                      f"{r['ratio_graph']:.2f}" if r.get("ratio_graph") else "n/a"]
    w("| " + " | ".join(cells) + " |")
w("")

w("## GEMM fraction\n")
w(f"Device GEMM rate (square float32 GEMM through mlpx::gemm, best size): "
  f"**{square / 1e9:.1f} GFLOP/s**.\n")
w("The GEMMs of one training step of the default model (forward, dx, dW of each layer; "
  "`mlpx_bench_gemm`), timed alone:\n")
w("| batch | GEMM rate on the step's shapes | vs square GEMM |")
w("|---:|---:|---:|")
for batch, rate in shape_rate.items():
    w(f"| {batch} | {rate / 1e9:.1f} GFLOP/s | {rate / square:.2f} |")
w("")
w("The whole training step (`mlpx_bench_train_step`: forward, loss, backward, Adam) counted as "
  "its GEMM flops (6 B sum(in*out)) over its time:\n")
w("| model | batch | samples/s | step GEMM FLOP/s | vs square GEMM | vs the step's own GEMM shapes |")
w("|---|---:|---:|---:|---:|---:|")
for b in step:
    width, batch = arg(b["name"], "width"), arg(b["name"], "batch")
    model = "784-256-128-10" if width == 0 else f"784-{width}-{width}-10"
    own = (f"{b['gemm_flops_per_s'] / shape_rate[batch]:.2f}"
           if width == 0 and batch in shape_rate else "")
    w(f"| {model} | {batch} | {b['items_per_second']:.0f} | {b['gemm_flops_per_s'] / 1e9:.1f} G | "
      f"{b['gemm_flops_per_s'] / square:.2f} | {own} |")
w("")
w("The rates in these tables come from separate processes run minutes apart on a shared "
  "machine, so a fraction above 1 is measurement spread (the reference ran at a busier "
  "moment), not a step faster than its GEMMs: read the fractions as +-20%.")
w("")

w("## `mlpx bench`: GD vs mini-batch vs SGD\n")
w(f"The default sweep on the default model (time to 0.85 test accuracy capped at "
  f"{env['SWEEP_MAX_SECONDS']} s of training; the test set is evaluated every 13500 training "
  "samples and evaluation time is not counted).\n")
w("| batch | samples/s | updates/s | epoch s | time to 0.85 s |")
w("|---:|---:|---:|---:|---:|")
for r in sweep:
    ttt = f"{r['time_to_target_s']:.2f}" if r["reached"] else "not reached"
    w(f"| {r['batch_size']} | {r['samples_per_s']:.0f} | {r['updates_per_s']:.2f} | "
      f"{r['epoch_s']:.2f} | {ttt} |")
w("")

w("""## How to reproduce

```sh
apt-get install -y python3-torch python3-numpy gnuplot-nox   # PyTorch for the comparison
make build                                                    # or: cmake ... && ninja
scripts/bench-docs.sh                                         # or: make bench-docs
```

The pieces, one at a time:

```sh
build/mlpx bench                                   # the sweep (table); --json, --plot sweep.png
build/mlpx bench --batch-sizes 128,full --target 0 # throughput only
/usr/bin/python3 bench/compare_torch.py --mlpx build/mlpx --batch-sizes 1,32,128,1024,full
build/bench/mlpx_bench_gemm --benchmark_filter=BM_GemmCpu
build/bench/mlpx_bench_train_step --benchmark_filter=BM_TrainStepCpu
```

`mlpx bench` per batch size: a few untimed warm-up steps, then about `--seconds` (default 1) of
steps for samples/s and updates/s; the time of one whole epoch; and, from the same initial
weights, training until the test accuracy reaches `--target` (default 0.85; 0 skips it) or
`--max-seconds` (default 60) of training time pass. The test set is evaluated every
ceil(N/4) training samples (four times an epoch; after every step for batches of N/4 rows
or more), and evaluation time is not counted.
""")
open(env["OUT"], "w").write("\n".join(out))
print(f"bench-docs: wrote {env['OUT']}")
EOF
cat "$TMP/compare.txt" >&2
