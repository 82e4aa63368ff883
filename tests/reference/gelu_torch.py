#!/usr/bin/python3
"""The PyTorch side of GeluTest (tests/numerics/gelu_test.cpp): torch.nn.GELU() (erf) and
torch.nn.GELU(approximate="tanh") forward and autograd backward in float64 at the inputs X below,
with the upstream gradient dy_i = 0.3 + 0.1 i, printed in the layout the test embeds.
Run: /usr/bin/python3 gelu_torch.py
"""
import torch

X = [-100.0, -30.0, -5.0, -1.5, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.25, 1.0, 2.5, 6.0, 30.0, 100.0]

for approximate in ["none", "tanh"]:
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    y = torch.nn.GELU(approximate=approximate)(x)
    dy = torch.tensor([0.3 + 0.1 * i for i in range(len(X))], dtype=torch.float64)
    y.backward(dy)
    print(approximate, "y:", ", ".join(repr(v) for v in y.detach().tolist()))
    print(approximate, "dx:", ", ".join(repr(v) for v in x.grad.tolist()))
print("torch", torch.__version__)
