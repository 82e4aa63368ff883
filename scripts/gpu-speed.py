#!/usr/bin/env python3
"""GPU speed figures for mlpx (run on the GPU machine by scripts/gpu-check.sh, stage "speed").

First the device's ceilings, measured (METHOD.md): copy bandwidth (a large device-to-device
copy, bytes read + written) and the square GEMM rate of each precision, fp32 (TF32 off), tf32
and bf16 (torch.matmul on random data, warm-up, median of CUDA-event timings). Then training
throughput, in each precision, of

  small   784-256-128-10, batch 128     (model (a) of docs/benchmarks.md: launch-bound)
  medium  784-2048-2048-10, batch 1024  (model (b))
  xl      784-8192x4-10, batch 8192     (model (c): GEMM-bound)
  large   784-4096x4-10, batch 4096     (on request: --models)

first by `mlpx bench --json --device cuda` (Adam; precision fp32, tf32, bf16), then by PyTorch
eager (Adam(fused=True)) and PyTorch with the whole step captured in a CUDA graph: fp32 with
TF32 off, tf32 with TF32 on, bf16 under autocast. Each row is printed as soon as it is
measured ("row ..." lines), so a run cut short keeps them. The closing table compares like
with like: a row's ceiling is its own precision's (the larger of the GEMM time at that
precision's measured rate and Adam's 28 bytes per parameter at the measured copy bandwidth),
and its "/torch" is against the faster PyTorch row of the same model and precision.

Without PyTorch or a CUDA device for it (a rehearsal on the simulator), the ceilings and the
PyTorch rows are left out and said so; the mlpx rows still run.

Beside each mlpx row: what `mlpx bench` counted on the device (kernels per step, host waits per
step and per epoch), the measured microseconds per step (batch / samples per second), and the
H200 model's projected microseconds per step for the same model and precision as the simulator
counted it (bench/counters/after.jsonl, --projections): a model, printed apart from the
measurement so that docs/gpu-speed.md can say how far it was off.

With --fused-compare, each model in fp32 and bf16 also gets mlpx rows with train.fused "on"
and "off" (a model the fused kernels do not take fails its "on" row, said so): with
--models small,narrow128,narrow256 these are docs/gpu-speed.md's "up to what width does fusing
pay" figures (gpu-check.sh: GPU_CHECK_SPEED_ARGS="--models small,narrow128,narrow256
--fused-compare").

Usage: gpu-speed.py --mlpx PATH [--json OUT.json] [--budget SECONDS]
                    [--models small,medium,xl,large,narrow128,narrow256|tiny]
                    [--projections FILE.jsonl] [--fused-compare]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

MODELS = {
    "small": {"inputs": 784, "hidden": [256, 128], "classes": 10, "batch": 128, "samples": 60000},
    "medium": {"inputs": 784, "hidden": [2048] * 2, "classes": 10, "batch": 1024, "samples": 32768},
    "xl": {"inputs": 784, "hidden": [8192] * 4, "classes": 10, "batch": 8192, "samples": 32768},
    "large": {"inputs": 784, "hidden": [4096] * 4, "classes": 10, "batch": 4096, "samples": 32768},
    # Narrow MLPs for the fused kernels (train.fused; docs/gpu-speed.md, "Fused MLP").
    "narrow128": {"inputs": 784, "hidden": [128] * 4, "classes": 10, "batch": 1024,
                  "samples": 65536},
    "narrow256": {"inputs": 784, "hidden": [256] * 4, "classes": 10, "batch": 1024,
                  "samples": 65536},
    # For rehearsals on the simulator: seconds, not minutes.
    "tiny": {"inputs": 16, "hidden": [16], "classes": 4, "batch": 32, "samples": 256},
}
PRECISIONS = ("fp32", "tf32", "bf16")
# The models of docs/benchmarks.md's counters (scripts/bench-docs.sh counters).
COUNTED_AS = {"small": "a", "medium": "b", "xl": "c"}
# What the mlpx rows counted on the device (name, precision) -> bench row.
COUNTERS = {}


def say(text=""):
    print(text, flush=True)


def weight_params(m):
    dims = [m["inputs"]] + m["hidden"] + [m["classes"]]
    return sum(a * b for a, b in zip(dims[:-1], dims[1:])), sum(dims[1:])


def model_ceiling(m, precision, ceilings):
    """Samples/s the device could reach for model m in `precision`: its GEMMs (6 flops per
    weight per sample) at that precision's measured square-GEMM rate, or Adam's 28 bytes per
    parameter at the measured copy bandwidth, whichever takes longer. None without ceilings."""
    rate = ceilings.get(precision + "_TFLOPs")
    copy = ceilings.get("copy_GBps")
    if not rate or not copy:
        return None
    wp, bp = weight_params(m)
    gemm_s = 6 * wp * m["batch"] / (rate * 1e12)
    adam_s = 28 * (wp + bp) / (copy * 1e9)
    return m["batch"] / max(gemm_s, adam_s)


def table(models, ceilings, figures):
    """The closing rows: (model, precision, runner, samples/s, / own ceiling, / torch of the
    same precision). figures maps (model, precision, runner) to samples/s (None: failed)."""
    rows = []
    for (name, precision, runner), value in figures.items():
        ceiling = model_ceiling(models[name], precision, ceilings)
        torch_best = max([v for (n, p, r), v in figures.items()
                          if n == name and p == precision and r.startswith("torch") and v] or [0])
        rows.append((name, precision, runner, value,
                     value / ceiling if value and ceiling else None,
                     value / torch_best if value and torch_best else None))
    return rows


def fmt(v, spec):
    return format(v, spec) if v is not None else "-"


def cuda_time(torch, fn, warmup=3, reps=10):
    """Median milliseconds of fn() by CUDA events, after warm-up."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def measure_ceilings(torch, size=8192):
    out = {}
    n = 1 << 28  # 1 GiB of float32: far past L2
    src = torch.rand(n, device="cuda")
    dst = torch.empty_like(src)
    ms = cuda_time(torch, lambda: dst.copy_(src))
    out["copy_GBps"] = 2 * n * 4 / (ms * 1e-3) / 1e9
    del src, dst
    for name, dtype, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True),
                              ("bf16", torch.bfloat16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        # Several operand sets, rotated, so no run reads another's operands from L2.
        sets = [(torch.randn(size, size, device="cuda", dtype=dtype),
                 torch.randn(size, size, device="cuda", dtype=dtype)) for _ in range(3)]
        c = torch.empty(size, size, device="cuda", dtype=dtype)
        k = [0]

        def mm():
            a, b = sets[k[0] % 3]
            k[0] += 1
            torch.matmul(a, b, out=c)

        ms = cuda_time(torch, mm)
        out[name + "_TFLOPs"] = 2 * size ** 3 / (ms * 1e-3) / 1e12
        del sets, c
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.cuda.empty_cache()
    return out


def mlpx_bench(mlpx, m, precision, seconds, fused="auto"):
    cfg = {
        "device": "cuda",
        "precision": precision,
        "data": {"source": "synthetic", "validation_split": 0,
                 "synthetic": {"train_samples": m["samples"], "test_samples": 1,
                               "features": m["inputs"], "classes": m["classes"]}},
        "model": {"layers": [{"units": u, "activation": "relu"} for u in m["hidden"]] +
                  [{"units": m["classes"], "activation": "identity"}]},
        "train": {"batch_size": m["batch"], "fused": fused},
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cfg, f)
        path = f.name
    try:
        cmd = [mlpx, "bench", "--json", "--device", "cuda", "--config", path, "--batch-sizes",
               str(m["batch"]), "--target", "0", "--seconds", str(seconds)]
        env = dict(os.environ)
        if os.environ.get("MLPX_LD_LIBRARY_PATH"):  # the payload's libraries, for mlpx alone
            env["LD_LIBRARY_PATH"] = os.environ["MLPX_LD_LIBRARY_PATH"] + (
                ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 6 + 60,
                             env=env)
        if res.returncode != 0:
            say(f"mlpx bench ({precision}) failed: {res.stderr.strip()[-400:]}")
            return None
        rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
        if rows:
            COUNTERS[(m["name"], precision)] = rows[0]
        return rows[0]["samples_per_s"] if rows else None
    finally:
        os.unlink(path)


def torch_bench(torch, m, precision, graph, seconds):
    nn = torch.nn
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    dims = [m["inputs"]] + m["hidden"]
    layers = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(dims[-1], m["classes"]))
    model = nn.Sequential(*layers).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True, capturable=graph)
    loss_fn = nn.CrossEntropyLoss()
    bsz = m["batch"]
    x_all = torch.rand(m["samples"], m["inputs"], device="cuda")
    y_all = torch.randint(0, m["classes"], (m["samples"],), device="cuda")
    x = torch.empty(bsz, m["inputs"], device="cuda")
    y = torch.empty(bsz, dtype=torch.long, device="cuda")
    batches = m["samples"] // bsz
    order = torch.randperm(m["samples"], device="cuda")

    def step():
        opt.zero_grad(set_to_none=False)
        # Without autocast's cast cache inside a captured graph (PyTorch's advice for capture).
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16",
                            cache_enabled=not graph):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def load(i):  # the gather mlpx does on the device
        idx = order[(i % batches) * bsz:(i % batches + 1) * bsz]
        torch.index_select(x_all, 0, idx, out=x)
        torch.index_select(y_all, 0, idx, out=y)

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for i in range(3):
            load(i)
            step()
    torch.cuda.current_stream().wait_stream(s)
    run = step
    if graph:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            step()
        run = g.replay
    # Steps per timing: about `seconds` / 5 per sample of 5.
    t0 = time.perf_counter()
    for i in range(5):
        load(i)
        run()
    torch.cuda.synchronize()
    per = max((time.perf_counter() - t0) / 5, 1e-6)
    steps = max(5, int(seconds / 5 / per))
    times = []
    for _ in range(5):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for i in range(steps):
            load(i)
            run()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e-3 / steps)
    del model, opt, x_all, y_all
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.cuda.empty_cache()
    return bsz / statistics.median(times)


