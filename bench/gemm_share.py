#!/usr/bin/python3
"""Where a CPU training step's time goes: the sgemm calls mlpx and PyTorch share, and each one's
own work around them.

Both sides of bench/compare_torch.py call the same OpenBLAS sgemm on the same shapes, so from
batch 1024 up the GEMMs are most of either step, and their time moves with the machine's load
as much as either framework's code does. This script preloads bench/gemm_timer.cpp's library,
which times every sgemm call (mlpx's cblas_sgemm, PyTorch's sgemm_), and splits each step into

    GEMM ms  = the sgemm time per step (over every step the run made, the warm-up ones too:
               the calls divided by the 3L - 1 GEMMs of one step of an L-layer model)
    own ms   = the step's wall time (compare_torch's timed steps) minus that

for mlpx (`mlpx bench`, a fresh process) and PyTorch (the same eager step as compare_torch),
interleaved for --rounds rounds. The own time is what each framework decides; where the two
GEMM times agree, the ratio of samples/s is about (GEMM + PyTorch's own) / (GEMM + mlpx's own).

Usage: bench/gemm_share.py [--mlpx build/mlpx] [--timer build/bench/libmlpx_gemm_timer.so]
                           [--batch-sizes 32,128,1024,full] [--rounds 3] [--json FILE]

CPU, float32, batch sizes above 1 (at batch 1 mlpx forms the weight gradient without BLAS).
"""

import argparse
import ctypes
import json
import os
import statistics
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_torch as ct  # noqa: E402  (the same data, model, optimizer and step)


def ensure_preloaded(timer):
    """Re-executes this script with the timer preloaded (the dynamic linker binds PyTorch's
    sgemm_ to it only when it is loaded first)."""
    if os.environ.get("LD_PRELOAD", "").split(":")[0] == timer:
        return
    env = dict(os.environ, LD_PRELOAD=":".join(
        p for p in [timer, os.environ.get("LD_PRELOAD", "")] if p))
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def mlpx_split(args, label, batch, gemms_per_step):
    """One `mlpx bench` process at `batch` ("full" as `label`), split."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        os.environ["MLPX_GEMM_TIMER_OUT"] = out.name
        try:
            row = ct.run_mlpx(args.mlpx, label, "cpu", args.seconds, args.warmup)
        finally:
            del os.environ["MLPX_GEMM_TIMER_OUT"]
        with open(out.name) as f:
            timer = json.load(f)
    return split(row["samples_per_s"], timer["seconds"], timer["calls"], gemms_per_step, batch)


def torch_split(timer, x, y, batch, args, gemms_per_step):
    """The same for compare_torch's eager PyTorch step (all cores)."""
    timer.mlpx_gemm_timer_reset()
    samples_per_s = ct.torch_eager(x, y, batch, args.seconds, args.warmup, torch.device("cpu"))
    return split(samples_per_s, timer.mlpx_gemm_timer_seconds(), timer.mlpx_gemm_timer_calls(),
                 gemms_per_step, batch)


def split(samples_per_s, gemm_seconds, calls, gemms_per_step, batch):
    """A run's step time (from its samples/s) split into sgemm time per step and the rest."""
    if calls == 0 or calls % gemms_per_step:
        sys.exit(f"gemm_share: error: expected a multiple of {gemms_per_step} sgemm calls "
                 f"(one step's), found {calls}")
    steps = calls // gemms_per_step
    step_s = batch / samples_per_s
    gemm_s = gemm_seconds / steps
    return {"samples_per_s": samples_per_s, "step_ms": step_s * 1e3, "gemm_ms": gemm_s * 1e3,
            "own_ms": (step_s - gemm_s) * 1e3}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlpx", default="build/mlpx")
    parser.add_argument("--timer", default="build/bench/libmlpx_gemm_timer.so",
                        help="bench/gemm_timer.cpp's library")
    parser.add_argument("--batch-sizes", default="32,128,1024,full")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds; the medians count")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--data-dir", default=ct.DATA_DIR)
    parser.add_argument("--markdown", help="also write the table as markdown here")
    parser.add_argument("--json", help="also write the measurements as JSON here")
    args = parser.parse_args()
    for path, what in [(args.mlpx, "the mlpx binary"), (args.timer, "the timer library")]:
        if not os.path.exists(path):
            sys.exit(f"gemm_share: error: expected {what} at {path}, found nothing; build the "
                     "benchmarks first (make build) or pass its path")
    args.timer = os.path.abspath(args.timer)
    ensure_preloaded(args.timer)
    timer = ctypes.CDLL(args.timer)
    timer.mlpx_gemm_timer_seconds.restype = ctypes.c_double
    timer.mlpx_gemm_timer_calls.restype = ctypes.c_int64

    x, y = ct.load_train(args.data_dir)
    n = x.shape[0]
    gemms_per_step = 3 * len(ct.LAYERS) - 1  # forward, dW, dx of each layer but the first's dx
    rows = []
    for label in args.batch_sizes.split(","):
        label = label.strip()
        batch = n if label == "full" else int(label)
        if batch < 2:
            sys.exit(f"gemm_share: error: expected batch sizes above 1, found {label}")
        runs = {"mlpx": [], "torch": []}
        for _ in range(args.rounds):
            runs["mlpx"].append(mlpx_split(args, label, batch, gemms_per_step))
            runs["torch"].append(torch_split(timer, x, y, batch, args, gemms_per_step))
        row = {"label": label, "batch": batch}
        for side, measured in runs.items():
            for key in ("samples_per_s", "step_ms", "gemm_ms", "own_ms"):
                row[f"{side}_{key}"] = statistics.median(m[key] for m in measured)
            row[f"{side}_runs"] = measured
        rows.append(row)
        print(f"  batch {label}: mlpx GEMM {row['mlpx_gemm_ms']:.2f} + own "
              f"{row['mlpx_own_ms']:.2f} ms, PyTorch GEMM {row['torch_gemm_ms']:.2f} + own "
              f"{row['torch_own_ms']:.2f} ms", file=sys.stderr, flush=True)

    lines = [f"One training step's time on the CPU, split at sgemm (784-256-128-10, Adam, "
             f"float32; medians of {args.rounds} interleaved rounds of ~{args.seconds:g} s)", "",
             "| batch | mlpx GEMM ms | mlpx own ms | PyTorch GEMM ms | PyTorch own ms | "
             "own: PyTorch / mlpx |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        batch = r["label"] + (f" ({r['batch']})" if r["label"] == "full" else "")
        lines.append(f"| {batch} | {r['mlpx_gemm_ms']:.2f} | {r['mlpx_own_ms']:.2f} | "
                     f"{r['torch_gemm_ms']:.2f} | {r['torch_own_ms']:.2f} | "
                     f"{r['torch_own_ms'] / r['mlpx_own_ms']:.2f} |")
    ct.report(lines, args.markdown, args.json,
              {"torch": torch.__version__, "rounds": args.rounds, "rows": rows})


if __name__ == "__main__":
    main()
