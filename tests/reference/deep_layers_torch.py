#!/usr/bin/python3
"""The PyTorch side of DeepLayers.TrainAsPyTorch (tests/training/deep_layers_test.cpp).

Trains, in float64 from the weights and data of formulas.py (a Linear without a bias skips its
bias formula), four layers of 4 -> 5 -> 5 -> 5 -> 2:
  0: Linear(4, 5), LayerNorm(5), GELU()
  1: residual: x + Tanh(BatchNorm1d(5, momentum=0.2)(Linear(5, 5, bias=False)(x)))
  2: residual: x + GELU(approximate="tanh")(LayerNorm(5, eps=1e-3)(Linear(5, 5)(x)))
  3: Linear(5, 2)
with nn.MSELoss and Adam (lr 0.05), 4 full-batch steps on 8 rows; prints the loss before each
step, the parameters in nn.Sequential's order (the flat layout of mlpx), Adam's exp_avg and
exp_avg_sq in that order, the batch norm's running statistics, and the eval-mode outputs on the
8 rows. Run: /usr/bin/python3 deep_layers_torch.py
"""
import torch

import formulas

torch.set_default_dtype(torch.float64)
ROWS = 8


class Residual(torch.nn.Module):
    def __init__(self, *modules):
        super().__init__()
        self.inner = torch.nn.Sequential(*modules)

    def forward(self, x):
        return x + self.inner(x)


lin = formulas.linears([4, 5, 5, 5, 2])
# A bias before a batch norm gets no gradient but rounding noise (the norm subtracts the mean),
# which Adam would amplify: the Linear there has none, as usual.
second = torch.nn.Linear(5, 5, bias=False)
with torch.no_grad():
    second.weight.copy_(lin[1].weight)
batch_norm = torch.nn.BatchNorm1d(5, eps=1e-5, momentum=0.2)
model = torch.nn.Sequential(
    lin[0], torch.nn.LayerNorm(5), torch.nn.GELU(),
    Residual(second, batch_norm, torch.nn.Tanh()),
    Residual(lin[2], torch.nn.LayerNorm(5, eps=1e-3), torch.nn.GELU(approximate="tanh")),
    lin[3])
x, t = formulas.data(ROWS, 4, 2)
optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
losses = []
for _ in range(4):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), t)
    losses.append(loss.item())
    loss.backward()
    optimizer.step()


def show(name, tensors):
    flat = torch.cat([v.detach().reshape(-1) for v in tensors])
    print(name + ":", ", ".join(repr(v) for v in flat.tolist()))


show("losses", [torch.tensor(losses)])
show("params", list(model.parameters()))
show("exp_avg", [optimizer.state[p]["exp_avg"] for p in model.parameters()])
show("exp_avg_sq", [optimizer.state[p]["exp_avg_sq"] for p in model.parameters()])
show("running_mean", [batch_norm.running_mean])
show("running_var", [batch_norm.running_var])
print("num_batches_tracked:", batch_norm.num_batches_tracked.item())
model.eval()
show("eval", [model(x)])
print("torch", torch.__version__)
