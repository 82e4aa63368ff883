#!/usr/bin/python3
"""mlpx against PyTorch: training-step samples/s of the same MLP, same run, same machine.

For each batch size this runs `mlpx bench --json --target 0` and the identical PyTorch
training loop one after the other (interleaved, for --rounds rounds, best of each kept) and
prints mlpx samples/s, PyTorch samples/s and the ratio mlpx / PyTorch.

The PyTorch side mirrors what one mlpx step does: a shuffled batch gathered from the
training rows (a new permutation every epoch; full-batch GD takes the whole set as it lies, as
mlpx does), nn.Linear layers with ReLU, He-normal
weights (kaiming_normal_, fan_in) and zero biases, cross-entropy on logits, Adam(lr 1e-3),
float32. On the CPU PyTorch runs at 1 thread and at all cores and the better one counts
(per batch size); mlpx runs at its default (OpenBLAS's thread count). On a GPU, TF32 is off,
Adam is fused where this PyTorch has it, and with --cuda-graph the whole step is also
captured into a CUDA graph and replayed.

--layers sets the model (default 256,128,10: 784-256-128-10). --precision bf16 runs mlpx with
"precision": "bf16" (GEMM inputs rounded to bfloat16, fp32 accumulation) and PyTorch's forward
and loss under torch.autocast(dtype=torch.bfloat16), its mixed precision. --peaks also measures
PyTorch's square matmul in that precision (the best of a few sizes and thread counts), a
ceiling for the step's FLOP rate; the JSON carries it and the step's GEMM flops per sample.

On Debian's CPU PyTorch, torch.set_num_threads does not reach the OpenBLAS that runs its fp32
GEMMs (OpenBLAS keeps its own pool of all cores): "1 thread" limits PyTorch's own loops and
oneDNN, not those GEMMs.

Usage: bench/compare_torch.py [--mlpx build/mlpx] [--device cpu|cuda]
                              [--batch-sizes 1,32,128,1024,full] [--layers 256,128,10]
                              [--precision fp32|bf16] [--peaks] [--markdown FILE] [--json FILE]
"""

import argparse
import contextlib
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LAYERS = [256, 128, 10]  # the default model, 784-256-128-10
DATA_DIR = "/usr/share/datasets/fashion-mnist"
TRAIN_ROWS = 54000  # mlpx holds out 10% of the 60000 training rows for validation


def read_idx(path):
    """An IDX file (gzip) as a numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_train(data_dir):
    """The training rows as float32 [N, 784] in [0, 1] and int64 labels [N]."""
    x_path = os.path.join(data_dir, "train-images-idx3-ubyte.gz")
    y_path = os.path.join(data_dir, "train-labels-idx1-ubyte.gz")
    if not os.path.exists(x_path):
        sys.exit(f"compare_torch: {x_path} not found; install Debian's dataset-fashion-mnist")
    x = read_idx(x_path).reshape(-1, 784).astype(np.float32) / 255.0
    y = read_idx(y_path).astype(np.int64)
    rng = np.random.default_rng(0)
    keep = rng.permutation(len(x))[:TRAIN_ROWS]
    return torch.from_numpy(x[keep].copy()), torch.from_numpy(y[keep].copy())


def make_model(device, sizes=LAYERS):
    layers, fan_in = [], 784
    for i, units in enumerate(sizes):
        linear = nn.Linear(fan_in, units)
        nn.init.kaiming_normal_(linear.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i + 1 < len(sizes):
            layers.append(nn.ReLU())
        fan_in = units
    return nn.Sequential(*layers).to(device)


def make_adam(model, device):
    """Adam(lr 1e-3); fused on CUDA when this PyTorch has it. Returns (optimizer, kind)."""
    if device.type == "cuda":
        try:
            return torch.optim.Adam(model.parameters(), lr=1e-3, fused=True), "fused"
        except (TypeError, RuntimeError):
            try:
                return torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True), "foreach"
            except TypeError:
                pass
    return torch.optim.Adam(model.parameters(), lr=1e-3), "default"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def autocast(device, precision):
    """PyTorch's mixed precision for `precision`: autocast to bfloat16, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def torch_eager(x, y, batch, seconds, warmup, device, sizes=LAYERS, precision="fp32",
                min_steps=5):
    """Samples/s of eager training steps at `batch` (about `seconds` of timed steps)."""
    torch.manual_seed(0)
    model = make_model(device, sizes)
    opt, _ = make_adam(model, device)
    n = x.shape[0]
    state = {"perm": None, "pos": n}

    def step():
        if batch >= n:  # full-batch GD: the whole set as it lies, as mlpx reads it
            xb, yb = x, y
        else:
            if state["pos"] + batch > n:  # a new epoch: a new shuffle
                state["perm"] = torch.randperm(n, device=device)
                state["pos"] = 0
            idx = state["perm"][state["pos"] : state["pos"] + batch]
            state["pos"] += batch
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        with autocast(device, precision):
            loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return time_steps(step, batch, seconds, warmup, device, min_steps)