def load_torch():
    """torch when it sees a CUDA device, else (None, why)."""
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed"
    if not torch.cuda.is_available():
        return None, "PyTorch sees no CUDA device"
    return torch, ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlpx", required=True)
    ap.add_argument("--json", default="")
    ap.add_argument("--budget", type=float, default=80)
    ap.add_argument("--models", default="small,medium,xl")
    ap.add_argument("--projections", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "bench", "counters", "after.jsonl"))
    ap.add_argument("--repeats", type=int, default=1, help="mlpx bench runs per row (best kept)")
    ap.add_argument("--fused-compare", action="store_true",
                    help="mlpx rows with train.fused on and off (fp32 and bf16) besides auto")
    args = ap.parse_args()
    start = time.time()
    names = [n for n in args.models.split(",") if n]
    for n in names:
        if n not in MODELS:
            ap.error(f"expected models among {', '.join(MODELS)}, found '{n}'")
    models = {n: dict(MODELS[n], name=n) for n in names}
    projected = {}
    if os.path.exists(args.projections):
        for line in open(args.projections):
            if line.strip():
                r = json.loads(line)
                projected[(r["model"], r["precision"])] = r.get("projected_h200_us")
    left = lambda: args.budget - (time.time() - start)  # noqa: E731

    torch, why = load_torch()
    result = {"device": torch.cuda.get_device_name(0) if torch else None,
              "torch": torch.__version__ if torch else None, "ceilings": {}, "rows": []}
    if torch:
        result["ceilings"] = c = measure_ceilings(torch)
        say(f"device {result['device']}  torch {result['torch']}")
        say(f"ceilings: copy {c['copy_GBps']:.0f} GB/s; square GEMM {c['fp32_TFLOPs']:.1f} fp32, "
            f"{c['tf32_TFLOPs']:.1f} tf32, {c['bf16_TFLOPs']:.1f} bf16 TFLOP/s (measured)")
    else:
        say(f"ceilings and PyTorch rows: left out ({why})")
    items = len(models) * len(PRECISIONS) * (3 if torch else 1) + (
        len(models) * 4 if args.fused_compare else 0)
    # Each measurement's seconds: the budget over the rows, a third of it for start-up (a
    # process, a CUDA context, a graph capture) and the untimed warm-up.
    per_item = max(0.2 if "tiny" in models else 1.0, left() / max(items, 1) / 3)
    figures = {}
    say(f"\n{'':4}{'model':6} {'precision':9} {'runner':12} {'samples/s':>12} {'/ceiling':>9}")

    def row(name, precision, runner, value):
        figures[(name, precision, runner)] = value
        ceiling = model_ceiling(models[name], precision, result["ceilings"])
        say(f"row {name:6} {precision:9} {runner:12} {fmt(value, '12.0f'):>12} "
            f"{fmt(value / ceiling if value and ceiling else None, '9.3f'):>9}")

    # mlpx first: its rows are what this check is for.
    for name, m in models.items():
        for precision in PRECISIONS:
            if left() <= 0:
                break
            best = None
            for _ in range(max(1, args.repeats)):
                v = mlpx_bench(args.mlpx, m, precision, per_item)
                best = v if best is None or (v is not None and v > best) else best
            row(name, precision, "mlpx", best)
            # Fused against unfused, where the model fits the fused kernels (tf32 never does).
            if args.fused_compare and precision != "tf32":
                for fused in ("on", "off"):
                    if left() > 0:
                        row(name, precision, "mlpx fused " + fused,
                            mlpx_bench(args.mlpx, m, precision, per_item, fused))
    if torch:
        for name, m in models.items():
            for precision in PRECISIONS:
                for runner, graph in (("torch eager", False), ("torch graph", True)):
                    if left() <= 0:
                        break
                    try:
                        v = torch_bench(torch, m, precision, graph, per_item)
                    except Exception as e:  # report, keep going: the table is the point
                        say(f"{runner} ({name}, {precision}) failed: {e}")
                        v = None
                    row(name, precision, runner, v)

    say(f"\n{'model':6} {'precision':9} {'runner':12} {'samples/s':>12} {'/ceiling':>9} {'/torch':>7}")
    for name, precision, runner, value, to_ceiling, to_torch in table(models, result["ceilings"],
                                                                      figures):
        say(f"{name:6} {precision:9} {runner:12} {fmt(value, '12.0f'):>12} "
            f"{fmt(to_ceiling, '9.3f'):>9} {fmt(to_torch, '7.2f'):>7}")
        result["rows"].append({"model": name, "precision": precision, "runner": runner,
                               "samples_per_s": value, "of_ceiling": to_ceiling,
                               "of_torch": to_torch})
    say("\nmlpx per step: counted on this device, measured, and the H200 model (a projection from "
        "the simulator's counts, not a measurement)")
    say(f"{'model':6} {'precision':9} {'kernels':>7} {'waits/step':>10} {'waits/epoch':>11} "
        f"{'measured us':>11} {'model us':>9}")
    for name, m in models.items():
        for precision in PRECISIONS:
            r = COUNTERS.get((name, precision))
            if r is None:
                continue
            sps = r.get("samples_per_s")
            measured = m["batch"] / sps * 1e6 if sps else None
            model_us = projected.get((COUNTED_AS.get(name), precision))
            say(f"{name:6} {precision:9} {fmt(r.get('kernels_per_step'), 'd'):>7} "
                f"{fmt(r.get('host_syncs_per_step'), 'd'):>10} "
                f"{fmt(r.get('host_syncs_per_epoch'), 'd'):>11} {fmt(measured, '11.1f'):>11} "
                f"{fmt(model_us, '9.1f'):>9}")
            result["rows"].append({"model": name, "precision": precision, "runner": "mlpx counters",
                                   "kernels_per_step": r.get("kernels_per_step"),
                                   "host_syncs_per_step": r.get("host_syncs_per_step"),
                                   "host_syncs_per_epoch": r.get("host_syncs_per_epoch"),
                                   "measured_us_per_step": measured,
                                   "projected_h200_us": model_us, "projection": "model"})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    say(f"\ngpu-speed: {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
