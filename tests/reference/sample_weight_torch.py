#!/usr/bin/python3
"""The PyTorch side of LossNumerics.SampleWeightsMatchPyTorch (tests/numerics/loss_test.cpp).

For every mlpx loss, in float64: the per-row losses from torch's reduction='none' losses, their
weighted mean sum_i w_i l_i / sum_i w_i (numpy's average with weights, as scikit-learn averages
a weighted loss), and its gradient with respect to the outputs by autograd. Outputs, targets,
labels and weights come from the formulas the C++ test repeats. Run:
/usr/bin/python3 sample_weight_torch.py
"""
import math

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
ROWS, COLS = 4, 3
WEIGHTS = [0.5, 2.0, 0.0, 1.5]
LABELS = [2, 0, 1, 1]

z0 = torch.tensor([2.0 * math.sin(1.3 * i + 0.5) for i in range(ROWS * COLS)]).reshape(ROWS, COLS)
t = torch.tensor([0.5 + 0.5 * math.cos(0.7 * i) for i in range(ROWS * COLS)]).reshape(ROWS, COLS)
probabilities = t / t.sum(1, keepdim=True)  # kl_div's target rows
w = torch.tensor(WEIGHTS)
labels = torch.tensor(LABELS)

ROW_LOSSES = {
    "mse": lambda z: F.mse_loss(z, t, reduction="none").mean(1),
    "sse": lambda z: 0.5 * F.mse_loss(z, t, reduction="none").sum(1),
    "cross_entropy": lambda z: F.cross_entropy(z, labels, reduction="none"),
    "kl_div": lambda z: F.kl_div(F.log_softmax(z, 1), probabilities, reduction="none").sum(1),
    "bce": lambda z: F.binary_cross_entropy_with_logits(z, t, reduction="none").mean(1),
}
for name, row_loss in ROW_LOSSES.items():
    z = z0.clone().requires_grad_(True)
    loss = (w * row_loss(z)).sum() / w.sum()
    loss.backward()
    print(f'{{"{name}", {loss.item()!r}, {{{", ".join(repr(v) for v in z.grad.reshape(-1).tolist())}}}}},')
print("torch", torch.__version__)
