#!/usr/bin/env python3
"""The README's and docs/python.md's Python snippets, run end to end (ctest: python_example).

The marked blocks are the documentation's Python snippets, word for word
(tests/docs/readme_test.cpp keeps them equal: README.md or a docs/ page): the first trains on
Fashion-MNIST and predicts, the second fits the scikit-learn estimator, the third hands the
model to PyTorch. Around them this script checks what the README says
they do. Needs the mlpx package and Debian's dataset-fashion-mnist; the torch half is skipped
(exit 77 after the first half) without torch.
"""
import os
import sys

import numpy as np

if not os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"):
    print("skipped: dataset-fashion-mnist is not installed")
    sys.exit(77)

# --- Python: Fashion-MNIST ---
import mlpx

def read(name):  # Debian's dataset-fashion-mnist: IDX files, uint8 images and labels
    return mlpx.load_array("/usr/share/datasets/fashion-mnist/" + name)

x = read("train-images-idx3-ubyte.gz").reshape(-1, 784).astype("float32") / 255
y = read("train-labels-idx1-ubyte.gz")
xt = read("t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype("float32") / 255
yt = read("t10k-labels-idx1-ubyte.gz")

model = mlpx.Model(inputs=784, layers=[(256, "relu"), (128, "relu"), (10, "identity")])
model.fit(x, y, validation=(xt, yt), epochs=3, batch_size=128, optimizer="adam", progress=True)
print(model.evaluate(xt, yt))            # {'loss': 0.35..., 'accuracy': 0.87..., ...}
print(model.predict(xt[:5]).argmax(1))   # the classes of the first 5 test images
model.save("fashion.safetensors")        # mlpx.load(...), or mlpx predict --model ...
# --- end ---

accuracy = model.evaluate(xt, yt)["accuracy"]
assert accuracy > 0.84, accuracy
assert np.array_equal(mlpx.load("fashion.safetensors").predict(xt[:5]), model.predict(xt[:5]))
os.remove("fashion.safetensors")

# --- Python: scikit-learn ---
from mlpx.sklearn import MLPClassifier

clf = MLPClassifier(hidden_layer_sizes=(256, 128), max_iter=5, random_state=0)
clf.fit(x[:10000], y[:10000])
print(clf.score(xt, yt), clf.predict_proba(xt[:2]).round(2))
# --- end ---

assert clf.score(xt, yt) > 0.8, clf.score(xt, yt)

try:
    import torch
except ImportError:
    print("skipped: torch is not installed (the torch half)")
    sys.exit(77)

# --- Python: torch ---
import torch

logits = model.logits(torch.from_numpy(xt))    # torch in, torch out (no copy in)
weights = model.state_dict()                   # numpy arrays: layers.{i}.weight / .bias
net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                          torch.nn.ReLU(), torch.nn.Linear(128, 10))
net.load_state_dict({f"{2 * i}.{kind}": torch.from_numpy(weights[f"layers.{i}.{kind}"])
                     for i in range(3) for kind in ("weight", "bias")})
# --- end ---

with torch.no_grad():
    torch.testing.assert_close(net(torch.from_numpy(xt)), logits, rtol=1e-4, atol=1e-4)
print("python_example: ok")
