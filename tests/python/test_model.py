"""mlpx.Model: fit, predict, evaluate, save / load, state_dict, and bad inputs."""
import numpy as np
import pytest

import mlpx
from mlpx import _mlpx


def small_model(**kw):
    return mlpx.Model(inputs=8, layers=[(16, "relu"), (3, "identity")], **kw)


def test_construction_and_description():
    m = small_model(seed=1)
    assert (m.inputs, m.outputs, m.device) == (8, 3, "cpu")
    assert m.layers == [(16, "relu", 0.0), (3, "identity", 0.0)]
    assert m.num_params == 8 * 16 + 16 + 16 * 3 + 3
    assert "16" in m.summary() and "Model(inputs=8" in repr(m)
    assert m.config["model"]["layers"][0] == {**m.config["model"]["layers"][0], "units": 16}
    leaky = mlpx.Model(inputs=4, layers=[(5, "leaky_relu", 0.2), {"units": 2, "activation": "identity"}])
    assert leaky.layers[0] == (5, "leaky_relu", pytest.approx(0.2))


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = small_model(seed=1), small_model(seed=1), small_model(seed=2)
    for k, v in a.state_dict().items():
        assert np.array_equal(v, b.state_dict()[k])
    assert not np.array_equal(a.state_dict()["layers.0.weight"], c.state_dict()["layers.0.weight"])


def test_fit_learns_and_reports_each_epoch(blobs):
    x, y, xv, yv = blobs
    m = small_model()
    before = m.evaluate(xv, yv)
    seen = []
    history = m.fit(x, y, validation=(xv, yv), epochs=4, batch_size=32, optimizer="adam",
                    lr=0.01, callbacks=[seen.append])
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and seen == history == m.history
    after = m.evaluate(xv, yv)
    assert after["loss"] < before["loss"] and after["accuracy"] > 0.9
    assert history[-1]["val_accuracy"] == pytest.approx(after["accuracy"])
    assert history[-1]["steps"] == 4 * 8  # 240 rows in batches of 32
    out = m.predict(xv)
    assert isinstance(out, np.ndarray) and out.shape == (60, 3) and out.dtype == np.float32
    assert np.array_equal(m(xv), out)
    assert (out.argmax(1) == yv).mean() == pytest.approx(after["accuracy"])


def test_a_callback_returning_false_stops(blobs):
    x, y, _, _ = blobs
    m = small_model()
    history = m.fit(x, y, epochs=10, callbacks=[lambda metrics: metrics["epoch"] < 2])
    assert len(history) == 2


def test_optimizer_dict_schedule_and_sgd(blobs):
    x, y, _, _ = blobs
    m = small_model()
    h = m.fit(x, y, epochs=3, batch_size=0, optimizer={"type": "sgd", "lr": 0.5, "momentum": 0.9},
              schedule={"type": "step", "step_size": 1, "gamma": 0.5})
    assert [e["lr"] for e in h] == [0.5, 0.25, 0.125]
    assert h[-1]["steps"] == 3  # full batch: one step an epoch
    assert m.config["optimizer"]["type"] == "sgd"


def test_training_knobs(blobs):
    x, y, xv, yv = blobs
    m = small_model(loss={"type": "cross_entropy", "label_smoothing": 0.1})
    assert m.config["loss"] == {"type": "cross_entropy", "label_smoothing": 0.1}
    h = m.fit(x, y, validation=(xv, yv), epochs=2, batch_size=32,
              optimizer={"type": "adamw", "lr": 0.01, "weight_decay": 0.01, "decay": "weights"},
              schedule={"type": "onecycle"}, clip_grad_norm=1.0, accumulate_steps=3)
    assert h[-1]["steps"] == 2 * 3  # 8 batches an epoch in groups of 3
    assert all(e["grad_norm"] > 0 for e in h)
    p = small_model().fit(x, y, validation=(xv, yv), epochs=3, lr=0.01,
                          schedule={"type": "plateau", "patience": 0, "factor": 0.5,
                                    "metric": "val_accuracy"})
    assert p[0]["lr"] == 0.01 and all(b["lr"] <= a["lr"] for a, b in zip(p, p[1:]))


