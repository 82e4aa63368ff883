#!/usr/bin/python3
"""The PyTorch side of ModelTest's Bf16TrainsAsPyTorchsCpuAutocast (tests/training/model_test.cpp).

The model, weights, data, loss and optimizer of elu_torch.py (nn.Sequential(Linear(4, 5), ELU(),
Linear(5, 3), LeakyReLU(), Linear(3, 2)), MSELoss, SGD lr 0.1, 5 full-batch steps on 8 rows),
in float32 under torch.autocast("cpu", dtype=torch.bfloat16), and again in plain float32 for
scale. Prints the loss before each step and the final parameters. Run:
/usr/bin/python3 bf16_autocast_torch.py
"""
import torch

import formulas

SIZES = [4, 5, 3, 2]
ROWS = 8


def train(autocast):
    linears = formulas.linears(SIZES)
    model = torch.nn.Sequential(linears[0], torch.nn.ELU(), linears[1], torch.nn.LeakyReLU(),
                                linears[2])
    x, t = formulas.data(ROWS, SIZES[0], SIZES[-1])
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
