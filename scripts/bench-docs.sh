#!/usr/bin/env bash
# Regenerates docs/benchmarks.md (CPU) or docs/gpu-benchmarks.md (DEVICE=cuda) from ONE run:
# bench/compare_torch.py (mlpx vs PyTorch, interleaved, in fp32 and in bf16), on the CPU
# bench/gemm_share.py (each side's step split into the sgemm time and its own work), the GEMM and
# training-step Google Benchmark suites (GEMM peaks and fraction) and an `mlpx bench` sweep, with
# the date, commit, machine, thread counts and the load average before and after; and a plot,
# docs/benchmarks.png (docs/gpu-benchmarks.png), of the samples/s and the fractions of the peaks.
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
#            BF16=1 (0 skips the bf16 comparison: PyTorch's CPU autocast without bf16 hardware
#            takes many seconds per full-batch step)
#
# The step counters (issue 30; docs/benchmarks.md, "The GPU step, counted"), a separate mode that
# needs no GPU: the simulator build's `mlpx bench --count-only` for the models (a) 784-256-128-10
# at batch 128, (b) 784-2048-2048-10 at 1024 and (c) 784-8192x4-10 at 8192, in fp32, tf32 and
# bf16. Each row is stored in bench/counters/LABEL.jsonl, and the section of docs/benchmarks.md
# between its markers is rebuilt from every label there (the CPU mode keeps that section):
#
#   BUILD_DIR=build-sim scripts/bench-docs.sh counters before   # on main, before a change
#   BUILD_DIR=build-sim scripts/bench-docs.sh counters after
#   scripts/bench-docs.sh counters-table                        # the section from the files only
#
# Variables: MODELS=a,b,c  PRECISIONS=fp32,tf32,bf16  COUNT_STEPS=2. The counting pass runs two
# steps (the first plainly, the second captured and replayed: the one counted) with the racecheck
# off and the cuBLAS stand-in's arithmetic off (MLPX_SIM_GEMM_ARITHMETIC=0: GEMM shapes, bytes
# and FLOPs stay, values do not; no count depends on values), so that (c)'s 8192 x 8192 GEMMs
# need not run on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = counters ] || [ "${1:-}" = counters-table ]; then
  MODE=$1
  LABEL=${2:-}
  BUILD_DIR=${BUILD_DIR:-build-sim}
  OUT=${OUT:-docs/benchmarks.md}
  PYTHON=${PYTHON:-python3}
  MODELS=${MODELS:-a,b,c}
  PRECISIONS=${PRECISIONS:-fp32,tf32,bf16}
  COUNT_STEPS=${COUNT_STEPS:-2}
  # train.fused of the counted runs: off keeps the rows comparable (the unfused step's kernels);
  # auto counts the fused narrow-MLP kernels where they fit ((a) on the simulator's device).
  FUSED=${FUSED:-off}
  mkdir -p bench/counters
  if [ "$MODE" = counters ]; then
    [ -n "$LABEL" ] || { echo "bench-docs: counters needs a label (before, after, ...)" >&2; exit 2; }
    [ -x "$BUILD_DIR/mlpx" ] ||
      { echo "bench-docs: $BUILD_DIR/mlpx is missing; build the simulator's CLI first" >&2; exit 1; }
    TMP=$(mktemp -d)
    trap 'rm -rf "$TMP"' EXIT
    COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    for model in ${MODELS//,/ }; do
      case $model in
        a) layers='[{"units":256,"activation":"relu"},{"units":128,"activation":"relu"}'; batch=128 ;;
        b) layers='[{"units":2048,"activation":"relu"},{"units":2048,"activation":"relu"}'; batch=1024 ;;
        c) layers='[{"units":8192,"activation":"relu"},{"units":8192,"activation":"relu"},{"units":8192,"activation":"relu"},{"units":8192,"activation":"relu"}'; batch=8192 ;;
        *) echo "bench-docs: unknown model $model (a, b or c)" >&2; exit 2 ;;
      esac
      for precision in ${PRECISIONS//,/ }; do
        cat > "$TMP/config.json" <<JSON
{"device": "cuda", "precision": "$precision",
 "model": {"layers": $layers, {"units": 10, "activation": "identity"}], "init": "he_normal"},
 "loss": "cross_entropy", "optimizer": {"type": "adam", "lr": 0.001},
 "train": {"batch_size": $batch, "fused": "$FUSED"}}