def test_regression_with_mse():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0])).astype(np.float32)
    m = mlpx.Model(inputs=4, layers=[(1, "identity")], loss="mse")
    m.fit(x, y, epochs=30, batch_size=20, lr=0.05)
    e = m.evaluate(x, y)
    assert e["regression"] and e["r2"] > 0.95 and np.isnan(e["accuracy"])


def test_task_regression_for_arrays_whatever_the_configs_data_source():
    """fit(task="regression") on arrays: the config's data.source (fashion-mnist by default)
    says where `mlpx train` reads its data, not what these arrays are."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = np.stack([x @ np.array([1.0, -2.0, 0.5, 0.0]), x[:, 0] - x[:, 3]], 1).astype(np.float32)
    m = mlpx.Model(inputs=4, layers=[(2, "identity")], loss="mse")
    assert m.config["data"]["source"] != "files"
    h = m.fit(x, y, epochs=30, batch_size=20, lr=0.05, task="regression")
    assert np.isfinite(h[-1]["train_r2"]) and np.isnan(h[-1]["train_accuracy"])
    e = m.evaluate(x, y)
    assert e["regression"] and e["r2"] > 0.95


def test_sample_weight_weighs_each_batchs_loss(blobs):
    """Each batch's loss is sum_i w_i l_i / sum_i w_i: unit weights train exactly as none; in
    one full batch, weight 2 on a row trains as that row twice, weight 0 as no row."""
    x, y, _, _ = blobs
    def trained(xs, ys, **kw):
        m = small_model(seed=3)
        h = m.fit(xs, ys, epochs=3, batch_size=0, optimizer="sgd", lr=0.1, **kw)
        return h, m.state_dict()
    h0, plain = trained(x, y)
    h1, unit = trained(x, y, sample_weight=np.ones(len(y)))
    assert h1[-1]["train_loss"] == h0[-1]["train_loss"]
    assert all(np.array_equal(plain[k], unit[k]) for k in plain)
    w = np.ones(len(y), np.float32)
    w[:40] = 2.0
    _, weighted = trained(x, y, sample_weight=w)
    _, twice = trained(np.concatenate([x, x[:40]]), np.concatenate([y, y[:40]]))
    for k in plain:
        np.testing.assert_allclose(weighted[k], twice[k], rtol=1e-4, atol=1e-6)
    w[:40] = 0.0
    _, dropped = trained(x, y, sample_weight=w)
    _, without = trained(x[40:], y[40:])
    for k in plain:
        np.testing.assert_allclose(dropped[k], without[k], rtol=1e-4, atol=1e-6)
    m = small_model()
    with pytest.raises(mlpx.DataError, match=r"sample_weight: expected finite weights >= 0, found -1 at row 2"):
        m.fit(x, y, sample_weight=np.where(np.arange(len(y)) == 2, -1.0, 1.0))
    with pytest.raises(mlpx.DataError, match=r"sample_weight: expected one weight per row"):
        m.fit(x, y, sample_weight=np.ones(3))
    with pytest.raises(mlpx.DataError, match=r"found all \d+ weights 0"):
        m.fit(x, y, sample_weight=np.zeros(len(y)))


def test_save_load_roundtrip(tmp_path, blobs):
    x, y, xv, yv = blobs
    m = small_model()
    m.fit(x, y, epochs=2)
    m.save(tmp_path / "m.safetensors")
    back = mlpx.load(tmp_path / "m.safetensors", device="cpu")
    assert np.array_equal(back.predict(xv), m.predict(xv))
    assert back.layers == m.layers and back.config["train"]["epochs"] == 2
    fresh = small_model()
    fresh.save(str(tmp_path / "fresh.safetensors"))  # never fitted: no optimizer state
    assert np.array_equal(mlpx.load(tmp_path / "fresh.safetensors").predict(xv), fresh.predict(xv))
    with pytest.raises(FileNotFoundError):
        mlpx.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x01" * 20)
    with pytest.raises(mlpx.Error):
        mlpx.load(tmp_path / "junk.safetensors")


def test_state_dict_roundtrip_and_checks(blobs):
    _, _, xv, _ = blobs
    a, b = small_model(seed=1), small_model(seed=2)
    sd = a.state_dict()
    assert list(sd) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert sd["layers.0.weight"].shape == (16, 8) and sd["layers.1.bias"].shape == (3,)
    sd["layers.0.weight"][0, 0] += 1  # a copy: the model is unchanged
    assert not np.array_equal(a.state_dict()["layers.0.weight"], sd["layers.0.weight"])
    b.load_state_dict(a.state_dict())
    assert np.array_equal(b.predict(xv), a.predict(xv))
    before = b.state_dict()
    bad = dict(a.state_dict())
    bad["layers.1.bias"] = np.zeros(4, np.float32)
    with pytest.raises(mlpx.DataError, match=r"layers.1.bias.*expected.*\[3\].*found float32 \[4\]"):
        b.load_state_dict(bad)
    for k, v in b.state_dict().items():  # checked before anything changed
        assert np.array_equal(v, before[k])
    with pytest.raises(mlpx.DataError, match="missing 'layers.1.bias'"):
        b.load_state_dict({k: v for k, v in a.state_dict().items() if k != "layers.1.bias"})
    with pytest.raises(mlpx.DataError, match="unexpected tensor 'layers.2.weight'"):
        b.load_state_dict({**a.state_dict(), "layers.2.weight": np.zeros((1, 3), np.float32)})
    with pytest.raises(mlpx.DataError, match="float64"):
        b.load_state_dict({k: v.astype(np.float64) for k, v in a.state_dict().items()})


def test_features_go_in_without_a_copy(blobs):
    x, y, _, _ = blobs
    m = small_model()
    x = x.copy()
    data = _mlpx.Data(m._net, m._net.config, x, y, "x", "y", "test")
    loss = _mlpx.evaluate(m._net, data, 4096)["loss"]
    x *= 10  # the data set reads the caller's memory
    assert _mlpx.evaluate(m._net, data, 4096)["loss"] != loss
    out = m.predict(x)
    assert out.flags["C_CONTIGUOUS"] and out.flags["OWNDATA"] is False  # owned by mlpx's tensor


@pytest.mark.parametrize("make_x, found", [
    (lambda x: x.astype(np.float64), "found float64 [240, 8]"),
    (lambda x: x[:, :5], "found float32 [240, 5] (not C-contiguous)"),
    (lambda x: np.asfortranarray(x), "(not C-contiguous)"),
    (lambda x: x[::2], "(not C-contiguous)"),
    (lambda x: x.reshape(-1), "found float32 [1920]"),
    (lambda x: np.ascontiguousarray(x[:, :5]), "found float32 [240, 5]"),
    (lambda x: x[:0], "found float32 [0, 8]"),
])
def test_bad_features_raise_data_error(blobs, make_x, found):
    x, y, _, _ = blobs
    m = small_model()
    bad = make_x(x)
    expected = "expected a C-contiguous float32 array [N, 8] (N >= 1), " + found
    for call in (lambda: m.predict(bad), lambda: m.fit(bad, y[: len(bad)]),
                 lambda: m.evaluate(bad, y[: len(bad)])):
        with pytest.raises(mlpx.DataError) as error:
            call()
        assert isinstance(error.value, ValueError)
        assert str(error.value).startswith("x: " + expected[:10]) and found in str(error.value)


@pytest.mark.parametrize("y_of, pattern", [
    (lambda y: y + 3, r"^y: expected labels in \[0, 3\), found 3 at row 0$"),
    (lambda y: y[:-1], "expected 240 rows to match x, found 239"),
    (lambda y: y.astype(bool), "found bool"),
    (lambda y: np.full(240, np.nan, np.float32), "finite"),
    (lambda y: y.reshape(-1, 1, 1).astype(np.float32), r"found float32 \[240, 1, 1\]"),
    (lambda y: y.astype(np.float32) + 0.5, "^y: expected integer class labels .*found 0.5 at row 0$"),
])
def test_bad_targets_raise_data_error(blobs, y_of, pattern):
    x, y, _, _ = blobs
    m = small_model()
    with pytest.raises(mlpx.DataError, match=pattern):
        m.fit(x, y_of(y))


def test_bad_model_and_fit_arguments_raise_config_error(blobs):
    x, y, _, _ = blobs
    with pytest.raises(mlpx.ConfigError, match="activation"):
        mlpx.Model(inputs=8, layers=[(3, "swish")])
    with pytest.raises(mlpx.ConfigError):
        mlpx.Model(inputs=8, layers=[(0, "relu"), (3, "identity")])
    with pytest.raises(mlpx.ConfigError):
        mlpx.Model(inputs=8, layers=["three"])
    with pytest.raises(mlpx.ConfigError, match="device"):
        mlpx.Model(inputs=8, layers=[(3, "identity")], device="tpu")
    m = small_model()
    with pytest.raises(mlpx.ConfigError, match="optimizer"):
        m.fit(x, y, optimizer="adamax")
    with pytest.raises(mlpx.ConfigError, match="lr"):
        m.fit(x, y, lr=-1.0)
    with pytest.raises(mlpx.ConfigError, match="batch_size"):
        m.fit(x, y, batch_size=-5)


@pytest.mark.skipif(not mlpx.cuda_available(), reason="no CUDA device (real or simulated)")
def test_cuda_model_matches_the_cpu(blobs):
    x, y, xv, yv = blobs
    cpu = small_model(seed=4)
    gpu = small_model(seed=4, device="cuda")
    assert gpu.device == "cuda:0" and cpu.to("cuda").device == "cuda:0"
    for m in (cpu, gpu):
        m.fit(x, y, epochs=1, batch_size=60, optimizer="sgd", lr=0.1)
    np.testing.assert_allclose(gpu.predict(xv), cpu.predict(xv), rtol=1e-4, atol=1e-4)
    assert gpu.evaluate(xv, yv)["samples"] == 60
    assert gpu.to("cpu").device == "cpu"


# ---- fit in several calls ----------------------------------------------------------------------

def continued_model():
    """A model whose training draws on every kind of carried state: Adam's moments and step
    count, a step schedule, the epoch-seeded shuffle and dropout masks."""
    return mlpx.Model(inputs=8, layers=[(16, "relu", {"dropout": 0.25}), (3, "identity")], seed=5)


FIT = dict(batch_size=32, optimizer="adam", lr=0.01, schedule={"type": "step", "step_size": 2,
                                                                 "gamma": 0.5})


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert np.array_equal(sa[k], sb[k]), k


def test_a_second_fit_continues_the_first(blobs):
    x, y, xv, yv = blobs
    whole = continued_model()
    h3 = whole.fit(x, y, validation=(xv, yv), epochs=3, **FIT)
    parts = continued_model()
    h2 = parts.fit(x, y, validation=(xv, yv), epochs=2, **FIT)
    # optimizer and schedule None: the ones of the first call.
    h1 = parts.fit(x, y, validation=(xv, yv), epochs=1, batch_size=32)
    assert_same_weights(parts, whole)
    assert [h["epoch"] for h in h2 + h1] == [1, 2, 3] and parts.history == h2 + h1
    assert [(h["lr"], h["train_loss"], h["val_loss"], h["steps"]) for h in h2 + h1] == \
           [(h["lr"], h["train_loss"], h["val_loss"], h["steps"]) for h in h3]
    assert parts.config["train"]["epochs"] == 3  # the run's total, as `mlpx train` counts
    # Giving the same optimizer and schedule again also continues.
    again = continued_model()
    again.fit(x, y, epochs=2, **FIT)
    again.fit(x, y, epochs=1, **FIT)
    assert_same_weights(again, whole)
    # A cosine decay over 3 epochs, in two calls, is the one of one call.
    cosine = {**FIT, "schedule": {"type": "cosine", "total_epochs": 3}}
    whole, parts = continued_model(), continued_model()
    whole.fit(x, y, epochs=3, **cosine)
    parts.fit(x, y, epochs=2, **cosine)
    parts.fit(x, y, epochs=1, **cosine)
    assert_same_weights(parts, whole)


def test_a_saved_fit_continues_after_load(tmp_path, blobs):
    x, y, _, _ = blobs
    whole = continued_model()
    whole.fit(x, y, epochs=3, **FIT)
    first = continued_model()
    first.fit(x, y, epochs=2, **FIT)
    first.save(tmp_path / "two.safetensors")
    loaded = mlpx.load(tmp_path / "two.safetensors")
    # Saving a loaded model keeps the checkpoint's optimizer state and counts.
    loaded.save(tmp_path / "again.safetensors")
    for path in ("two.safetensors", "again.safetensors"):
        back = mlpx.load(tmp_path / path)
        h = back.fit(x, y, epochs=1, batch_size=32)  # the checkpoint's optimizer and schedule
        assert [e["epoch"] for e in h] == [3] and h[0]["steps"] == 3 * 8
        assert_same_weights(back, whole)


def test_another_optimizer_or_lr_starts_afresh(blobs):
    x, y, _, _ = blobs
    for second in (dict(optimizer="sgd", lr=0.1), dict(lr=0.02),
                   dict(schedule={"type": "exponential", "gamma": 0.9})):
        m = continued_model()
        m.fit(x, y, epochs=2, **FIT)
        reference = continued_model()
        reference.load_state_dict(m.state_dict())
        kw = {**FIT, **second}
        h = m.fit(x, y, epochs=1, **kw)
        assert [e["epoch"] for e in h] == [1] and h[0]["steps"] == 8, second
        reference.fit(x, y, epochs=1, **kw)  # the same weights, never fitted: a fresh optimizer
        assert_same_weights(m, reference)


# ---- layers with dropout -----------------------------------------------------------------------

def test_layers_take_dropout_as_the_config_does(blobs):
    x, y, xv, _ = blobs
    forms = [[(16, "relu", {"dropout": 0.3}), (3, "identity")],
             [{"units": 16, "activation": "relu", "dropout": 0.3}, (3, "identity")],
             [[16, "relu", {"dropout": 0.3}], (3, "identity")]]
    models = [mlpx.Model(inputs=8, layers=f, seed=2) for f in forms]
    for m in models:
        assert [l["dropout"] for l in m.config["model"]["layers"]] == [0.3, 0.0]
        assert "(16, 'relu', {'dropout': 0.3}), (3, 'identity')" in repr(m)
        m.fit(x, y, epochs=1, batch_size=32)
    for m in models[1:]:
        assert_same_weights(m, models[0])
    leaky = mlpx.Model(inputs=8, layers=[(16, "leaky_relu", {"alpha": 0.2, "dropout": 0.1}),
                                         (3, "identity")])
    assert leaky.layers[0] == (16, "leaky_relu", pytest.approx(0.2))
    assert leaky.config["model"]["layers"][0]["dropout"] == 0.1
    # Training drops: the same fit without dropout ends elsewhere. Prediction never drops.
    plain = mlpx.Model(inputs=8, layers=[(16, "relu"), (3, "identity")], seed=2)
    plain.fit(x, y, epochs=1, batch_size=32)
    assert not np.array_equal(plain.predict(xv), models[0].predict(xv))
    assert np.array_equal(models[0].predict(xv), models[0].predict(xv))


def test_layers_take_norms_bias_and_residual_and_predict_in_eval_mode(blobs, tmp_path):
    """The layer keys norm, bias and residual as the config's; predict uses batch norm's running
    statistics (torch's eval mode), which a saved model keeps."""
    x, y, xv, _ = blobs
    m = mlpx.Model(inputs=8, layers=[(16, "gelu", {"norm": "batch", "bias": False}),
                                     (16, "tanh", {"norm": "layer", "residual": True}),
                                     (3, "identity")], seed=3)
    assert m.config["model"]["layers"][0]["norm"] == "batch"
    assert m.config["model"]["layers"][1]["residual"] is True
    assert "layers.0.bias" not in dict(m.state_dict())
    assert "layers.0.norm.weight" in dict(m.state_dict())
    m.fit(x, y, epochs=2, batch_size=32)
    # Eval mode: a row's prediction does not depend on the rows predicted with it.
    assert np.allclose(m.predict(xv[:1]), m.predict(xv)[:1], rtol=1e-5, atol=1e-6)
    m.save(tmp_path / "norms.safetensors")
    again = mlpx.load(tmp_path / "norms.safetensors")
    assert np.array_equal(again.predict(xv), m.predict(xv))
    with pytest.raises(mlpx.ConfigError, match=r"model.layers\[1\]: residual: expected units "
                                               r"equal to the layer's input width 16, found units 8"):
        mlpx.Model(inputs=8, layers=[(16, "relu"), (8, "relu", {"residual": True}),
                                     (3, "identity")])


def test_state_dict_carries_batch_norm_buffers_as_checkpoints_do(blobs, tmp_path):
    """state_dict() holds the running statistics and the batch count (int32 [1]) a checkpoint
    holds; load_state_dict takes them (torch's int64 scalar count too), or leaves them alone when
    none is given, and refuses a partial set."""
    x, y, xv, _ = blobs
    layers = [(16, "relu", {"norm": "batch", "bias": False}), (3, "identity")]
    a = mlpx.Model(inputs=8, layers=layers, seed=3)
    a.fit(x, y, epochs=1, batch_size=32)
    sd = a.state_dict()
    assert list(sd)[-3:] == ["layers.0.norm.running_mean", "layers.0.norm.running_var",
                             "layers.0.norm.num_batches_tracked"]
    count = sd["layers.0.norm.num_batches_tracked"]
    assert count.dtype == np.int32 and count.shape == (1,)
    assert count[0] == -(-len(x) // 32)  # one per training batch
    assert sd["layers.0.norm.running_var"].dtype == np.float32
    a.save(tmp_path / "a.safetensors")
    b = mlpx.Model(inputs=8, layers=layers, seed=4)
    b.load_state_dict(sd)
    for k, v in b.state_dict().items():
        assert np.array_equal(v, sd[k]), k
    assert np.array_equal(b.predict(xv), a.predict(xv))  # eval mode reads the statistics
    assert np.array_equal(mlpx.load(tmp_path / "a.safetensors").predict(xv), b.predict(xv))
    # torch's num_batches_tracked: an int64 scalar.
    c = mlpx.Model(inputs=8, layers=layers, seed=4)
    c.load_state_dict({**sd, "layers.0.norm.num_batches_tracked": np.array(7, np.int64)})
    assert c.state_dict()["layers.0.norm.num_batches_tracked"][0] == 7
    # Parameters only: the statistics keep their values (mean 0, variance 1, count 0).
    d = mlpx.Model(inputs=8, layers=layers, seed=4)
    d.load_state_dict({k: v for k, v in sd.items() if "running" not in k and "tracked" not in k})
    assert np.array_equal(d.state_dict()["layers.0.norm.running_var"], np.ones(16, np.float32))
    assert d.state_dict()["layers.0.norm.num_batches_tracked"][0] == 0
    with pytest.raises(mlpx.DataError, match="missing 'layers.0.norm.running_var'"):
        d.load_state_dict({k: v for k, v in sd.items() if k != "layers.0.norm.running_var"})
    with pytest.raises(mlpx.DataError, match=r"'layers.0.norm.num_batches_tracked': expected an "
                                             r"int32 or int64 CPU array"):
        d.load_state_dict({**sd, "layers.0.norm.num_batches_tracked": np.ones(1, np.float32)})


@pytest.mark.parametrize("layer, message", [
    ((16, "relu", {"dropout": 1.0}),
     "config: model.layers[0].dropout: expected a probability in [0, 1), found 1"),
    ((16, "relu", {"dropout": -0.1}),
     "config: model.layers[0].dropout: expected a probability in [0, 1), found -0.1"),
    ((16, "relu", {"dropuot": 0.2}), None),
    ((16, "relu", {"dropout": "0.2"}), None),
])
def test_bad_dropout_raises_the_command_lines_config_error(tmp_path, cli, layer, message):
    import json
    import subprocess
    with pytest.raises(mlpx.ConfigError) as error:
        mlpx.Model(inputs=8, layers=[layer, (3, "identity")])
    units, activation, extra = layer
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"model": {"layers": [
        {"units": units, "activation": activation, **extra}, {"units": 3, "activation": "identity"}]}}))
    run = subprocess.run([cli, "train", "--config", str(path)], capture_output=True, text=True)
    assert run.returncode != 0
    assert run.stderr.strip() == f"error: {path}: {error.value}"  # the file named first
    if message is not None:
        assert str(error.value) == message