def torch_graph(x, y, batch, seconds, warmup, device, sizes=LAYERS, precision="fp32"):
    """Samples/s of the same step captured once into a CUDA graph and replayed."""
    torch.manual_seed(0)
    model = make_model(device, sizes)
    try:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True)
    except TypeError:
        return None
    n = x.shape[0]
    whole = batch >= n  # full-batch GD reads the set as it lies (see torch_eager)
    idx = torch.zeros(batch, dtype=torch.int64, device=device)

    def body():
        xb, yb = (x, y) if whole else (x.index_select(0, idx), y.index_select(0, idx))
        with autocast(device, precision):
            loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=False)
            body()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=False)
    with torch.cuda.graph(graph):
        body()
    state = {"perm": None, "pos": n}

    def step():
        if not whole:
            if state["pos"] + batch > n:
                state["perm"] = torch.randperm(n, device=device)
                state["pos"] = 0
            idx.copy_(state["perm"][state["pos"] : state["pos"] + batch])
            state["pos"] += batch
        graph.replay()

    return time_steps(step, batch, seconds, warmup, device)


def time_steps(step, batch, seconds, warmup, device, min_steps=5):
    """Warm-up steps, a calibration, then about `seconds` of timed steps (at least
    `min_steps`): samples/s."""
    sync(device)
    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync(device)
    per_step = max((time.perf_counter() - t0) / max(warmup, 1), 1e-7)
    steps = int(min(max(seconds / per_step, min_steps), 1 << 22))
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * batch / (time.perf_counter() - t0)


def gemm_flops_per_sample(sizes):
    """Multiply-adds x 2 of one training step's GEMMs per sample: forward, weight gradient and
    input gradient of every layer but the first, whose input gradient neither side computes."""
    widths = [784] + list(sizes)
    macs = sum(3 * i * o for i, o in zip(widths, widths[1:])) - widths[0] * widths[1]
    return 2 * macs


def torch_gemm_peak(device, precision, thread_counts, seconds=1.0):
    """PyTorch's best square matmul rate in `precision` (bfloat16 operands for bf16, as
    autocast hands nn.Linear): (FLOP/s, size, threads). The sizes are mlpx_bench_gemm's square
    ones: 1024 and 2048 on the CPU, 4096 and 8192 on a GPU."""
    sizes = (4096, 8192) if device.type == "cuda" else (1024, 2048)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    best = (0.0, None, None)
    for t in thread_counts:
        if device.type == "cpu":
            torch.set_num_threads(t)
        for n in sizes:
            a = torch.randn(n, n, device=device).to(dtype)
            b = torch.randn(n, n, device=device).to(dtype)
            torch.matmul(a, b)  # warm-up (and oneDNN's primitive creation)
            sync(device)
            calls, t0 = 0, time.perf_counter()
            while calls < 2 or time.perf_counter() - t0 < seconds:
                torch.matmul(a, b)
                sync(device)
                calls += 1
            rate = 2.0 * n ** 3 * calls / (time.perf_counter() - t0)
            if rate > best[0]:
                best = (rate, n, t)
    return best


def mlpx_config(sizes, precision):
    """A config file for a model or precision other than the recipe's (None: the recipe), with
    what the PyTorch side trains: Fashion-MNIST, ReLU, He-normal, cross-entropy, Adam(1e-3)."""
    if list(sizes) == LAYERS and precision == "fp32":
        return None
    layers = [{"units": u, "activation": "relu"} for u in sizes[:-1]]
    layers.append({"units": sizes[-1], "activation": "identity"})
    config = {"data": {"source": "fashion-mnist", "validation_split": 0.1},
              "model": {"layers": layers, "init": "he_normal"}, "loss": "cross_entropy",
              "optimizer": {"type": "adam", "lr": 0.001}, "precision": precision}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
        return f.name


def run_mlpx(binary, batch, device, seconds, warmup, config=None):
    """mlpx bench's samples/s at one batch size (a fresh process, like a user's run)."""
    cmd = [binary, "bench", "--json", "--target", "0", "--batch-sizes", str(batch),
           "--device", device, "--seconds", str(seconds), "--warmup", str(warmup),
           "--max-seconds", "0.001"]  # epoch_s extrapolated: no extra epoch run
    if config:
        cmd += ["--config", config]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return rows[0]


