#!/usr/bin/python3
"""The PyTorch side of Init.ScalesMatchPyTorch (tests/core/random_test.cpp).

For a weight [fan_out, fan_in] = [300, 200] in float64, from torch's own initialisers (seed 0):
the largest |w| and the std of the draws of nn.init.xavier_uniform_, xavier_normal_,
kaiming_uniform_ / kaiming_normal_ (nonlinearity relu: He), and nn.Linear's reset_parameters
(weight and bias), next to the bound or std torch's formula gives. mlpx's draws differ (another
generator); the test checks that mlpx's scale equals torch's formula and that mlpx's draws have
torch's statistics. Run: /usr/bin/python3 init_torch.py
"""
import math

import torch

torch.set_default_dtype(torch.float64)
FAN_IN, FAN_OUT = 200, 300
torch.manual_seed(0)


def row(name, w, scale):
    print(f'{{"{name}", {scale!r}, {w.abs().max().item()!r}, {w.std(unbiased=False).item()!r}}},')


w = torch.empty(FAN_OUT, FAN_IN)
torch.nn.init.xavier_uniform_(w)
row("xavier_uniform", w, math.sqrt(6.0 / (FAN_IN + FAN_OUT)))
torch.nn.init.xavier_normal_(w)
row("xavier_normal", w, math.sqrt(2.0 / (FAN_IN + FAN_OUT)))
torch.nn.init.kaiming_uniform_(w, nonlinearity="relu")
row("he_uniform", w, math.sqrt(6.0 / FAN_IN))
torch.nn.init.kaiming_normal_(w, nonlinearity="relu")
row("he_normal", w, math.sqrt(2.0 / FAN_IN))
linear = torch.nn.Linear(FAN_IN, FAN_OUT)
row("torch_default", linear.weight.detach(), 1.0 / math.sqrt(FAN_IN))
row("torch_default bias", linear.bias.detach(), 1.0 / math.sqrt(FAN_IN))
print("torch", torch.__version__)