JSON
        echo "bench-docs: counting ($model) in $precision" >&2
        start=$(date +%s)
        MLPX_SIM_RACECHECK=0 MLPX_SIM_GEMM_ARITHMETIC=0 "$BUILD_DIR/mlpx" bench \
          --config "$TMP/config.json" --batch-sizes "$batch" --count-only --target 0 \
          --count-steps "$COUNT_STEPS" --json > "$TMP/row.json"
        seconds=$(( $(date +%s) - start ))
        "$PYTHON" - "$TMP/row.json" "bench/counters/$LABEL.jsonl" "$LABEL" "$model" "$COMMIT" \
          "$seconds" "$COUNT_STEPS" "$FUSED" <<'PY'
import json, sys
row_file, store, label, model, commit, seconds, steps, fused = sys.argv[1:]
row = json.loads(open(row_file).read().strip().splitlines()[-1])
row.update(label=label, model=model, commit=commit, sim_seconds=int(seconds),
           count_steps=int(steps), fused=fused)
try:
    kept = [json.loads(l) for l in open(store) if l.strip()]
except FileNotFoundError:
    kept = []
kept = [k for k in kept if (k["model"], k["precision"]) != (model, row["precision"])]
with open(store, "w") as f:
    for r in kept + [row]:
        f.write(json.dumps(r, sort_keys=True) + "\n")
PY
      done
    done
  fi
  "$PYTHON" - "$OUT" bench/counters <<'PY'
import glob, json, os, sys
out, folder = sys.argv[1:]
rows = {}
labels = []
for path in sorted(glob.glob(os.path.join(folder, "*.jsonl"))):
    label = os.path.basename(path)[:-len(".jsonl")]
    labels.append(label)
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            rows[(label, r["model"], r["precision"])] = r
# "before" first, "after" next, any other label after them.
labels.sort(key=lambda l: ({"before": 0, "after": 1}.get(l, 2), l))
shapes = {"a": "784-256-128-10, batch 128", "b": "784-2048-2048-10, batch 1024",
          "c": "784-8192x4-10, batch 8192"}
