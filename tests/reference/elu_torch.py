#!/usr/bin/python3
"""The PyTorch side of ModelTest's EluTrainsAsPyTorchsNnElu (tests/training/model_test.cpp).

Trains nn.Sequential(Linear(4, 5), ELU(), Linear(5, 3), LeakyReLU(), Linear(3, 2)) with
nn.MSELoss and plain SGD (lr 0.1) for 5 full-batch steps on 8 rows, in float64, from weights
and data given by formulas the C++ test repeats, and prints the loss before each step and the
final parameters, in the layout the test embeds. Run: /usr/bin/python3 elu_torch.py
"""
import torch

import formulas

torch.set_default_dtype(torch.float64)
SIZES = [4, 5, 3, 2]
ROWS = 8


linears = formulas.linears(SIZES)
model = torch.nn.Sequential(linears[0], torch.nn.ELU(), linears[1], torch.nn.LeakyReLU(),
                            linears[2])
x, t = formulas.data(ROWS, SIZES[0], SIZES[-1])
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
losses = []
for _ in range(5):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), t)
    losses.append(loss.item())
    loss.backward()
    optimizer.step()
print("losses:", ", ".join(repr(v) for v in losses))
flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
print("params:", ", ".join(repr(v) for v in flat.tolist()))
print("torch", torch.__version__)