def test_bad_layer_forms_raise_config_error():
    with pytest.raises(mlpx.ConfigError, match=r"model.layers\[0\].units: given both"):
        mlpx.Model(inputs=8, layers=[(16, "relu", {"units": 4}), (3, "identity")])
    with pytest.raises(mlpx.ConfigError, match=r"model.layers\[1\]: expected \(units, activation\)"):
        mlpx.Model(inputs=8, layers=[(16, "relu"), (3, "identity", 0.1, 0.2)])


def test_predict_gives_what_mlpx_predict_gives_and_logits_the_raw_outputs(tmp_path, cli, blobs):
    """predict: softmax probabilities for cross_entropy, sigmoid for bce, the outputs for mse;
    logits: the raw outputs for every loss. For cross_entropy, the same bits as the command."""
    import subprocess
    x, y, xv, _ = blobs
    m = small_model(seed=3)
    m.fit(x, y, epochs=2)
    logits, probabilities = m.logits(xv), m.predict(xv)
    assert logits.shape == probabilities.shape == (60, 3) and probabilities.dtype == np.float32
    e = np.exp(logits.astype(np.float64) - logits.max(1, keepdims=True))
    np.testing.assert_allclose(probabilities, e / e.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)
    assert np.array_equal(m(xv), probabilities)
    m.save(tmp_path / "m.safetensors")
    np.save(tmp_path / "x.npy", xv)
    subprocess.run([cli, "predict", "--model", str(tmp_path / "m.safetensors"), "--input",
                    str(tmp_path / "x.npy"), "--output", str(tmp_path / "p.npy")], check=True,
                   capture_output=True)
    assert np.array_equal(np.load(tmp_path / "p.npy"), probabilities)

    bce = small_model(loss="bce", seed=3)
    bce.fit(x, np.eye(3, dtype=np.float32)[y], epochs=2)
    z = bce.logits(xv).astype(np.float64)
    np.testing.assert_allclose(bce.predict(xv), 1 / (1 + np.exp(-z)), rtol=1e-5, atol=1e-7)

    mse = small_model(loss="mse", seed=3)
    mse.fit(x, np.eye(3, dtype=np.float32)[y], epochs=2)
    assert np.array_equal(mse.predict(xv), mse.logits(xv))


