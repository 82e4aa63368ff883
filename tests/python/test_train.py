"""mlpx.train (the whole `mlpx train` job) and Model.fit against the command line: the same
config gives the same bits on the CPU."""
import json
import subprocess

import numpy as np
import pytest

import mlpx


def write_run(tmp_path, blobs, out, **train):
    x, y, xv, yv = blobs
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "xv.npy", xv)
    np.save(tmp_path / "yv.npy", yv)
    config = {
        "seed": 3, "device": "cpu",
        "data": {"source": "files", "train": {"x": "x.npy", "y": "y.npy"},
                 "test": {"x": "xv.npy", "y": "yv.npy"},
                 "validation_split": 0.0, "normalize": "none"},
        "model": {"layers": [{"units": 16, "activation": "relu"},
                             {"units": 3, "activation": "identity"}]},
        "optimizer": {"type": "adam", "lr": 0.01},
        "train": {"epochs": 3, "batch_size": 32, **train},
        "output": {"checkpoint": f"{out}.safetensors", "log": f"{out}.jsonl"},
    }
    path = tmp_path / f"{out}.json"
    path.write_text(json.dumps(config))
    return path


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_train_equals_the_command_line_bit_for_bit(tmp_path, blobs, cli):
    subprocess.run([cli, "train", "--config", str(write_run(tmp_path, blobs, "cli"))],
                   check=True, capture_output=True)
    result = mlpx.train(write_run(tmp_path, blobs, "py"), progress=False)
    cli_model = mlpx.load(tmp_path / "cli.safetensors")
    assert same_weights(cli_model, mlpx.load(tmp_path / "py.safetensors"))
    assert same_weights(cli_model, result.model)
    logged = [json.loads(l) for l in (tmp_path / "cli.jsonl").read_text().splitlines()]
    assert [h["train_loss"] for h in result.history] == [l["train_loss"] for l in logged[:3]]
    assert result.test["accuracy"] == logged[3]["test_accuracy"]
    assert not result.stopped and len(result.history) == 3


def test_fit_equals_the_command_line_bit_for_bit(tmp_path, blobs, cli):
    subprocess.run([cli, "train", "--config", str(write_run(tmp_path, blobs, "cli"))],
                   check=True, capture_output=True)
    x, y, _, _ = blobs
    m = mlpx.Model(inputs=8, layers=[(16, "relu"), (3, "identity")], seed=3)
    m.fit(x, y, epochs=3, batch_size=32, optimizer="adam", lr=0.01)
    assert same_weights(m, mlpx.load(tmp_path / "cli.safetensors"))
    # A checkpoint written by fit resumes on the command line.
    m.save(tmp_path / "fit.safetensors")
    more = write_run(tmp_path, blobs, "resumed", epochs=4)
    run = subprocess.run([cli, "train", "--config", str(more), "--resume",
                          str(tmp_path / "fit.safetensors")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "resuming" in run.stdout + run.stderr


def test_train_callbacks_progress_lines_and_model(tmp_path, blobs, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "tqdm", None)  # the plain-lines path
    seen = []
    result = mlpx.train(mlpx.Config(write_run(tmp_path, blobs, "cb"), train={"epochs": 5}),
                        callbacks=[lambda m: seen.append(m) or m["epoch"] < 2])
    assert result.stopped is True and [m["epoch"] for m in seen] == [1, 2]
    assert [m["train_loss"] for m in result.history] == [m["train_loss"] for m in seen]
    err = capsys.readouterr().err
    assert "epoch 1/5" in err and "epoch 2/5" in err and "train_loss" in err
    assert "device: cpu" in err  # the job's description, as the command line prints it
    x, _, xv, _ = blobs
    assert result.model.predict(xv).shape == (60, 3)


def test_train_with_tqdm_when_installed(tmp_path, blobs, capsys):
    pytest.importorskip("tqdm")
    mlpx.train(write_run(tmp_path, blobs, "bar"), progress=True)
    assert "epoch 3/3" in capsys.readouterr().err


def test_train_errors(tmp_path):
    with pytest.raises(mlpx.ConfigError):
        mlpx.train({"optimizer": {"type": "nope"}})
    with pytest.raises(mlpx.Error, match="missing.npy"):
        mlpx.train({"data": {"source": "files", "train": {"x": str(tmp_path / "missing.npy"),
                                                           "y": str(tmp_path / "y.npy")}},
                    "output": {"checkpoint": "", "log": ""}}, progress=False)
    with pytest.raises(ZeroDivisionError):  # a callback's exception comes out as it was
        mlpx.train({"data": {"source": "synthetic", "synthetic": {"train_samples": 100,
                                                                   "test_samples": 0}},
                    "train": {"epochs": 3}, "output": {"checkpoint": "", "log": ""}},
                   progress=False, callbacks=[lambda m: 1 / 0])