lines = ["<!-- counters:begin (scripts/bench-docs.sh counters LABEL; rebuilt from bench/counters/) -->",
         "",
         "Counted on the GPU simulator, one training step (Adam, cross-entropy, ReLU): kernel "
         "nodes of the captured step graph, host waits in that step and in the counting epoch "
         "(two steps, its shuffle and its read-back included), global-memory bytes of the step "
         "(kernels counted at each access; cuBLAS operands once), GEMM FLOPs, and the H200 "
         "**model**'s time for the step (not a measurement; src/tune/h200_model.cpp).",
         "",
         "| model | precision | label | commit | kernels/step | host waits/step | host waits/epoch "
         "| device MB/step | GEMM GFLOP/step | H200 model µs/step |",
         "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
for model in "abc":
    for precision in ("fp32", "tf32", "bf16"):
        for label in labels:
            r = rows.get((label, model, precision))
            if r is None:
                continue
            lines.append(
                f"| ({model}) {shapes[model]} | {precision} | {label} | {r['commit']} | "
                f"{r['kernels_per_step']} | {r['host_syncs_per_step']} | "
                f"{r['host_syncs_per_epoch']} | {r['device_bytes_per_step'] / 1e6:.1f} | "
                f"{r['gemm_flops_per_step'] / 1e9:.2f} | {r['projected_h200_us']:.0f} |")
lines += ["", "<!-- counters:end -->"]
block = "\n".join(lines)
text = open(out).read() if os.path.exists(out) else "# Benchmarks\n"
begin, end = text.find("<!-- counters:begin"), text.find("<!-- counters:end -->")
if begin >= 0 and end > begin:
    text = text[:begin] + block + text[end + len("<!-- counters:end -->"):]
else:
    text = text.rstrip("\n") + "\n\n## The GPU step, counted (simulator)\n\n" + block + "\n"
open(out, "w").write(text)
print(f"bench-docs: the counters' table in {out}", file=sys.stderr)
PY
  exit 0
fi

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
BF16=${BF16:-1}
MLPX=$BUILD_DIR/mlpx
PLOT=${OUT%.md}.png

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

echo "bench-docs: compare_torch.py (fp32)" >&2
CMP_ARGS=(--mlpx "$MLPX" --device "$DEVICE" --batch-sizes 1,32,128,1024,full --peaks
          --seconds "$SECONDS_PER")
[ "$DEVICE" = cuda ] && CMP_ARGS+=(--cuda-graph)
"$PYTHON" bench/compare_torch.py "${CMP_ARGS[@]}" --rounds "$ROUNDS" --json "$TMP/compare.json" \
  > "$TMP/compare.txt"
BF16_ROUNDS=$ROUNDS
if [ "$BF16" = 1 ]; then
  echo "bench-docs: compare_torch.py (bf16)" >&2
  # On the CPU one round, one warm-up and at least one timed step: PyTorch's autocast steps
  # take seconds each without bf16 hardware.
  BF16_ARGS=(--rounds "$ROUNDS")
  [ "$DEVICE" = cpu ] && BF16_ROUNDS=1 && BF16_ARGS=(--rounds 1 --warmup 1 --min-steps 1)
  "$PYTHON" bench/compare_torch.py "${CMP_ARGS[@]}" --precision bf16 "${BF16_ARGS[@]}" \
    --json "$TMP/compare-bf16.json" >> "$TMP/compare.txt"
fi

if [ "$DEVICE" = cpu ]; then
  # Where the CPU step's time goes: the sgemm calls both sides share against each one's own work.
  echo "bench-docs: gemm_share.py" >&2
  "$PYTHON" bench/gemm_share.py --mlpx "$MLPX" --timer "$BUILD_DIR/bench/libmlpx_gemm_timer.so" \
    --batch-sizes 32,128,1024,full --rounds "$ROUNDS" --seconds "$SECONDS_PER" \
    --json "$TMP/share.json" > /dev/null
fi

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

export DEVICE OUT PLOT BF16_ROUNDS TMP LOAD_BEFORE LOAD_AFTER WAITED=$waited WAIT_LOAD SWEEP_MAX_SECONDS ROUNDS SECONDS_PER
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
precisions = [("fp32", f"{tmp}/compare.json"), ("bf16", f"{tmp}/compare-bf16.json")]
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

suite = "Gpu" if gpu else "Cpu"
fp32_gemm = [b for b in gemm if b["name"].startswith(f"BM_Gemm{suite}/")]
bf16_gemm = [b for b in gemm if b["name"].startswith(f"BM_Gemm{suite}Bf16/")]

# GEMM shapes of the default model (784-256-128-10): achieved rate per batch, summed over the
# 9 calls of a step (forward, dx, dW of each layer), against the square reference.
square = max((b["FLOP/s"] for b in fp32_gemm if arg(b["name"], "op") == 3), default=float("nan"))
shape_rate = {}
for batch in (128, 1024, 54000):
    calls = [b for b in fp32_gemm
             if arg(b["name"], "op") in (0, 1, 2) and arg(b["name"], "batch") == batch]
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
  f"{env['ROUNDS']} interleaved round{'s' if env['ROUNDS'] != '1' else ''} of about {env['SECONDS_PER']} s of steps after a warm-up"
  + (f" ({env['BF16_ROUNDS']} round, one warm-up step and at least one timed step for bf16). "
     if len(compares) > 1 and env["BF16_ROUNDS"] != env["ROUNDS"] else ". ")
  + ("bf16: mlpx rounds the GEMM inputs to bfloat16 (fp32 accumulation, weights and optimizer); "
     "PyTorch runs its forward and loss under `torch.autocast(dtype=torch.bfloat16)`. "
     if len(compares) > 1 else "")
  + ("PyTorch: TF32 off, Adam fused where available; 'graph' = the step captured in a CUDA graph.\n"
     if gpu else
     "PyTorch runs at 1 thread and at all cores, and the better one counts (its fp32 GEMMs are "
     "Debian's OpenBLAS, whose own pool uses all cores whatever torch.set_num_threads says); "
     "mlpx runs at its default (OpenBLAS: all cores for GEMMs of 2^25 multiply-adds and more, "
     "one thread below).\n"))
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