def report(lines, markdown_path, json_path, measurements):
    """Prints the table (its lines), and writes it as markdown and the measurements as JSON
    where those paths are given."""
    text = "\n".join(lines)
    print(text)
    if markdown_path:
        with open(markdown_path, "w") as f:
            f.write(text + "\n")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(measurements, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlpx", default="build/mlpx", help="the mlpx binary")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-sizes", default="1,32,128,1024,full")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="timed seconds per measurement (after warm-up)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--min-steps", type=int, default=5,
                        help="timed PyTorch steps at least (1 for slow steps, e.g. CPU bf16)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds; the best of each side counts")
    parser.add_argument("--threads", default="best", help="best (of 1 and all cores) or N")
    parser.add_argument("--cuda-graph", action="store_true",
                        help="also time the PyTorch step captured in a CUDA graph")
    parser.add_argument("--layers", default=",".join(str(u) for u in LAYERS),
                        help="units per layer after the 784 inputs, the last one the classes")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--peaks", action="store_true",
                        help="also measure PyTorch's square matmul rate in this precision")
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--markdown", help="also write the table as markdown here")
    parser.add_argument("--json", help="also write the measurements as JSON here")
    args = parser.parse_args()

    if not os.access(args.mlpx, os.X_OK):
        sys.exit(f"compare_torch: {args.mlpx} is not an executable; build mlpx first "
                 "(make build) or pass --mlpx PATH")
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    x, y = load_train(args.data_dir)
    x, y = x.to(device), y.to(device)
    n = x.shape[0]
    batches = [n if s.strip() == "full" else int(s) for s in args.batch_sizes.split(",")]
    cores = os.cpu_count() or 1
    if args.threads == "best":
        thread_counts = sorted({1, cores}) if device.type == "cpu" else [torch.get_num_threads()]
    else:
        thread_counts = [int(args.threads)]
    sizes = [int(u) for u in args.layers.split(",")]
    config = mlpx_config(sizes, args.precision)
    _, adam_kind = make_adam(make_model(device, sizes), device)

    results = []
    for b in batches:
        best = {"mlpx": 0.0, "torch": 0.0, "torch_threads": None, "graph": None}
        for _ in range(args.rounds):
            label = "full" if b == n else str(b)
            row = run_mlpx(args.mlpx, "full" if b == n else b, args.device, args.seconds,
                           args.warmup, config)
            best["mlpx"] = max(best["mlpx"], row["samples_per_s"])
            for t in thread_counts:
                torch.set_num_threads(t)
                s = torch_eager(x, y, b, args.seconds, args.warmup, device, sizes, args.precision,
                                args.min_steps)
                if s > best["torch"]:
                    best["torch"], best["torch_threads"] = s, t
            if args.cuda_graph and device.type == "cuda":
                g = torch_graph(x, y, b, args.seconds, args.warmup, device, sizes, args.precision)
                if g is not None:
                    best["graph"] = max(best["graph"] or 0.0, g)
            print(f"  batch {label}: mlpx {row['samples_per_s']:.0f}, torch best so far "
                  f"{best['torch']:.0f} samples/s", file=sys.stderr, flush=True)
        best["batch"] = b
        best["label"] = "full" if b == n else str(b)
        best["ratio"] = best["mlpx"] / best["torch"]
        if best["graph"]:
            best["ratio_graph"] = best["mlpx"] / best["graph"]
        results.append(best)

    model_name = "-".join(["784"] + [str(u) for u in sizes])
    arithmetic = ("float32" if args.precision == "fp32" else
                  "bf16 GEMM inputs (mlpx) / autocast bfloat16 (PyTorch)")
    header = (f"mlpx vs PyTorch {torch.__version__} on {args.device}: samples/s of training steps "
              f"({model_name}, Adam, {arithmetic}, {n} training rows; best of {args.rounds} "
              f"interleaved rounds of ~{args.seconds:g} s each)")
    lines = [header, ""]
    cols = ["batch", "mlpx samples/s", "PyTorch samples/s", "PyTorch threads", "mlpx / PyTorch"]
    if device.type == "cuda":
        cols[3] = "PyTorch Adam"
        if args.cuda_graph:
            cols += ["PyTorch graph samples/s", "mlpx / graph"]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---:" for _ in cols) + "|")
    for r in results:
        cells = [r["label"] + (f" ({r['batch']})" if r["label"] == "full" else ""),
                 f"{r['mlpx']:.0f}", f"{r['torch']:.0f}",
                 str(r["torch_threads"]) if device.type == "cpu" else adam_kind,
                 f"{r['ratio']:.2f}"]
        if device.type == "cuda" and args.cuda_graph:
            cells += [f"{r['graph']:.0f}" if r["graph"] else "n/a",
                      f"{r['ratio_graph']:.2f}" if r.get("ratio_graph") else "n/a"]
        lines.append("| " + " | ".join(cells) + " |")
    peak = None
    if args.peaks:
        rate, size, threads = torch_gemm_peak(device, args.precision, thread_counts)
        peak = {"flops_per_s": rate, "size": size, "threads": threads}
        lines += ["", f"PyTorch square matmul ({args.precision}): {rate / 1e9:.1f} GFLOP/s "
                  f"(n = {size}, {threads} thread{'s' if threads != 1 else ''})"]
    report(lines, args.markdown, args.json,
           {"device": args.device, "torch": torch.__version__, "model": model_name,
            "precision": args.precision, "rows": results,
            "gemm_flops_per_sample": gemm_flops_per_sample(sizes), "torch_gemm_peak": peak})
    if config:
        os.unlink(config)


if __name__ == "__main__":
    main()
