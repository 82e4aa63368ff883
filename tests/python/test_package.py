"""The package itself: version, CUDA queries, exception types, the shipped type stubs."""
import ast
import os
import re

import mlpx
from mlpx import _mlpx


def test_version_matches_the_cmake_project():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "CMakeLists.txt")) as f:
        version = re.search(r"project\(mlpx VERSION ([0-9.]+)", f.read()).group(1)
    assert mlpx.__version__ == version


def test_cuda_queries_agree():
    assert isinstance(mlpx.cuda_available(), bool)
    assert mlpx.cuda_available() == (mlpx.cuda_device_count() > 0)
    if mlpx.cuda_available():
        assert mlpx.built_with_cuda()


def test_exception_hierarchy():
    assert issubclass(mlpx.Error, RuntimeError)
    for e in (mlpx.ConfigError, mlpx.DataError):
        assert issubclass(e, mlpx.Error) and issubclass(e, ValueError)
    assert mlpx.Error.__module__ == "mlpx"


def test_stub_names_every_binding_and_nothing_else():
    stub = os.path.join(os.path.dirname(_mlpx.__file__), "_mlpx.pyi")
    with open(stub) as f:
        tree = ast.parse(f.read())
    stubbed = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    public = {n for n in dir(_mlpx) if not n.startswith("_")}
    assert stubbed == public
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and not node.name.endswith("Error"):
            members = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            members |= {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
            members.discard("__init__")
            cls = getattr(_mlpx, node.name)
            assert members == {m for m in dir(cls) if not m.startswith("_")}, node.name


def test_package_ships_typing_marker():
    folder = os.path.dirname(mlpx.__file__)
    assert os.path.exists(os.path.join(folder, "py.typed"))
    assert os.path.exists(os.path.join(folder, "_mlpx.pyi"))


def test_load_array_reads_what_the_command_line_reads(tmp_path):
    import numpy as np
    import pytest
    for a in (np.arange(12, dtype=np.uint8).reshape(3, 4), np.linspace(0, 1, 6, dtype=np.float32),
              np.array([[1, -2], [3, 4]], dtype=np.int64)):
        np.save(tmp_path / "a.npy", a)
        back = mlpx.load_array(tmp_path / "a.npy")
        assert back.dtype == a.dtype and np.array_equal(back, a)
    (tmp_path / "a.csv").write_text("x,y\n1,2\n3,4.5\n")
    assert np.array_equal(mlpx.load_array(str(tmp_path / "a.csv")), [[1, 2], [3, 4.5]])
    with pytest.raises(mlpx.Error, match="missing.npy"):
        mlpx.load_array(tmp_path / "missing.npy")
