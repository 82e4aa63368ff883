"""An exported mlpx model in ONNX Runtime: python3 serve.py MODEL.onnx INPUTS.npy
(docs/deploy.md). Writes the outputs to onnx_outputs.npy and prints the first rows' classes."""
import sys

import numpy as np
import onnxruntime as ort

model_path, inputs_path = sys.argv[1], sys.argv[2]
session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
print("mlpx", meta["mlpx.version"], "| input:", meta["mlpx.input"])
print("output:", meta["mlpx.output"], "| metrics:", meta.get("mlpx.metrics", "none"))

# The raw features, as `mlpx predict` reads them; any number of rows.
x = np.load(inputs_path).astype(np.float32)
(y,) = session.run(["output"], {"input": x})
np.save("onnx_outputs.npy", y)
for i, row in enumerate(y[:3]):
    print(f"row {i}: class {row.argmax()} ({row.max():.3f})")
