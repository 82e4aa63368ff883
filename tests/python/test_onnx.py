"""ONNX export (mlpx export, Model.export_onnx; docs/deploy.md): each exported model runs in
ONNX Runtime and gives what `mlpx predict` gives, within 1e-5 relative, for every activation
the tool knows, every loss head, and a short run of the shipped recipe. ONNX Runtime comes from
PyPI into the build's virtual environment (`make deps`); without it these tests skip."""
import gzip
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import mlpx

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (make deps puts "
                          "it into build-venv)")
if not mlpx._mlpx.onnx_export_available():
    pytest.skip("this mlpx was built without ONNX export (libonnx-dev)", allow_module_level=True)

ROOT = pathlib.Path(__file__).resolve().parents[2]
RTOL = 1e-5


def run(cli, *args, ok=True):
    result = subprocess.run([cli, *map(str, args)], capture_output=True, text=True)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def onnx_outputs(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (value,) = session.run(None, {"input": x.astype(np.float32)})
    return value


def assert_close(found, expected, what):
    """|found - expected| <= 1e-5 |expected|, each output relative to the largest magnitude in
    its row: ONNX Runtime's GEMM sums in another order than OpenBLAS, so an output that cancels
    to near zero differs by rounding that is relative to the row's scale, not to itself."""
    assert found.shape == expected.shape, what
    scale = np.maximum(np.abs(expected), np.abs(expected).max(axis=1, keepdims=True))
    error = np.abs(found.astype(np.float64) - expected) / np.maximum(scale, 1e-30)
    print(f"{what}: max relative error {error.max():.3g}")
    assert error.max() <= RTOL, f"{what}: max relative error {error.max():.3g} > {RTOL}"


def predict(cli, tmp_path, model, x, *options):
    np.save(tmp_path / "predict_x.npy", x)
    run(cli, "predict", "--model", model, "--input", tmp_path / "predict_x.npy",
        "--output", tmp_path / "predict_y.npy", "--device", "cpu", *options)
    return np.load(tmp_path / "predict_y.npy").astype(np.float64)


def known_activations(cli, tmp_path):
    """Every activation the tool accepts, from its own error message for an unknown one: an
    activation added to mlpx is exported and checked here without editing this file."""
    config = {"model": {"layers": [{"units": 4, "activation": "?"}]}}
    (tmp_path / "probe.json").write_text(json.dumps(config))
    err = run(cli, "train", "--config", tmp_path / "probe.json", ok=False).stderr
    match = re.search(r"expected ([a-z_, ]+) or ([a-z_]+), found '\?'", err)
    assert match, err
    return match.group(1).split(", ") + [match.group(2)]


def train(cli, tmp_path, name, x, y, layers, loss, normalize="auto", epochs=2):
    np.save(tmp_path / f"{name}_x.npy", x)
    np.save(tmp_path / f"{name}_y.npy", y)
    config = {
        "seed": 1, "device": "cpu",
        "data": {"source": "files", "train": {"x": f"{name}_x.npy", "y": f"{name}_y.npy"},
                 "validation_split": 0.0, "normalize": normalize},
        "model": {"layers": layers}, "loss": loss,
        "optimizer": {"type": "adam", "lr": 0.01},
        "train": {"epochs": epochs, "batch_size": 32},
        "output": {"checkpoint": f"{name}.safetensors", "log": f"{name}.jsonl"},
    }
    (tmp_path / f"{name}.json").write_text(json.dumps(config))
    run(cli, "train", "--config", tmp_path / f"{name}.json", "--quiet")
    return tmp_path / f"{name}.safetensors"


def export(cli, model, out, *args):
    return run(cli, "export", "--model", model, "--onnx", out, *args)


def fashion_mnist_rows(rows):
    """The first `rows` training images (uint8 [rows, 784]) and labels of Fashion-MNIST."""
    folder = pathlib.Path("/usr/share/datasets/fashion-mnist")
    images, labels = folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz"
    if not (images.exists() and labels.exists()):
        rng = np.random.default_rng(0)
        return (rng.integers(0, 256, size=(rows, 784), dtype=np.uint8),
                rng.integers(0, 10, size=rows).astype(np.int64))
    with gzip.open(images) as f:  # IDX: a 16-byte header, then the pixels row by row
        x = np.frombuffer(f.read(16 + rows * 784)[16:], dtype=np.uint8).reshape(rows, 784)
    with gzip.open(labels) as f:  # an 8-byte header, then one byte per label
        y = np.frombuffer(f.read(8 + rows)[8:], dtype=np.uint8).astype(np.int64)
    return x, y


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(200, 6)) * [1, 2, 3, 4, 5, 6] + [0, 1, -2, 3, 0, 5]).astype(np.float32)
    labels = (x[:, 0] + x[:, 1] > 1).astype(np.int64) + (x[:, 2] > 0)
    return x, labels