def test_history_elapsed_s_counts_from_the_start_of_the_fit(blobs):
    x, y, xv, yv = blobs
    history = small_model().fit(x, y, validation=(xv, yv), epochs=3)
    elapsed = [h["elapsed_s"] for h in history]
    assert 0 < elapsed[0] < elapsed[1] < elapsed[2], elapsed


def test_a_pickled_model_predicts_the_same_and_fits_on_from_its_state(blobs):
    import pickle
    x, y, xv, _ = blobs
    m = small_model(seed=4)
    m.fit(x, y, epochs=2, batch_size=32)
    back = pickle.loads(pickle.dumps(m))
    assert np.array_equal(back.predict(xv), m.predict(xv)) and len(back.history) == 2
    m.fit(x, y, epochs=1, batch_size=32)
    back.fit(x, y, epochs=1, batch_size=32)  # Adam's moments and the epoch count travelled
    for name, value in m.state_dict().items():
        assert np.array_equal(back.state_dict()[name], value), name


@pytest.mark.parametrize("dtype, shape", [(np.int64, (-1,)), (np.uint8, (-1, 1)),
                                          (np.float32, (-1,)), (np.float64, (-1, 1))])
def test_binary_bce_with_one_output(blobs, dtype, shape):
    x, y, xv, yv = blobs
    binary, binary_v = (y == 1).astype(dtype).reshape(shape), (yv == 1)
    m = mlpx.Model(inputs=8, layers=[(16, "relu"), (1, "identity")], loss="bce")
    history = m.fit(x, binary, epochs=10, batch_size=32, optimizer="adam", lr=0.01)
    assert history[-1]["train_accuracy"] > 0.9
    probs = m.predict(xv)
    assert probs.shape == (60, 1) and ((probs >= 0) & (probs <= 1)).all()
    accuracy = m.evaluate(xv, binary_v.astype(dtype).reshape(shape))["accuracy"]
    assert accuracy == pytest.approx(((probs[:, 0] > 0.5) == binary_v).mean())
    assert np.array_equal(probs > 0.5, m.logits(xv) > 0)


