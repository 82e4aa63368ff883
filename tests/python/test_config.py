"""mlpx.Config: from a dict, a JSON file and keywords; the command line's errors."""
import json
import subprocess

import pytest

import mlpx


def test_defaults_and_dict():
    c = mlpx.Config()
    assert c["train"]["epochs"] == 15 and c["loss"] == "cross_entropy"
    d = mlpx.Config({"train": {"epochs": 3}, "seed": 7})
    assert d["train"]["epochs"] == 3 and d["train"]["batch_size"] == 128 and d["seed"] == 7


def test_keywords_merge_over_a_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"train": {"epochs": 2, "batch_size": 16},
                                "data": {"source": "files", "train": {"x": "x.npy", "y": "y.npy"}}}))
    c = mlpx.Config(path, seed=5, train={"epochs": 4})
    assert c["train"] == {**c["train"], "epochs": 4, "batch_size": 16}
    assert c["seed"] == 5
    # Relative paths of a file are relative to its folder, as on the command line.
    assert c["data"]["train"]["x"] == str(tmp_path / "x.npy")
    assert mlpx.Config(c.to_dict()) == c
    assert c.replace(seed=6)["seed"] == 6 and c["seed"] == 5


def test_config_keys_are_the_one_table():
    keys = mlpx.config_keys()
    by_path = {k["path"]: k for k in keys}
    assert len(by_path) == len(keys)
    lr = by_path["optimizer.lr"]
    assert lr["type"] == "number" and lr["default"] == 0.001 and lr["sweepable"] and lr["help"]
    assert not by_path["device"]["sweepable"]
    assert by_path["model.layers[i].dropout"]["range"] == "a probability in [0, 1)"
    defaults = mlpx.Config().to_dict()
    # The top-level keys are Config's keywords; every default is the one Config() holds.
    assert {k["path"] for k in keys if "." not in k["path"]} == set(defaults)
    unset = [k["path"] + "." for k in keys if k["type"] == "object or null"]
    for k in keys:
        if (k["type"].startswith("object") or "[i]" in k["path"] or k["default"] is None
                or any(k["path"].startswith(u) for u in unset)):
            continue  # inside an unset object (train.early_stopping): not in the defaults
        node = defaults
        for part in k["path"].split("."):
            if not isinstance(node, dict):
                break  # "loss" written as a name: its object's keys (loss.label_smoothing) unset
            node = node[part]
        else:
            assert node == k["default"], k["path"]
    with pytest.raises(mlpx.ConfigError, match="did you mean 'seed'"):
        mlpx.Config(sed=1)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        mlpx.Config(tmp_path / "nope.json")


def test_wrong_type_of_source():
    with pytest.raises(TypeError):
        mlpx.Config(42)


@pytest.mark.parametrize("bad", [
    {"optimizer": {"lr": -1}},
    {"trian": {"epochs": 1}},
    {"train": {"epochs": "ten"}},
    {"model": {"layers": [{"units": 10, "activation": "softmax"}]}},
    {"loss": "hinge"},
])
def test_config_errors_are_the_command_lines(tmp_path, cli, bad):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(mlpx.ConfigError) as error:
        mlpx.Config(bad)
    assert isinstance(error.value, ValueError) and isinstance(error.value, mlpx.Error)
    run = subprocess.run([cli, "train", "--config", str(path)], capture_output=True, text=True)
    assert run.returncode != 0
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ")
    assert str(error.value) in line, (str(error.value), line)
