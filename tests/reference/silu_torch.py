#!/usr/bin/python3
"""The PyTorch side of SiluTest (tests/numerics/silu_test.cpp): torch.nn.SiLU forward and its
autograd backward in float64 at the inputs X below, with the upstream gradient
dy_i = 0.3 + 0.1 i, printed in the layout the test embeds. Run: /usr/bin/python3 silu_torch.py
"""
import torch

X = [-100.0, -30.0, -5.0, -1.5, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.25, 1.0, 2.5, 6.0, 30.0, 100.0]

x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
y = torch.nn.SiLU()(x)
dy = torch.tensor([0.3 + 0.1 * i for i in range(len(X))], dtype=torch.float64)
y.backward(dy)
print("y:", ", ".join(repr(v) for v in y.detach().tolist()))
print("dx:", ", ".join(repr(v) for v in x.grad.tolist()))
print("torch", torch.__version__)
