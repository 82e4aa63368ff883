#!/usr/bin/env python3
"""Inference throughput of an exported model in ONNX Runtime beside mlpx's own (docs/deploy.md).

    PYTHONPATH=build/python build-venv/bin/python bench/onnx_throughput.py \\
        --cli build/mlpx --model model.safetensors --onnx model.onnx --inputs x.npy

Inputs: .npy rows as `mlpx predict` reads them. Measures, best of --repeat runs each:
`mlpx predict` end to end (process start, checkpoint and input reads, the pass, the write),
mlpx's in-process pass (Python Model.predict, the same Sequential::predict) and ONNX Runtime's
session.run on the CPU, both on all rows at once and in batches of --batch. Prints a markdown
table; the machine's CPU model comes from /proc/cpuinfo."""
import argparse
import os
import subprocess
import tempfile
import time

import numpy as np
import onnxruntime as ort

import mlpx


def best_seconds(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def batched(fn, x, batch):
    def run():
        for i in range(0, len(x), batch):
            fn(x[i:i + batch])
    return run


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    raw = np.load(args.inputs)
    x = raw.astype(np.float32)
    rows = len(x)
    session = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    model = mlpx.load(args.model, device="cpu")
    # What Model.predict takes: the model's features (uint8 pixels / 255 when the graph
    # divides), the graph folding in the same scaling.
    x_model = x / 255 if raw.dtype == np.uint8 and "divided by 255" in meta["mlpx.input"] else x

    def ort_run(v):
        session.run(["output"], {"input": v})

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "y.npy")
        predict_cmd = [args.cli, "predict", "--model", args.model, "--input", args.inputs,
                       "--output", out, "--device", "cpu"]
        cli_s = best_seconds(lambda: subprocess.run(predict_cmd, check=True,
                                                    capture_output=True), args.repeat)
    cases = [
        ("`mlpx predict` (end to end: start, read, pass, write)", cli_s),
        (f"mlpx in process, all {rows} rows", best_seconds(lambda: model.predict(x_model),
                                                           args.repeat)),
        (f"ONNX Runtime, all {rows} rows", best_seconds(lambda: ort_run(x), args.repeat)),
        (f"mlpx in process, batches of {args.batch}",
         best_seconds(batched(model.predict, x_model, args.batch), args.repeat)),
        (f"ONNX Runtime, batches of {args.batch}",
         best_seconds(batched(ort_run, x, args.batch), args.repeat)),
    ]
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; ONNX Runtime {ort.__version__}; "
          f"{rows} rows; {os.path.getsize(args.onnx)} bytes of ONNX; best of {args.repeat}\n")
    print("| what | seconds | rows/s |\n| --- | ---: | ---: |")
    for name, seconds in cases:
        print(f"| {name} | {seconds:.4f} | {rows / seconds:,.0f} |")


if __name__ == "__main__":
    main()
