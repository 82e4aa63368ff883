"""SIGTERM during mlpx.train(): the step ends, the checkpoint holds that step, one line names
it, the process exits 143; resumed from that checkpoint, the run ends bit for bit as the
uninterrupted one (docs/reliability.md#preemption)."""
import json
import os
import signal
import subprocess
import sys
import time

SCRIPT = r"""
import sys
import mlpx
config = {"device": "cpu", "seed": 3,
          "data": {"source": "synthetic",
                   "synthetic": {"train_samples": 20000, "test_samples": 200, "features": 16,
                                 "classes": 4}},
          "model": {"layers": [{"units": 32, "activation": "relu", "dropout": 0.1},
                               {"units": 4, "activation": "identity"}]},
          "optimizer": {"type": "adam", "lr": 0.003},
          "train": {"epochs": 40, "batch_size": 8},
          "output": {"checkpoint": sys.argv[1], "log": sys.argv[2]}}
mlpx.train(config, progress=False, resume=sys.argv[3] or None)
"""


def train(tmp_path, checkpoint, log, resume="", **popen):
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path / checkpoint),
                             str(tmp_path / log), resume], stderr=subprocess.PIPE, text=True,
                            **popen)


def test_sigterm_saves_the_step_exits_143_and_resumes_bit_for_bit(tmp_path):
    whole = train(tmp_path, "whole.safetensors", "whole.jsonl")
    assert whole.wait(timeout=120) == 0, whole.stderr.read()

    run = train(tmp_path, "run.safetensors", "run.jsonl")
    log = tmp_path / "run.jsonl"
    deadline = time.monotonic() + 60
    while (not log.exists() or not log.read_text()) and time.monotonic() < deadline:
        assert run.poll() is None, run.stderr.read()
        time.sleep(0.01)
    os.kill(run.pid, signal.SIGTERM)
    assert run.wait(timeout=60) == 128 + signal.SIGTERM
    lines = run.stderr.read().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stopped by SIGTERM after step "), lines
    assert str(tmp_path / "run.safetensors") in lines[0]
    # The checkpoint holds the step the line names, short of the run's 40 * 2250.
    raw = (tmp_path / "run.safetensors").read_bytes()
    meta = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])["__metadata__"]
    step = int(lines[0].split("after step ")[1].split(" ")[0])
    assert int(meta["step"]) == step < 40 * 2250

    resumed = train(tmp_path, "run.safetensors", "run.jsonl", str(tmp_path / "run.safetensors"))
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read()
    whole_bytes = (tmp_path / "whole.safetensors").read_bytes()
    run_bytes = (tmp_path / "run.safetensors").read_bytes()
    # The metadata names each run's own files: compare the tensors' bytes after the header.
    data = lambda raw: raw[8 + int.from_bytes(raw[:8], "little"):]
    assert len(data(run_bytes)) > 0
    assert data(run_bytes) == data(whole_bytes)
