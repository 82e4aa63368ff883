#!/usr/bin/python3
"""The PyTorch side of NormTest (tests/numerics/norm_test.cpp): torch.nn.LayerNorm(6, eps) and
torch.nn.BatchNorm1d(6, eps, momentum) in float64 on x [5, 6], with weight and bias set below,
one training forward and the autograd backward of sum(y * dy), then (BatchNorm) the running
statistics after that batch and an eval forward. Printed in the layout the test embeds.
Run: /usr/bin/python3 norm_torch.py
"""
import math

import torch

torch.set_default_dtype(torch.float64)
ROWS, COLS = 5, 6
x0 = torch.tensor([[math.sin(0.7 * (r * COLS + c) + 0.3) * (1 + 0.5 * c) + 0.1 * r
                    for c in range(COLS)] for r in range(ROWS)])
dy = torch.tensor([[math.cos(0.4 * (r * COLS + c)) for c in range(COLS)] for r in range(ROWS)])
weight = torch.tensor([1.0 + 0.1 * c for c in range(COLS)])
bias = torch.tensor([0.05 * c - 0.1 for c in range(COLS)])


def show(name, t):
    print(name + ":", ", ".join(repr(v) for v in t.detach().reshape(-1).tolist()))


for kind, module in [("layer", torch.nn.LayerNorm(COLS, eps=1e-5)),
                     ("batch", torch.nn.BatchNorm1d(COLS, eps=1e-3, momentum=0.2))]:
    with torch.no_grad():
        module.weight.copy_(weight)
        module.bias.copy_(bias)
    x = x0.clone().requires_grad_(True)
    module.train()
    y = module(x)
    (y * dy).sum().backward()
    print(kind)
    show("y", y)
    show("dx", x.grad)
    show("dweight", module.weight.grad)
    show("dbias", module.bias.grad)
    if kind == "batch":
        show("running_mean", module.running_mean)
        show("running_var", module.running_var)
        module.eval()
        show("eval_y", module(x0))
print("torch", torch.__version__)