def test_multi_label_bce_scores_each_label(blobs):
    x, y, xv, yv = blobs
    labels = np.stack([y == 0, y == 2, x[:, 0] > 0], axis=1).astype(np.float32)
    labels_v = np.stack([yv == 0, yv == 2, xv[:, 0] > 0], axis=1).astype(np.float32)
    m = mlpx.Model(inputs=8, layers=[(16, "relu"), (3, "identity")], loss="bce")
    m.fit(x, labels, epochs=10, batch_size=32, optimizer="adam", lr=0.01)
    accuracy = m.evaluate(xv, labels_v)["accuracy"]
    assert accuracy == pytest.approx(((m.predict(xv) > 0.5) == (labels_v > 0.5)).mean())
    assert accuracy > 0.85
    with pytest.raises(mlpx.DataError, match=r"^y: expected bce targets in \[0, 1\].*found 2 at row 0, column 1$"):
        m.fit(x, np.where(np.arange(3) == 1, 2.0, labels).astype(np.float32))


def test_nonfinite_features_and_integer_regression_targets_say_what_fits(blobs):
    x, y, _, _ = blobs
    bad = x.copy()
    bad[5, 3] = np.inf
    with pytest.raises(mlpx.DataError, match=r"^x: expected finite features, found inf at row 5, column 3$"):
        small_model().fit(bad, y)
    regression = mlpx.Model(inputs=8, layers=[(4, "relu"), (1, "identity")], loss="mse")
    with pytest.raises(mlpx.DataError, match=r"found \d+ at row \d+; for regression targets store y as floats"):
        regression.fit(x, y * 50 + 1)
    assert np.isfinite(regression.fit(x, (y * 50 + 1).astype(np.float32))[-1]["train_r2"])