# The limit: each precision's ceiling is the best square GEMM measured through either library,
# and each step's FLOP rate (its samples/s x the GEMM flops of a sample) a fraction of it.
mlpx_peak = {"fp32": (square, "cuBLAS" if gpu else "OpenBLAS sgemm")}
if bf16_gemm:
    best = max(bf16_gemm, key=lambda b: b["FLOP/s"])
    mlpx_peak["bf16"] = (best["FLOP/s"], best.get("label", ""))
ceiling, torch_peak = {}, {}
for name, c in compares:
    if c.get("torch_gemm_peak"):
        torch_peak[name] = c["torch_gemm_peak"]
    rates = [r for r in (mlpx_peak.get(name, (0,))[0], torch_peak.get(name, {}).get("flops_per_s", 0))
             if r == r and r > 0]
    if rates:
        ceiling[name] = max(rates)
limit_names = [name for name, _ in compares if name in ceiling]
if limit_names:
    w("## The limit, side by side\n")
    w("Each precision's ceiling is the best square GEMM (n = 1024 or 2048; 4096 or 8192 on a GPU) "
      "measured in this run through either library: mlpx's `gemm` (`mlpx_bench_gemm`) and "
      "PyTorch's `torch.matmul` (bfloat16 operands for bf16, as autocast gives `nn.Linear`).\n")
    w("| precision | mlpx square GEMM | mlpx engine | PyTorch square matmul | ceiling |")
    w("|---|---:|---|---:|---:|")
    for name in limit_names:
        rate, engine = mlpx_peak.get(name, (float("nan"), "not measured"))
        t = torch_peak.get(name)
        theirs = f"{t['flops_per_s'] / 1e9:.1f} GFLOP/s (n = {t['size']})" if t else "n/a"
        w(f"| {name} | {rate / 1e9:.1f} GFLOP/s | {engine} | {theirs} | "
          f"**{ceiling[name] / 1e9:.1f} GFLOP/s** |")
    flops = compare["gemm_flops_per_sample"]
    w("")
    w(f"The training steps above as FLOP rates: samples/s x {flops / 1e6:.3f} MFLOP, the GEMM "
      "flops of one sample (forward, weight and input gradients of every layer but the first "
      "layer's input gradient, which neither side computes), and that as a fraction of its "
      "precision's ceiling.\n")
    cols = ["batch"]
    for name in limit_names:
        cols += [f"mlpx {name} GFLOP/s", "of ceiling", f"PyTorch {name} GFLOP/s", "of ceiling"]
    w("| " + " | ".join(cols) + " |")
    w("|" + "|".join("---:" for _ in cols) + "|")
    fractions = []  # (batch, {series: fraction}, {series: samples/s}) for the plot
    for i, first in enumerate(compare["rows"]):
        cells = [first["label"] + (f" ({first['batch']})" if first["label"] == "full" else "")]
        frac, sps = {}, {}
        for name, c in compares:
            if name not in ceiling:
                continue
            r = c["rows"][i]
            for side in ("mlpx", "torch"):
                rate = r[side] * flops
                cells += [f"{rate / 1e9:.1f}", f"{rate / ceiling[name]:.2f}"]
                frac[f"{side} {name}"] = rate / ceiling[name]
                sps[f"{side} {name}"] = r[side]
        w("| " + " | ".join(cells) + " |")
        fractions.append((first["batch"], frac, sps))
    w("")
    plot = env["PLOT"]
    series = [f"{side} {name}" for name in limit_names for side in ("mlpx", "torch")]
    data = f"{tmp}/limit.dat"
    with open(data, "w") as f:
        for batch, frac, sps in fractions:
            f.write(f"{batch} " + " ".join(f"{sps[s]:.6g} {frac[s]:.6g}" for s in series) + "\n")
    titles = {"mlpx": "mlpx", "torch": "PyTorch"}
    def plots(column):  # a colour per precision; mlpx solid, PyTorch dashed
        return ", ".join(
            f"'{data}' using 1:{2 + 2 * k + column} with linespoints lw 2 "
            f"lc {1 + limit_names.index(s.split()[1])} dt {1 if s.startswith('mlpx') else 2} "
            f"title '{titles[s.split()[0]]} {s.split()[1]}'"
            for k, s in enumerate(series))
    script = f"""set terminal pngcairo size 1200,480 font 'sans,10' noenhanced
set output '{plot}'
set multiplot layout 1,2
set logscale x 2
set xlabel 'batch size'
set grid
set key top left
set logscale y 10
set ylabel 'training samples/s'
set title 'Samples/s (784-256-128-10, Adam)'
plot {plots(0)}
unset logscale y
set yrange [0:*]
set ylabel 'step GEMM FLOP/s / ceiling'
set title 'Step GEMM FLOP rate over its precision ceiling'
plot {plots(1)}
unset multiplot
"""
    import shutil, subprocess
    if shutil.which("gnuplot"):
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
        w(f"![samples/s and fraction of the ceiling per batch size]"
          f"({os.path.basename(plot)})\n")
    else:
        w("(No plot: gnuplot is not installed; `apt-get install gnuplot-nox` and rerun.)\n")

