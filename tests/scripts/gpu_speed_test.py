#!/usr/bin/env python3
"""scripts/gpu-speed.py's closing table compares like with like: each row is a fraction of its
own precision's ceiling (the square GEMM of that precision on the device) and of the PyTorch
row of the same model and precision, never fp32's. No GPU or PyTorch needed: the table is
computed from given figures.

    python3 tests/scripts/gpu_speed_test.py      # exit 0 when every check passes
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "gpu_speed", os.path.join(HERE, "..", "..", "scripts", "gpu-speed.py"))
speed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(speed)

failures = 0


def check(what, ok):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    failures += not ok


# A device whose bf16 GEMM is 16x its fp32 one; a GEMM-bound model (large).
ceilings = {"copy_GBps": 4000.0, "fp32_TFLOPs": 50.0, "tf32_TFLOPs": 400.0, "bf16_TFLOPs": 800.0}
models = {"large": speed.MODELS["large"]}
figures = {
    ("large", "fp32", "mlpx"): 100000.0,
    ("large", "bf16", "mlpx"): 800000.0,
    ("large", "fp32", "torch eager"): 50000.0,
    ("large", "fp32", "torch graph"): 80000.0,
    ("large", "bf16", "torch eager"): 1600000.0,
    ("large", "tf32", "mlpx"): None,  # a failed measurement stays a row, without figures
}
rows = {(r[0], r[1], r[2]): r for r in speed.table(models, ceilings, figures)}
m = models["large"]
fp32_ceiling = speed.model_ceiling(m, "fp32", ceilings)
bf16_ceiling = speed.model_ceiling(m, "bf16", ceilings)
check("the bf16 ceiling is the bf16 GEMM's (16x fp32's for a GEMM-bound model)",
      abs(bf16_ceiling / fp32_ceiling - 16.0) < 1e-9)
check("mlpx bf16 against the bf16 ceiling",
      abs(rows[("large", "bf16", "mlpx")][4] - 800000.0 / bf16_ceiling) < 1e-12)
check("mlpx fp32 against the fp32 ceiling",
      abs(rows[("large", "fp32", "mlpx")][4] - 100000.0 / fp32_ceiling) < 1e-12)
check("mlpx bf16 against PyTorch bf16 (autocast), not fp32: 0.5",
      abs(rows[("large", "bf16", "mlpx")][5] - 0.5) < 1e-12)
check("mlpx fp32 against the faster PyTorch fp32 row: 1.25",
      abs(rows[("large", "fp32", "mlpx")][5] - 1.25) < 1e-12)
check("a failed row has no ratios", rows[("large", "tf32", "mlpx")][3:] == (None, None, None))
check("without ceilings (no PyTorch), no ceiling ratio",
      speed.table(models, {}, {("large", "fp32", "mlpx"): 1.0})[0][4] is None)
check("every row names its precision", all(r[1] in speed.PRECISIONS for r in rows.values()))
print("gpu_speed_test: " + ("PASS" if failures == 0 else f"{failures} FAILED"))
sys.exit(1 if failures else 0)
