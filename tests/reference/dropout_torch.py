#!/usr/bin/python3
"""The PyTorch side of mlpx's dropout tests (tests/numerics/dropout_test.cpp and
tests/training/model_test.cpp). Run: /usr/bin/python3 dropout_torch.py

1. PyTorch's scaling rule, from torch itself: the value F.dropout(x, p) keeps for x (its random
   mask aside), float32 and float64, for several p and x. Printed as exact hex floats.
2. A training run with mlpx's masks: Philox4x32-10 written here again from the paper (Salmon et
   al., SC'11), drawing the mask mlpx draws for (seed, step, layer, element), applied with the
   arithmetic of torch's own dropout (its noise tensor divided in place by 1 - p, times the
   input), in nn.Sequential(Linear(4, 6), ReLU(), Dropout(0.5), Linear(6, 5), Tanh(),
   Dropout(0.25), Linear(5, 3), Dropout(0.2)) with nn.MSELoss and plain SGD (lr 0.1) for 4
   full-batch steps on 8 rows, float64, from weights and data given by formulas the C++ test
   repeats. Prints the loss before each step and the final parameters.
"""
import math

import torch

import formulas

# --- 1. the scaling rule --------------------------------------------------------------------
# 0.021 and 0.111: float(1 / (1 - p)) and 1.0f / float(1 - p) differ there (torch: the latter).
PS = [0.021, 0.1, 0.111, 0.2, 0.25, 0.3, 0.5, 0.7, 0.9, 0.99]
XS = [0.1, -1.7, 3.14159, 1e-3, 123.456, 7.0]
for dtype, name in ((torch.float32, "float32"), (torch.float64, "float64")):
    for p in PS:
        torch.manual_seed(0)
        x = torch.tensor(XS * 2000, dtype=dtype)
        y = torch.nn.functional.dropout(x, p, training=True)
        kept = []
        for i, v in enumerate(XS):
            column = y[i::len(XS)]
            values = set(column[column != 0].tolist())
            assert len(values) == 1, (p, v, values)  # every kept copy of x has one value
            kept.append(values.pop())
        ones = torch.nn.functional.dropout(torch.ones(20000, dtype=dtype), p, training=True)
        scale = set(ones[ones != 0].tolist())
        assert len(scale) == 1
        print(f"{name} p={p}: scale {float(scale.pop()).hex()} kept",
              " ".join(float(k).hex() for k in kept))

# --- 2. training with mlpx's masks ----------------------------------------------------------
M32 = 0xFFFFFFFF


def philox4x32_10(counter, key0, key1):
    c = list(counter)
    for _ in range(10):
        p0 = 0xD2511F53 * c[0]
        p1 = 0xCD9E8D57 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ key0) & M32, p1 & M32, ((p0 >> 32) ^ c[3] ^ key1) & M32, p0 & M32]
        key0 = (key0 + 0x9E3779B9) & M32
        key1 = (key1 + 0xBB67AE85) & M32
    return c


assert philox4x32_10([0, 0, 0, 0], 0, 0) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
STREAM_DROPOUT = 4 << 40


def keep(seed, step, layer, element, p):
    stream = STREAM_DROPOUT + layer
    index = (step << 32) | (element >> 2)
    counter = [index & M32, index >> 32, stream & M32, stream >> 32]
    draw = philox_draws = philox4x32_10(counter, seed & M32, seed >> 32)[element & 3]
    return draw >= math.floor(p * 2.0**32)


class MlpxMaskDropout(torch.nn.Module):
    """nn.Dropout's arithmetic (_dropout_impl: noise.div_(1 - p); input * noise) on mlpx's mask."""

    def __init__(self, p, layer):
        super().__init__()
        self.p, self.layer, self.step = p, layer, 0

    def forward(self, x):
        rows, units = x.shape
        noise = torch.tensor([[1.0 if keep(SEED, self.step, self.layer, r * units + c, self.p)
                               else 0.0 for c in range(units)] for r in range(rows)],
                             dtype=x.dtype)
        noise.div_(1 - self.p)
        return x * noise


torch.set_default_dtype(torch.float64)
SEED = 5
SIZES = [4, 6, 5, 3]
ROWS = 8

linears = formulas.linears(SIZES)
drops = [MlpxMaskDropout(0.5, 0), MlpxMaskDropout(0.25, 1), MlpxMaskDropout(0.2, 2)]
model = torch.nn.Sequential(linears[0], torch.nn.ReLU(), drops[0], linears[1], torch.nn.Tanh(),
                            drops[1], linears[2], drops[2])
x, t = formulas.data(ROWS, SIZES[0], SIZES[-1])
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
losses = []
for step in range(4):
    for d in drops:
        d.step = step
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), t)
    losses.append(loss.item())
    loss.backward()
    optimizer.step()
print("losses:", ", ".join(repr(v) for v in losses))
flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
print("params:", ", ".join(repr(v) for v in flat.tolist()))
print("torch", torch.__version__)
