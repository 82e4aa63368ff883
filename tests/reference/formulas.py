"""The weights and data that tests/training/model_test.cpp's PyTorch-reference tests and the
scripts beside this file share (set_reference_weights and reference_rows in the C++ test):
weight (layer l, out i, in j) 0.6 sin(1 + 3 l + 0.7 i + 1.3 j), bias 0.2 cos(2 + l + 0.9 i),
inputs 2 cos(0.5 + 1.7 r + 0.6 c), targets sin(0.3 + 0.8 r + 1.1 k)."""
import math

import torch


def weight(layer, i, j):  # out i, in j
    return 0.6 * math.sin(1.0 + 3.0 * layer + 0.7 * i + 1.3 * j)


def bias(layer, i):
    return 0.2 * math.cos(2.0 + layer + 0.9 * i)


def linears(sizes):
    """nn.Linear layers sizes[0] -> sizes[1] -> ... with the formula weights and biases, in
    torch's default dtype."""
    out = [torch.nn.Linear(sizes[l], sizes[l + 1]) for l in range(len(sizes) - 1)]
    with torch.no_grad():
        for l, lin in enumerate(out):
            lin.weight.copy_(torch.tensor([[weight(l, i, j) for j in range(sizes[l])]
                                           for i in range(sizes[l + 1])]))
            lin.bias.copy_(torch.tensor([bias(l, i) for i in range(sizes[l + 1])]))
    return out


def data(rows, inputs, outputs):
    """(x [rows, inputs], targets [rows, outputs]) of the formulas."""
    x = torch.tensor([[2.0 * math.cos(0.5 + 1.7 * r + 0.6 * c) for c in range(inputs)]
                      for r in range(rows)])
    t = torch.tensor([[math.sin(0.3 + 0.8 * r + 1.1 * k) for k in range(outputs)]
                      for r in range(rows)])
    return x, t
