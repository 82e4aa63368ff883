#!/usr/bin/python3
"""PyTorch weights into mlpx and back, checked end to end.

The two marked blocks are the README's "PyTorch weights in and out" snippets, word for word
(tests/docs/readme_test.cpp keeps them equal). Around them, this script trains the model
with mlpx from the torch weights on a small data set, loads the result back into torch and
checks that torch and `mlpx predict` give the same outputs.

Run: python3 examples/torch_interop.py PATH/TO/mlpx WORK_DIR
Needs torch, numpy and safetensors (pip install safetensors); exits 77 (skipped) without them.
"""
import json
import os
import subprocess
import sys

try:
    import numpy as np
    import torch
    from safetensors.torch import load_file, save_file
except ImportError as missing:
    print(f"skipped: {missing}")
    sys.exit(77)

mlpx, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
os.chdir(work)

# A small data set in files: 3 classes of 784 float32 features (the snippets' model's inputs),
# fed as they are ("normalize": "none"), as torch sees them.
generator = np.random.default_rng(0)
x = generator.normal(size=(600, 784)).astype(np.float32)
y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
np.save("x.npy", x)
np.save("y.npy", y)
with open("run.json", "w") as config:
    json.dump({"device": "cpu",
               "data": {"source": "files", "train": {"x": "x.npy", "y": "y.npy"},
                        "normalize": "none"},
               "model": {"layers": [{"units": 256, "activation": "relu"},
                                    {"units": 128, "activation": "relu"},
                                    {"units": 10, "activation": "identity"}]},
               "train": {"epochs": 3},
               "output": {"checkpoint": "model.safetensors", "log": "",
                          "init_checkpoint": "init.safetensors"}}, config)

# --- torch to mlpx ---
import torch
from safetensors.torch import save_file

net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                          torch.nn.Linear(256, 128), torch.nn.ReLU(),
                          torch.nn.Linear(128, 10))
save_file(net.state_dict(), "torch-init.safetensors")
# mlpx train --config run.json --init-weights torch-init.safetensors
# --- end ---

subprocess.run([mlpx, "train", "--quiet", "--config", "run.json",
                "--init-weights", "torch-init.safetensors"], check=True)
initial = load_file("init.safetensors")
for i, j in enumerate([0, 2, 4]):
    assert torch.equal(initial[f"layers.{i}.weight"], net[j].weight.detach()), i
    assert torch.equal(initial[f"layers.{i}.bias"], net[j].bias.detach()), i

# --- mlpx to torch ---
from safetensors.torch import load_file

state = load_file("model.safetensors")  # written by mlpx train
linears = [i for i, module in enumerate(net) if isinstance(module, torch.nn.Linear)]
net.load_state_dict({f"{j}.{p}": state[f"layers.{i}.{p}"]
                     for i, j in enumerate(linears) for p in ("weight", "bias")})
# --- end ---

subprocess.run([mlpx, "predict", "--model", "model.safetensors", "--input", "x.npy",
                "--output", "p.npy"], check=True, stderr=subprocess.DEVNULL)
with torch.no_grad():
    torch_probabilities = torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()
difference = np.abs(np.load("p.npy") - torch_probabilities).max()
assert difference < 1e-5, difference
print(f"torch_interop: ok (largest difference from torch {difference:.2e})")
