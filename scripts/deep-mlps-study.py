#!/usr/bin/env python3
"""The 16-layer study of docs/deep-mlps.md: four networks, each trained by `mlpx train` with
train.layer_grad_norms, then a table of their accuracies and per-layer gradient norms and a
plot of those norms (gnuplot).

    /usr/bin/python3 scripts/deep-mlps-study.py --mlpx build/src/cli/mlpx --out study/ \
        --train-rows 6000 --test-rows 2000 --epochs 3

Reads Debian's dataset-fashion-mnist (uint8 IDX files; --data), writes the first --train-rows
and --test-rows rows as .npy into --out (0: all), runs the four configs there (skipping a run
whose log is complete; --rerun forces), and writes --out/deep-mlps.md (the tables) and
--plot (default --out/deep-mlps-grad-norms.png). Needs numpy and gnuplot.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys

import numpy as np

DEPTH = 16
WIDTH = 512

# name, label, hidden layer spec (layer index 1..16 -> dict), model.init
NETWORKS = [
    ("sigmoid", "sigmoid, xavier_normal (the lecture's)",
     lambda i: {"units": WIDTH, "activation": "sigmoid"}, "xavier_normal"),
    ("relu", "relu, he_normal",
     lambda i: {"units": WIDTH, "activation": "relu"}, "he_normal"),
    ("residual_layernorm", "residual + LayerNorm + GELU",
     lambda i: dict({"units": WIDTH, "activation": "gelu", "norm": "layer"},
                    **({"residual": True} if i > 1 else {})), "he_normal"),
    ("residual_batchnorm", "residual + BatchNorm + GELU",
     lambda i: dict({"units": WIDTH, "activation": "gelu", "norm": "batch", "bias": False},
                    **({"residual": True} if i > 1 else {})), "he_normal"),
]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_data(args):
    for split, prefix, rows in (("train", "train", args.train_rows),
                                ("test", "t10k", args.test_rows)):
        x = read_idx(os.path.join(args.data, prefix + "-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(args.data, prefix + "-labels-idx1-ubyte.gz"))
        if rows > 0:
            x, y = x[:rows], y[:rows]
        np.save(os.path.join(args.out, split + "_x.npy"), x.reshape(len(x), -1))
        np.save(os.path.join(args.out, split + "_y.npy"), y.astype(np.int64))


def config(name, layer, init, args):
    layers = [layer(i) for i in range(1, DEPTH + 1)] + [{"units": 10, "activation": "identity"}]
    return {
        "device": "cpu", "seed": 0,
        "data": {"source": "files", "train": {"x": "train_x.npy", "y": "train_y.npy"},
                 "test": {"x": "test_x.npy", "y": "test_y.npy"}, "validation_split": 0.1},
        "model": {"layers": layers, "init": init},
        "optimizer": {"type": "adam", "lr": 0.001},
        "train": {"epochs": args.epochs, "batch_size": 128, "layer_grad_norms": True},
        "output": {"checkpoint": name + ".safetensors", "log": name + ".jsonl"},
    }


def read_log(path):
    epochs, test = [], None
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            if "test_accuracy" in row:
                test = row
            elif "layer_grad_norm" in row:
                epochs.append(row)
    return epochs, test


def run(args):
    results = {}
    for name, label, layer, init in NETWORKS:
        log = os.path.join(args.out, name + ".jsonl")
        done = os.path.exists(log) and read_log(log)[1] is not None
        if args.rerun or not done:
            with open(os.path.join(args.out, name + ".json"), "w") as f:
                json.dump(config(name, layer, init, args), f, indent=1)
            print("training", name, flush=True)
            subprocess.run([os.path.abspath(args.mlpx), "train", "--config", name + ".json"],
                           cwd=args.out, check=True)
        results[name] = read_log(log)
    return results


def fmt(v):
    return "%.3g" % v


def write_tables(args, results):
    lines = ["| network | train acc (per epoch) | val acc (last) | test acc | s per epoch |",
             "| --- | --- | --- | --- | --- |"]
    for name, label, _, _ in NETWORKS:
        epochs, test = results[name]
        seconds = epochs[-1]["elapsed_s"] / len(epochs)
        lines.append("| %s | %s | %.3f | **%.3f** | %.0f |" % (
            label, ", ".join("%.3f" % e["train_accuracy"] for e in epochs),
            epochs[-1]["val_accuracy"], test["test_accuracy"], seconds))
    lines += ["", "Mean L2 norm of each layer's weight gradient over epoch 1 (and the last epoch):",
              "", "| layer | " + " | ".join(label for _, label, _, _ in NETWORKS) + " |",
              "| --- |" + " --- |" * len(NETWORKS)]
    for layer in range(DEPTH + 1):
        cells = []
        for name, _, _, _ in NETWORKS:
            epochs = results[name][0]
            cells.append("%s (%s)" % (fmt(epochs[0]["layer_grad_norm"][layer]),
                                      fmt(epochs[-1]["layer_grad_norm"][layer])))
        tag = "output" if layer == DEPTH else str(layer + 1)
        lines.append("| %s | %s |" % (tag, " | ".join(cells)))
    with open(os.path.join(args.out, "deep-mlps.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(args, results):
    dat = os.path.join(args.out, "grad_norms.dat")
    epochs_run = min(len(results[name][0]) for name, _, _, _ in NETWORKS)
    with open(dat, "w") as f:
        for name, _, _, _ in NETWORKS:
            for e in range(epochs_run):
                norms = results[name][0][e]["layer_grad_norm"]
                for layer, v in enumerate(norms):
                    f.write("%d %.9g\n" % (layer + 1, v))
                f.write("\n\n")
    plots = []
    colors = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"]
    for k, (_, label, _, _) in enumerate(NETWORKS):
        for e in range(epochs_run):
            title = "title '%s'" % label.replace("'", "''") if e == 0 else "notitle"
            plots.append("'%s' index %d using 1:2 with linespoints lw 2 dt %d lc rgb '%s' %s" % (
                os.path.basename(dat), k * epochs_run + e, e + 1, colors[k], title))
    script = "\n".join([
        "set terminal pngcairo size 900,560 font ',11' noenhanced",
        "set output outfile",
        "set title 'Mean weight-gradient L2 norm per layer, 16 x 512 on Fashion-MNIST "
        "(solid: epoch 1; dashed, dotted: epochs 2, 3)'",
        "set xlabel 'layer (17: output)'", "set ylabel 'gradient norm'",
        "set logscale y", "set format y '%.0e'", "set grid", "set key outside bottom center horizontal",
        "set xtics 1", "plot " + ", \\\n  ".join(plots), ""])
    gp = os.path.join(args.out, "grad_norms.gp")
    with open(gp, "w") as f:
        f.write(script)
    subprocess.run(["gnuplot", "-e", "outfile='%s'" % os.path.abspath(args.plot),
                    os.path.basename(gp)], cwd=args.out, check=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mlpx", default="build/src/cli/mlpx")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--out", default="study")
    p.add_argument("--plot", default=None)
    p.add_argument("--train-rows", type=int, default=6000)
    p.add_argument("--test-rows", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rerun", action="store_true")
    p.add_argument("--only", default=None, help="comma-separated network names to run")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    args.plot = args.plot or os.path.join(args.out, "deep-mlps-grad-norms.png")
    if not os.path.exists(os.path.join(args.out, "test_y.npy")) or args.rerun:
        write_data(args)
    if args.only:
        global NETWORKS
        NETWORKS = [n for n in NETWORKS if n[0] in args.only.split(",")]
    results = run(args)
    write_tables(args, results)
    plot(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