def test_every_activation_matches_predict(cli, tmp_path, data):
    x, labels = data
    activations = known_activations(cli, tmp_path)
    assert {"relu", "sigmoid", "tanh", "leaky_relu", "elu", "identity"} <= set(activations)
    for act in activations:
        layers = [{"units": 12, "activation": act, "dropout": 0.1},
                  {"units": 10, "activation": act},
                  {"units": 3, "activation": "identity"}]
        if act in ("leaky_relu", "elu"):
            layers[1]["alpha"] = 0.3  # a layer's own alpha, beside the default one
        model = train(cli, tmp_path, act, x, labels, layers, "cross_entropy")
        export(cli, model, tmp_path / f"{act}.onnx")
        # standardized float features: the statistics are inside the graph
        assert_close(onnx_outputs(tmp_path / f"{act}.onnx", x), predict(cli, tmp_path, model, x),
                     act)


def test_norms_bias_free_linear_and_residual_layers_match_predict(cli, tmp_path, data):
    """LayerNormalization, BatchNormalization with the running statistics (eval form), a Gemm
    without a bias and the residual Add give what `mlpx predict` gives."""
    x, labels = data
    layers = [{"units": 12, "activation": "gelu", "norm": "batch", "bias": False},
              {"units": 12, "activation": "tanh", "norm": "layer", "residual": True,
               "dropout": 0.1},
              {"units": 12, "activation": "gelu_tanh", "norm": "batch", "norm_eps": 1e-3,
               "norm_momentum": 0.3, "residual": True},
              {"units": 3, "activation": "identity"}]
    model = train(cli, tmp_path, "norms", x, labels, layers, "cross_entropy")
    export(cli, model, tmp_path / "norms.onnx")
    assert_close(onnx_outputs(tmp_path / "norms.onnx", x), predict(cli, tmp_path, model, x),
                 "norms")
    # Layer norm needs ONNX's LayerNormalization (opset 17): an older opset is a clear error.
    old = run(cli, "export", "--model", model, "--onnx", tmp_path / "old.onnx", "--opset", "16",
              ok=False)
    assert old.returncode != 0 and "expected --opset 17 or newer" in old.stderr, old.stderr


def test_every_opset_runs_every_activation(cli, tmp_path, data):
    """One model with every activation in a row, exported at each opset the tool takes."""
    x, labels = data
    layers = [{"units": 9, "activation": act} for act in known_activations(cli, tmp_path)]
    model = train(cli, tmp_path, "chain", x, labels,
                  layers + [{"units": 3, "activation": "identity"}], "cross_entropy", epochs=1)
    expected = predict(cli, tmp_path, model, x)
    for opset in range(13, 18):
        export(cli, model, tmp_path / f"o{opset}.onnx", "--opset", opset)
        assert_close(onnx_outputs(tmp_path / f"o{opset}.onnx", x), expected, f"opset {opset}")


