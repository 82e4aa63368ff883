#!/usr/bin/python3
"""The PyTorch side of ModelTest's Bf16TrainsAsPyTorchsCpuAutocast (tests/training/model_test.cpp).

The model, weights, data, loss and optimizer of elu_torch.py (nn.Sequential(Linear(4, 5), ELU(),
Linear(5, 3), LeakyReLU(), Linear(3, 2)), MSELoss, SGD lr 0.1, 5 full-batch steps on 8 rows),
in float32 under torch.autocast("cpu", dtype=torch.bfloat16), and again in plain float32 for
scale. Prints the loss before each step and the final parameters. Run:
/usr/bin/python3 bf16_autocast_torch.py
"""
import math

import torch

SIZES = [4, 5, 3, 2]
ROWS = 8


def weight(layer, i, j):  # out i, in j
    return 0.6 * math.sin(1.0 + 3.0 * layer + 0.7 * i + 1.3 * j)


def bias(layer, i):
    return 0.2 * math.cos(2.0 + layer + 0.9 * i)


def x_value(r, c):
    return 2.0 * math.cos(0.5 + 1.7 * r + 0.6 * c)


def target(r, k):
    return math.sin(0.3 + 0.8 * r + 1.1 * k)


def train(autocast):
    linears = [torch.nn.Linear(SIZES[l], SIZES[l + 1]) for l in range(3)]
    with torch.no_grad():
        for l, lin in enumerate(linears):
            lin.weight.copy_(torch.tensor([[weight(l, i, j) for j in range(SIZES[l])]
                                           for i in range(SIZES[l + 1])]))
            lin.bias.copy_(torch.tensor([bias(l, i) for i in range(SIZES[l + 1])]))
    model = torch.nn.Sequential(linears[0], torch.nn.ELU(), linears[1], torch.nn.LeakyReLU(),
                                linears[2])
    x = torch.tensor([[x_value(r, c) for c in range(SIZES[0])] for r in range(ROWS)])
    t = torch.tensor([[target(r, k) for k in range(SIZES[-1])] for r in range(ROWS)])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = model(x)
        loss = torch.nn.functional.mse_loss(out.float(), t)
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return losses, flat.tolist()


for name, autocast in (("autocast bf16", True), ("float32", False)):
    losses, params = train(autocast)
    print(name, "losses:", ", ".join(repr(v) for v in losses))
    print(name, "params:", ", ".join(repr(v) for v in params))
print("torch", torch.__version__)