if os.path.exists(f"{tmp}/share.json"):
    share = json.load(open(f"{tmp}/share.json"))
    w("## Where the time goes\n")
    w("Both sides call the same OpenBLAS `sgemm` on the same shapes. `bench/gemm_share.py` "
      "preloads a library that times every such call (`bench/gemm_timer.cpp`) and splits one "
      "fp32 step into that GEMM time and each framework's own work around it (forward and "
      "backward elementwise ops, loss, Adam, the batch gather, dispatch), as medians of "
      f"{share['rounds']} interleaved rounds (separate from the table above). The GEMM "
      "columns differ where the calls do: PyTorch's OpenBLAS runs every GEMM on all cores "
      "(mlpx those under 2^25 multiply-adds on one), and for PyTorch's gradient products "
      "(beta 0) sgemm zeroes the output itself, where mlpx zeroes its outputs first, in its "
      "own time. From batch 1024 up the GEMMs "
      "are most of either step, so there the samples/s ratio is about (GEMM + PyTorch's "
      "own) / (GEMM + mlpx's own) and moves with the GEMM time, which the machine's load "
      "moves for both alike.\n")
    w("| batch | mlpx GEMM ms | mlpx own ms | PyTorch GEMM ms | PyTorch own ms | "
      "own: PyTorch / mlpx |")
    w("|---:|---:|---:|---:|---:|---:|")
    for r in share["rows"]:
        label = r["label"] + (f" ({r['batch']})" if r["label"] == "full" else "")
        w(f"| {label} | {r['mlpx_gemm_ms']:.2f} | {r['mlpx_own_ms']:.2f} | "
          f"{r['torch_gemm_ms']:.2f} | {r['torch_own_ms']:.2f} | "
          f"**{r['torch_own_ms'] / r['mlpx_own_ms']:.2f}** |")
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
  "its GEMM flops (2 B (3 sum(in*out) - 784 x the first layer's units): the first layer's input "
  "gradient is never computed) over its time:\n")
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

# Sections kept from the page as it is, by title: figures this script does not make (the fused
# MLP's kernel counts come from the simulator: tests/parity/fused_mlp_parity_test.cpp).
if os.path.exists(env["OUT"]):
    page = open(env["OUT"]).read()
    for title in ("## Fused MLP: kernels per step",):
        begin = page.find("\n" + title)
        if begin >= 0:
            end = page.find("\n## ", begin + 1)
            w(page[begin + 1:end if end >= 0 else len(page)].rstrip() + "\n")

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
/usr/bin/python3 bench/compare_torch.py --mlpx build/mlpx --batch-sizes 1,32,128,1024,full --peaks
/usr/bin/python3 bench/compare_torch.py --mlpx build/mlpx --precision bf16 --peaks   # autocast
/usr/bin/python3 bench/gemm_share.py --mlpx build/mlpx   # GEMM time vs each side's own work
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
# The counters' section (the counters mode's, from the simulator) stays as it was.
import os
previous = open(env["OUT"]).read() if os.path.exists(env["OUT"]) else ""
begin = previous.find("## The GPU step, counted (simulator)")
kept = previous[begin:] if begin >= 0 else ""
open(env["OUT"], "w").write("\n".join(out) + ("\n" + kept if kept else ""))
print(f"bench-docs: wrote {env['OUT']}")
EOF
cat "$TMP/compare.txt" >&2