@pytest.mark.parametrize("loss", ["cross_entropy", "kl_div", "bce", "mse", "sse"])
def test_every_loss_head_matches_predict(cli, tmp_path, data, loss):
    x, labels = data
    rng = np.random.default_rng(3)
    targets = {
        "cross_entropy": labels,
        "kl_div": rng.dirichlet(np.ones(3), size=len(x)).astype(np.float32),
        "bce": (rng.random((len(x), 3)) < 0.4).astype(np.float32),
        "mse": rng.normal(size=(len(x), 3)).astype(np.float32),
        "sse": rng.normal(size=(len(x), 3)).astype(np.float32),
    }[loss]
    model = train(cli, tmp_path, loss, x, targets, [{"units": 16, "activation": "tanh"},
                                                   {"units": 3, "activation": "identity"}], loss)
    expected = predict(cli, tmp_path, model, x)
    expected_raw = predict(cli, tmp_path, model, x, "--raw")
    export(cli, model, tmp_path / "raw.onnx", "--output", "raw")
    export(cli, model, tmp_path / "auto.onnx")
    # auto is what mlpx predict gives (probabilities for cross_entropy and bce), raw what
    # mlpx predict --raw gives.
    assert_close(onnx_outputs(tmp_path / "auto.onnx", x), expected, loss + " auto")
    assert_close(onnx_outputs(tmp_path / "raw.onnx", x), expected_raw, loss + " raw")
    if loss == "cross_entropy":
        e = np.exp(expected_raw - expected_raw.max(1, keepdims=True))
        assert_close(expected, e / e.sum(1, keepdims=True), "predict's softmax")
    elif loss == "bce":
        assert_close(expected, 1 / (1 + np.exp(-expected_raw)), "predict's sigmoid")
    else:
        np.testing.assert_array_equal(expected, expected_raw)
    if loss == "kl_div":  # asked for: softmax over each row
        export(cli, model, tmp_path / "p.onnx", "--output", "probabilities")
        e = np.exp(expected_raw - expected_raw.max(1, keepdims=True))
        assert_close(onnx_outputs(tmp_path / "p.onnx", x), e / e.sum(1, keepdims=True),
                     loss + " probabilities")
    elif loss in ("mse", "sse"):
        bad = run(cli, "export", "--model", model, "--onnx", tmp_path / "p.onnx",
                  "--output", "probabilities", ok=False)
        assert bad.returncode == 1 and bad.stderr.count("\n") == 1
        assert "expected a classification loss" in bad.stderr and loss in bad.stderr
        assert not (tmp_path / "p.onnx").exists()


def test_recipe_checkpoint_uint8_inputs_metadata_and_dynamic_batch(cli, tmp_path):
    """The shipped recipe (configs/fashion-mnist.json, what `mlpx train` runs without a config),
    one epoch: on Fashion-MNIST's uint8 images the /255 scaling is inside the graph, so the
    exported model takes the raw pixel values as `mlpx predict` does. (Without Debian's
    dataset-fashion-mnist the recipe trains on the synthetic set, standardized.)"""
    model = tmp_path / "recipe.safetensors"
    run(cli, "train", "--epochs", 1, "--device", "cpu", "--checkpoint", model, "--log",
        tmp_path / "recipe.jsonl", "--quiet")
    out = export(cli, model, tmp_path / "recipe.onnx", "--opset", "17")
    assert "output probabilities [batch, 10]" in out.stderr and "recipe.jsonl" in out.stderr
    features = int(re.search(r"input float32 \[batch, (\d+)\]", out.stderr).group(1))
    fashion = features == 784
    if fashion:
        x, _ = fashion_mnist_rows(300)
    else:
        x = np.random.default_rng(0).normal(size=(300, features)).astype(np.float32)
    expected = predict(cli, tmp_path, model, x)
    for rows in (1, 7, 300):  # the batch dimension is dynamic
        assert_close(onnx_outputs(tmp_path / "recipe.onnx", x[:rows].astype(np.float32)),
                     expected[:rows], f"recipe, {rows} rows")
    session = ort.InferenceSession(str(tmp_path / "recipe.onnx"),
                                   providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape) == ("input", "tensor(float)", ["batch", features])
    assert (outp.name, outp.shape) == ("output", ["batch", 10])
    meta = session.get_modelmeta()
    assert meta.producer_name == "mlpx"
    props = meta.custom_metadata_map
    assert props["mlpx.version"] == mlpx.__version__
    assert json.loads(props["mlpx.config"])["model"]["layers"][0]["units"] == 256
    metrics = json.loads(props["mlpx.metrics"])
    assert metrics["epoch"] == 1 and "train_loss" in metrics
    assert ("divided by 255" if fashion else "standardized") in props["mlpx.input"]
    # --input-scale none: the graph takes the model's own features (pixels / 255).
    export(cli, model, tmp_path / "scaled.onnx", "--input-scale", "none")
    scaled = x.astype(np.float32) / (255 if fashion else 1)
    assert_close(onnx_outputs(tmp_path / "scaled.onnx", scaled), expected, "--input-scale none")
    # From Python: the same checkpoint takes what Model.predict takes (pixels / 255), or with
    # input_scale "auto" the raw pixels, as above.
    loaded = mlpx.load(model, device="cpu")
    loaded.export_onnx(tmp_path / "py.onnx")
    assert_close(onnx_outputs(tmp_path / "py.onnx", scaled), expected, "recipe from python")
    loaded.export_onnx(tmp_path / "py8.onnx", input_scale="auto")
    assert_close(onnx_outputs(tmp_path / "py8.onnx", x.astype(np.float32)), expected,
                 "recipe from python, uint8 inputs")


