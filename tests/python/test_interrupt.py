"""Ctrl-C during training: the step ends, the last checkpoint stays, KeyboardInterrupt is
raised, and the interpreter and the model go on working."""
import json
import os
import signal
import struct
import sys
import threading

import numpy as np
import pytest

import mlpx
from mlpx import _mlpx


def checkpoint_metadata(path):
    raw = open(path, "rb").read()
    size = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + size])["__metadata__"]


def data(rows=4000):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 16)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def test_sigint_from_another_thread_stops_the_epoch_at_a_step():
    x, y = data()
    m = mlpx.Model(inputs=16, layers=[(32, "relu"), (2, "identity")])
    config = m.config.replace(train={"batch_size": 1})._native
    fit = _mlpx.Fit(m._net, config, _mlpx.Data(m._net, config, x, y, "x", "y", "train"))
    started = threading.Event()

    def send():
        started.wait()
        os.kill(os.getpid(), signal.SIGINT)

    def on_step(epoch, batch, batches, samples, seconds, loss):
        started.set()  # from here on the signal may come while the step runs without the GIL

    thread = threading.Thread(target=send)
    thread.start()
    with pytest.raises(KeyboardInterrupt):
        fit.run_epoch(1e-3, on_step, 0)
    thread.join()
    assert fit.epoch == 0 and 1 <= fit.steps < len(x)
    # The model is whole and training goes on from there.
    assert np.isfinite(m.predict(x)).all()
    assert fit.run_epoch(1e-3, None, 0)["completed"]
    assert fit.epoch == 1


def test_sigint_in_a_step_stops_after_that_step():
    x, y = data(200)
    m = mlpx.Model(inputs=16, layers=[(2, "identity")])
    config = m.config.replace(train={"batch_size": 10})._native
    fit = _mlpx.Fit(m._net, config, _mlpx.Data(m._net, config, x, y, "x", "y", "train"))

    def on_step(epoch, batch, batches, samples, seconds, loss):
        if batch == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        fit.run_epoch(1e-3, on_step, 1)
    assert fit.steps == 3


def test_ctrl_c_during_fit_keeps_the_last_checkpoint(tmp_path):
    x, y = data(400)
    m = mlpx.Model(inputs=16, layers=[(32, "relu"), (2, "identity")])
    path = tmp_path / "last.safetensors"
    saved = []

    def after_epoch(metrics):
        saved.append(mlpx.load(path).state_dict())
        if len(saved) == 2:  # a timer, not this callback, sends it: it lands inside a step
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()

    with pytest.raises(KeyboardInterrupt):
        m.fit(x, y, epochs=1_000_000, batch_size=1, checkpoint=path, callbacks=[after_epoch])
    # The signal may land in a step or in Python code between steps (this callback included):
    # either way the checkpoint holds the last whole epoch.
    assert int(checkpoint_metadata(path)["epoch"]) == len(m.history) >= 2
    if len(saved) == len(m.history):
        kept = mlpx.load(path).state_dict()
        assert all(np.array_equal(kept[k], saved[-1][k]) for k in kept)
    assert m.evaluate(x, y)["samples"] == 400


def test_ctrl_c_during_train_raises(tmp_path):
    config = mlpx.Config({"device": "cpu", "data": {"source": "synthetic"},
                          "train": {"epochs": 1000, "batch_size": 1},
                          "output": {"checkpoint": str(tmp_path / "m.safetensors"), "log": ""}})
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            mlpx.train(config, progress=False)
    finally:
        timer.cancel()


def test_training_releases_the_gil():
    # With a switch interval of 1000 s the main thread never hands the GIL over on its own:
    # the worker, woken before the epoch, can run only if the epoch releases it.
    x, y = data(20000)
    m = mlpx.Model(inputs=16, layers=[(2, "identity")])
    config = m.config.replace(train={"batch_size": 1})._native
    fit = _mlpx.Fit(m._net, config, _mlpx.Data(m._net, config, x, y, "x", "y", "train"))
    go, ran = threading.Event(), []

    def worker():
        go.wait()
        ran.append(True)

    thread = threading.Thread(target=worker)
    thread.start()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000)
    try:
        go.set()
        fit.run_epoch(1e-3, None, 0)
        during = list(ran)
    finally:
        sys.setswitchinterval(interval)
    thread.join()
    assert during, "the worker thread could not run while the epoch trained"
