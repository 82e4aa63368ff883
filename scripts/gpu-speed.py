#!/usr/bin/env python3
"""GPU speed figures for mlpx (run on the GPU machine by scripts/gpu-check.sh, stage "speed").

First the device's two ceilings, measured (METHOD.md): copy bandwidth (a large device-to-device
copy, bytes read + written) and GEMM rates in fp32, tf32 and bf16 (torch.matmul on random data,
warm-up, median of CUDA-event timings). Then training throughput for two models:

  small  784-256-128-10, batch 128   (launch-bound: graph replay and fusion matter)
  large  784-4096x4-10, batch 4096   (GEMM-bound: cuBLAS speed matters)

measured with `mlpx bench --json --device cuda` (Adam; fp32, and with bf16 GEMM inputs) and
with PyTorch eager (Adam(fused=True)) and PyTorch with the whole step captured in a CUDA graph.
Prints a table of samples/s, measured / ceiling (the larger of the GEMM time at the measured
fp32 rate and Adam's 28 bytes per parameter at the measured copy bandwidth) and measured /
PyTorch.
Also reads the Google Benchmark JSON files in --bench-dir for their GPU rows.

Usage: gpu-speed.py --mlpx PATH [--json OUT.json] [--budget SECONDS] [--bench-dir DIR]
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

MODELS = {
    "small": {"inputs": 784, "hidden": [256, 128], "classes": 10, "batch": 128, "samples": 60000},
    "large": {"inputs": 784, "hidden": [4096] * 4, "classes": 10, "batch": 4096, "samples": 32768},
}


def weight_params(m):
    dims = [m["inputs"]] + m["hidden"] + [m["classes"]]
    return sum(a * b for a, b in zip(dims[:-1], dims[1:])), sum(dims[1:])


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


def ceilings(torch):
    out = {}
    n = 1 << 28  # 1 GiB of float32: far past L2
    src = torch.rand(n, device="cuda")
    dst = torch.empty_like(src)
    ms = cuda_time(torch, lambda: dst.copy_(src))
    out["copy_GBps"] = 2 * n * 4 / (ms * 1e-3) / 1e9
    del src, dst
    size = 8192
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

        ms = cuda_time(torch, mm, warmup=3, reps=10)
        out[name + "_TFLOPs"] = 2 * size ** 3 / (ms * 1e-3) / 1e12
        del sets, c
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.cuda.empty_cache()
    return out


def mlpx_bench(mlpx, name, m, seconds, precision="fp32"):
    cfg = {
        "device": "cuda",
        "precision": precision,
        "data": {"source": "synthetic", "validation_split": 0,
                 "synthetic": {"train_samples": m["samples"], "test_samples": 1,
                               "features": m["inputs"], "classes": m["classes"]}},
        "model": {"layers": [{"units": u, "activation": "relu"} for u in m["hidden"]] +
                  [{"units": m["classes"], "activation": "identity"}]},
        "train": {"batch_size": m["batch"]},
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cfg, f)
        path = f.name
    try:
        cmd = [mlpx, "bench", "--json", "--device", "cuda", "--config", path, "--batch-sizes",
               str(m["batch"]), "--target", "0", "--seconds", str(seconds)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 6 + 60)
        if res.returncode != 0:
            print(f"mlpx bench ({name}, {precision}) failed: {res.stderr.strip()[-400:]}",
                  file=sys.stderr)
            return None
        rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
        return rows[0]["samples_per_s"] if rows else None
    finally:
        os.unlink(path)


def torch_bench(torch, m, graph, seconds):
    nn = torch.nn
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
    torch.cuda.empty_cache()
    return bsz / statistics.median(times)


def bench_json_rows(directory):
    rows = []
    for f in sorted(glob.glob(os.path.join(directory or "", "mlpx_bench_*.json"))):
        try:
            data = json.load(open(f))
        except (OSError, ValueError):
            continue
        for b in data.get("benchmarks", []):
            if "Gpu" in b.get("name", "") or "Cuda" in b.get("name", ""):
                rows.append((b["name"], b.get("real_time"), b.get("time_unit"),
                             b.get("bytes_per_second"), b.get("items_per_second")))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlpx", required=True)
    ap.add_argument("--json", default="")
    ap.add_argument("--budget", type=float, default=80)
    ap.add_argument("--bench-dir", default="")
    args = ap.parse_args()
    start = time.time()
    import torch  # imported here so that --help works without it

    if not torch.cuda.is_available():
        print("gpu-speed: no CUDA device for PyTorch", file=sys.stderr)
        return 1
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    result["ceilings"] = c = ceilings(torch)
    print(f"device {result['device']}  torch {result['torch']}")
    print(f"copy {c['copy_GBps']:.0f} GB/s  fp32 {c['fp32_TFLOPs']:.1f}  "
          f"tf32 {c['tf32_TFLOPs']:.1f}  bf16 {c['bf16_TFLOPs']:.1f} TFLOP/s (measured)")
    per_item = max(3.0, (args.budget - (time.time() - start)) / 15)
    result["models"] = {}
    print(f"\n{'model':6} {'runner':14} {'samples/s':>12} {'/ceiling':>9} {'/torch':>8}")
    for name, m in MODELS.items():
        wp, bp = weight_params(m)
        flops_per_sample = 6 * wp
        gemm_s = flops_per_sample * m["batch"] / (c["fp32_TFLOPs"] * 1e12)
        adam_s = 28 * (wp + bp) / (c["copy_GBps"] * 1e9)
        ceiling = m["batch"] / max(gemm_s, adam_s)
        figures = {}
        if time.time() - start < args.budget:
            figures["mlpx"] = mlpx_bench(args.mlpx, name, m, per_item)
        if time.time() - start < args.budget:  # bf16 GEMM inputs (its ceiling is fp32's here)
            figures["mlpx bf16"] = mlpx_bench(args.mlpx, name, m, per_item, "bf16")
        for label, graph in (("torch eager", False), ("torch graph", True)):
            if time.time() - start < args.budget:
                try:
                    figures[label] = torch_bench(torch, m, graph, per_item)
                except Exception as e:  # report, keep going: the table is the point
                    print(f"{label} ({name}) failed: {e}", file=sys.stderr)
                    figures[label] = None
        best_torch = max([v for k, v in figures.items() if k.startswith("torch") and v] or [0])
        for label, v in figures.items():
            if v is None:
                print(f"{name:6} {label:14} {'-':>12}")
                continue
            rel = f"{v / best_torch:8.2f}" if best_torch else f"{'-':>8}"
            print(f"{name:6} {label:14} {v:12.0f} {v / ceiling:9.3f} {rel}")
        result["models"][name] = {"ceiling_samples_per_s": ceiling, **figures}
    rows = bench_json_rows(args.bench_dir)
    if rows:
        print("\nGoogle Benchmark GPU rows (real time):")
        for n, t, unit, bps, ips in rows[:20]:
            extra = f"  {bps / 1e9:.0f} GB/s" if bps else ""
            print(f"  {n:60} {t:10.2f} {unit}{extra}")
        result["bench_rows"] = rows
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    print(f"\ngpu-speed: {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