def test_bad_opset_and_malformed_checkpoint_are_one_line_errors(cli, tmp_path, data):
    x, labels = data
    model = train(cli, tmp_path, "small", x, labels, [{"units": 3, "activation": "identity"}],
                  "cross_entropy", epochs=1)
    for opset in ("12", "99"):
        bad = run(cli, "export", "--model", model, "--onnx", tmp_path / "o.onnx", "--opset",
                  opset, ok=False)
        assert bad.returncode == 1 and bad.stderr.count("\n") == 1, bad.stderr
        assert "expected an ONNX opset from 13 to" in bad.stderr and opset in bad.stderr
    bad = run(cli, "export", "--model", model, "--onnx", tmp_path / "o.onnx", "--output", "logits",
              ok=False)
    assert "expected auto, probabilities or raw, found 'logits'" in bad.stderr
    bad = run(cli, "export", "--model", model, "--onnx", tmp_path / "o.onnx", "--input-scale",
              "256", ok=False)
    assert "export: --input-scale: expected auto, 255 or none, found '256'" in bad.stderr
    assert not (tmp_path / "o.onnx").exists()
    # A truncated checkpoint: export refuses it with predict's own words.
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(model.read_bytes()[:-40])
    np.save(tmp_path / "in.npy", x)
    refused = run(cli, "predict", "--model", broken, "--input", tmp_path / "in.npy", "--output",
                  tmp_path / "out.npy", ok=False)
    also = run(cli, "export", "--model", broken, "--onnx", tmp_path / "o.onnx", ok=False)
    assert refused.returncode == also.returncode == 1
    assert refused.stderr == also.stderr and refused.stderr.startswith("error: ")
    assert not (tmp_path / "o.onnx").exists()


def test_model_export_onnx_from_python(tmp_path, blobs):
    """Model.export_onnx: a trained model with standardized inputs (mlpx.train) takes the
    inputs predict() takes and gives predict()'s outputs; a fitted one carries its history's
    last epoch as its metrics."""
    x, y, xv, _ = blobs
    np.save(tmp_path / "x.npy", x * 10 + 3)
    np.save(tmp_path / "y.npy", y)
    config = {"seed": 2, "device": "cpu",
              "data": {"source": "files", "train": {"x": "x.npy", "y": "y.npy"},
                       "validation_split": 0.0},
              "model": {"layers": [{"units": 16, "activation": "elu"},
                                   {"units": 3, "activation": "identity"}]},
              "train": {"epochs": 2, "batch_size": 32},
              "output": {"checkpoint": "", "log": ""}}
    (tmp_path / "c.json").write_text(json.dumps(config))
    trained = mlpx.train(tmp_path / "c.json", progress=False).model
    info = trained.export_onnx(tmp_path / "m.onnx", output="raw")
    assert info["output"] == "raw" and info["bytes"] == (tmp_path / "m.onnx").stat().st_size
    props = ort.InferenceSession(str(tmp_path / "m.onnx")).get_modelmeta().custom_metadata_map
    assert "standardized inside the model" in props["mlpx.input"]
    assert_close(onnx_outputs(tmp_path / "m.onnx", xv * 10 + 3),
                 trained.logits(xv * 10 + 3).astype(np.float64), "python raw")

    fitted = mlpx.Model(inputs=8, layers=[(16, "elu"), (3, "identity")], seed=2)
    fitted.fit(x, y, epochs=2, batch_size=32)
    assert fitted.export_onnx(tmp_path / "p.onnx")["output"] == "probabilities"
    props = ort.InferenceSession(str(tmp_path / "p.onnx")).get_modelmeta().custom_metadata_map
    assert json.loads(props["mlpx.metrics"])["epoch"] == 2 and props["mlpx.step"] == "16"
    logits = fitted.logits(xv).astype(np.float64)
    e = np.exp(logits - logits.max(1, keepdims=True))
    assert_close(onnx_outputs(tmp_path / "p.onnx", xv), e / e.sum(1, keepdims=True), "python")
    assert_close(onnx_outputs(tmp_path / "p.onnx", xv), fitted.predict(xv).astype(np.float64),
                 "python predict")
    with pytest.raises(mlpx.DataError, match="expected an ONNX opset from 13 to"):
        fitted.export_onnx(tmp_path / "bad.onnx", opset=9)
    assert not (tmp_path / "bad.onnx").exists()


