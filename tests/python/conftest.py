"""Fixtures of the Python package's tests (run by ctest: tests/CMakeLists.txt; by hand:
PYTHONPATH=<build>/python MLPX_CLI=<build>/mlpx python3 -m pytest tests/python)."""
import os
import shutil

import numpy as np
import pytest


@pytest.fixture
def blobs():
    """A small 3-class problem: x float32 [240, 8], y int64 [240], and a validation split."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 3
    y = rng.integers(0, 3, size=300)
    x = (centres[y] + rng.normal(size=(300, 8))).astype(np.float32)
    return x[:240], y[:240], x[240:], y[240:]


@pytest.fixture
def cli():
    """The mlpx binary of the same build (MLPX_CLI), else the one on PATH; skips without."""
    path = os.environ.get("MLPX_CLI") or shutil.which("mlpx")
    if not path or not os.path.exists(path):
        pytest.skip("the mlpx command-line tool is not there (set MLPX_CLI)")
    return path