def example_model(cli, tmp_path, data):
    x, labels = data
    model = train(cli, tmp_path, "example", x, labels, [{"units": 16, "activation": "relu"},
                                                        {"units": 3, "activation": "identity"}],
                  "cross_entropy", epochs=1)
    export(cli, model, tmp_path / "model.onnx")
    return x, predict(cli, tmp_path, model, x)


def test_deploy_md_shows_the_examples():
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for name, fence in (("serve.py", "python"), ("serve.cpp", "cpp")):
        text = (ROOT / "examples" / "onnx" / name).read_text()
        assert f"```{fence}\n{text}```" in docs, f"paste examples/onnx/{name} into docs/deploy.md"


def test_python_example_serves_the_exported_model(cli, tmp_path, data):
    x, expected = example_model(cli, tmp_path, data)
    np.save(tmp_path / "inputs.npy", x)
    result = subprocess.run([sys.executable, ROOT / "examples" / "onnx" / "serve.py",
                             "model.onnx", "inputs.npy"], cwd=tmp_path, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert "mlpx " + mlpx.__version__ in result.stdout and "row 2: class" in result.stdout
    assert_close(np.load(tmp_path / "onnx_outputs.npy"), expected, "examples/onnx/serve.py")


def onnxruntime_headers():
    """The folder of onnxruntime_cxx_api.h: ONNXRUNTIME_INCLUDE_DIR, else a system one."""
    for folder in (os.environ.get("ONNXRUNTIME_INCLUDE_DIR"), "/usr/include/onnxruntime",
                   "/usr/local/include/onnxruntime", "/usr/local/include"):
        if folder and (pathlib.Path(folder) / "onnxruntime_cxx_api.h").exists():
            return folder
    return None


def test_cpp_example_serves_the_exported_model(cli, tmp_path, data):
    headers = onnxruntime_headers()
    if headers is None:
        pytest.skip("ONNX Runtime's C/C++ headers are not here: Debian 12 has no ONNX Runtime "
                    "and the PyPI wheel ships its library (capi/libonnxruntime.so.*) without "
                    "them; set ONNXRUNTIME_INCLUDE_DIR to a release's include/ folder")
    capi = pathlib.Path(ort.__file__).parent / "capi"
    (library,) = capi.glob("libonnxruntime.so.*")
    binary = tmp_path / "serve"
    subprocess.run(["c++", "-std=c++17", "-O1", f"-I{headers}",
                    ROOT / "examples" / "onnx" / "serve.cpp", "-o", binary, library,
                    f"-Wl,-rpath,{capi}"], check=True)
    x, expected = example_model(cli, tmp_path, data)
    x.astype(np.float32).tofile(tmp_path / "inputs.f32")
    result = run(str(binary), tmp_path / "model.onnx", tmp_path / "inputs.f32", len(x))
    found = np.array([[float(v) for v in line.split()] for line in result.stdout.splitlines()])
    assert_close(found, expected, "examples/onnx/serve.cpp")
