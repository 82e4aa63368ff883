"""mlpx: train multilayer perceptrons on the CPU or an NVIDIA GPU, from Python.

The C++ library (its extension module ``mlpx._mlpx``) does the work; this module gives it the
shape a user of scikit-learn or PyTorch expects::

    import mlpx
    model = mlpx.Model(inputs=784, layers=[(256, "relu"), (10, "identity")], device="cpu")
    history = model.fit(x, y, validation=(xv, yv), epochs=5, batch_size=128, optimizer="adam")
    probabilities = model.predict(xt)          # numpy in, numpy out (torch in, torch out)
    logits = model.logits(xt)                  # the raw outputs
    model.save("model.safetensors"); model = mlpx.load("model.safetensors")

    result = mlpx.train(mlpx.Config("run.json"))   # the whole `mlpx train` job

Arrays: features are C-contiguous float32 ``[N, inputs]`` (numpy, or torch through DLPack) and
go in without a copy; labels are class indices ``[N]`` or float targets ``[N, K]``. Anything
else raises :class:`DataError` (a ``ValueError``) with the command line's one-line message.
Training releases the GIL; Ctrl-C stops it at the end of the current step and raises
``KeyboardInterrupt`` (a checkpoint keeps the last whole epoch).
"""
from __future__ import annotations

import errno
import json
import math
import os
import signal
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _mlpx
from ._mlpx import ConfigError, DataError, Error

__all__ = [
    "Config", "ConfigError", "DataError", "Error", "Model", "TrainResult", "__version__",
    "built_with_cuda", "config_keys", "cuda_available", "cuda_device_count", "load", "load_array",
    "train",
]

__version__: str = _mlpx.version()

PathLike = Union[str, "os.PathLike[str]"]


def cuda_available() -> bool:
    """True when this build has the CUDA backend and a GPU can be used now."""
    return _mlpx.cuda_available()


def cuda_device_count() -> int:
    """The number of usable CUDA devices (0 without the CUDA backend or a driver)."""
    return _mlpx.cuda_device_count()


def built_with_cuda() -> bool:
    """True when mlpx was compiled with its CUDA backend (whether or not a GPU is present)."""
    return _mlpx.built_with_cuda()


def load_array(path: PathLike) -> np.ndarray:
    """An array file as numpy holds it, read as ``mlpx train`` reads data: .npy, .csv
    (float64) or IDX (``*-ubyte``, optionally .gz, as Fashion-MNIST ships). Errors name the
    file (:class:`Error`)."""
    return _mlpx.load_array(os.fspath(path))


# ---- configuration ---------------------------------------------------------------------------

def _merge(base: Dict[str, Any], overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """base with overrides laid over it; nested dicts merge key by key."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def config_keys() -> List[Dict[str, Any]]:
    """Every key of the config file, from the one table the library reads and writes configs
    with (``mlpx config --keys``), in the file's order: ``path`` ("optimizer.lr"; a layer's keys
    "model.layers[i].units"), ``type``, ``default`` (None: unset or required), ``range`` (in
    words; "" when any value of the type), ``help`` and ``sweepable`` (``mlpx sweep`` may search
    it). The top-level paths are the keywords :class:`Config` takes."""
    return [dict(f, default=json.loads(f["default"]) if f["default"] else None)
            for f in _mlpx.config_fields()]


class Config:
    """The training configuration of ``mlpx train``: every key has a default.

    ``Config()`` is the defaults; ``Config({"train": {"epochs": 3}})`` lays a dict over them;
    ``Config("run.json")`` reads a file as the command line does (its relative paths are
    relative to its folder); keywords lay top-level keys over either
    (``Config("run.json", seed=1, train={"epochs": 3})``: nested dicts merge). Unknown keys,
    wrong types and bad values raise :class:`ConfigError` with the command line's message.
    The keys, with their types, defaults and ranges: :func:`config_keys`.
    """

    def __init__(self, source: Union[None, "Config", Mapping[str, Any], PathLike] = None,
                 /, **keywords: Any) -> None:
        if isinstance(source, Config):
            native = source._native
        elif source is None:
            native = _mlpx.NativeConfig.from_json("{}")
        elif isinstance(source, Mapping):
            native = _mlpx.NativeConfig.from_json(json.dumps(dict(source)))
        elif isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            if not os.path.isfile(path):
                raise FileNotFoundError(errno.ENOENT, "config file not found", path)
            native = _mlpx.NativeConfig.load(path)
        else:
            raise TypeError(f"Config: expected a dict, a JSON file's path or a Config, "
                            f"found {type(source).__name__}")
        if keywords:
            native = _mlpx.NativeConfig.from_json(
                json.dumps(_merge(json.loads(native.to_json()), keywords)))
        self._native = native

    def to_dict(self) -> Dict[str, Any]:
        """Every key with its value (defaults included), as the JSON file would hold them."""
        return json.loads(self._native.to_json())

    def to_json(self) -> str:
        return self._native.to_json()

    def replace(self, **keywords: Any) -> "Config":
        """A copy with top-level keys laid over this one (nested dicts merge)."""
        return Config(self, **keywords)

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"mlpx.Config({self.to_dict()!r})"


# ---- progress ----------------------------------------------------------------------------------

def _format_metrics(m: Mapping[str, Any]) -> str:
    parts = [f"train_loss {m['train_loss']:.4f}"]
    for prefix in ("train", "val"):
        for key in ("accuracy", "r2"):
            value = m.get(f"{prefix}_{key}")
            if prefix == "val" and key == "accuracy" and not _nan(m.get("val_loss")):
                parts.append(f"val_loss {m['val_loss']:.4f}")
            if value is not None and not _nan(value):
                parts.append(f"{prefix}_{key} {value:.4f}")
    parts.append(f"{m['samples_per_s']:.0f} samples/s")
    return "  ".join(parts)


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


class _Progress:
    """A tqdm bar per epoch where tqdm is installed (tqdm.auto: terminal or Jupyter), else one
    plain line per epoch on stderr. progress=False: nothing."""

    def __init__(self, enabled: bool, epochs: int) -> None:
        self.epochs = epochs
        self.tqdm = None
        self.bar = None
        self.enabled = enabled
        if enabled:
            try:
                from tqdm.auto import tqdm  # type: ignore
                self.tqdm = tqdm
            except ImportError:
                self.tqdm = None

    @property
    def on_step(self) -> Optional[Callable[..., Any]]:
        return self._step if self.enabled and self.tqdm is not None else None

    def _step(self, epoch: int, batch: int, batches: int, samples: int, seconds: float,
              loss: float) -> None:
        if self.bar is None:
            self.bar = self.tqdm(total=batches, desc=f"epoch {epoch}/{self.epochs}",
                                 unit="batch", leave=True, file=sys.stderr)
        self.bar.update(batch - self.bar.n)
        if not math.isnan(loss):
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def epoch_done(self, m: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        line = f"epoch {m['epoch']}/{self.epochs}  {_format_metrics(m)}"
        if self.bar is not None:
            self.bar.set_postfix_str(_format_metrics(m))
            self.bar.close()
            self.bar = None
        elif self.tqdm is not None:
            self.tqdm.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ---- arrays ------------------------------------------------------------------------------------

def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _features(x: Any) -> Any:
    """x as the extension takes it: numpy arrays and torch tensors as they are (checked, not
    converted, there); nested lists become float32 arrays."""
    if _is_torch(x):
        if x.is_cuda:
            import torch  # the producer's stream must be done before mlpx reads the memory
            torch.cuda.synchronize(x.device)
        return x.detach()
    if isinstance(x, np.ndarray) or hasattr(x, "__dlpack__"):
        return x
    return np.asarray(x, dtype=np.float32)


def _targets(y: Any) -> np.ndarray:
    """Labels or targets on the CPU (they are copied anyway)."""
    if _is_torch(y):
        y = y.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(y))


def _sample_weights(w: Any) -> Optional[np.ndarray]:
    """Sample weights as the extension takes them: None, or float32 [N] on the CPU."""
    if w is None:
        return None
    if _is_torch(w):
        w = w.detach().cpu().numpy()
    w = np.asarray(w)
    if w.ndim != 1:
        raise DataError(f"sample_weight: expected one weight per row, [N], found shape "
                        f"{list(w.shape)}")
    return np.ascontiguousarray(w, dtype=np.float32)


# ---- the model ---------------------------------------------------------------------------------

LayerLike = Union[int, Tuple[int, str], Tuple[int, str, float], Tuple[int, str, Mapping[str, Any]],
                  Mapping[str, Any]]


def _layer_dict(layer: LayerLike, index: int) -> Dict[str, Any]:
    """One entry of model.layers as the config file writes it."""
    if isinstance(layer, Mapping):
        return dict(layer)
    if isinstance(layer, int) and not isinstance(layer, bool):
        return {"units": layer, "activation": "relu"}
    if isinstance(layer, (tuple, list)) and len(layer) in (2, 3):
        out: Dict[str, Any] = {"units": layer[0], "activation": layer[1]}
        if len(layer) == 3:
            extra = layer[2]
            if isinstance(extra, Mapping):
                twice = [key for key in ("units", "activation") if key in extra]
                if twice:
                    raise ConfigError(f"config: model.layers[{index}].{twice[0]}: given both in "
                                      f"the tuple and in its dict {dict(extra)!r}")
                out.update(extra)  # the config's keys: "dropout", "alpha", "norm", ...
            else:
                out["alpha"] = extra
        return out
    raise ConfigError(f"config: model.layers[{index}]: expected (units, activation), (units, "
                      f"activation, alpha), (units, activation, {{'dropout': p, ...}}) or a "
                      f"dict of the config's layer keys, found {layer!r}")


class Model:
    """A multilayer perceptron: ``Model(inputs=784, layers=[(256, "relu"), (10, "identity")])``.

    Each of ``layers`` is ``(units, activation)``, ``(units, activation, alpha)``,
    ``(units, activation, {"dropout": 0.2})`` (the dict holds the config's other layer keys:
    ``dropout``, ``alpha``, ``norm``, ``norm_eps``, ``norm_momentum``, ``bias``, ``residual``)
    or the config file's dict
    (``{"units": 256, "activation": "relu", "dropout": 0.2}``); a bad value raises
    :class:`ConfigError` with the command line's message. ``dropout`` is inverted dropout after
    the activation, as ``nn.Dropout(p)``: fit drops, predict and evaluate do not. ``loss`` is
    the config's (``cross_entropy`` by default; ``{"type": "cross_entropy",
    "label_smoothing": 0.1}`` smooths the targets); the weights are drawn by ``init`` from
    ``seed`` as ``mlpx train`` draws them. A model loaded from a checkpoint that was trained
    on standardized data applies those statistics to every ``x`` it is given.
    A model pickles (its checkpoint's bytes travel: weights, config, optimizer state, history).
    ``mlpx.sklearn`` wraps it as scikit-learn's MLPClassifier and MLPRegressor.
    """

    def __init__(self, inputs: int, layers: Sequence[LayerLike], *, device: str = "cpu",
                 loss: Union[None, str, Mapping[str, Any]] = None, init: Optional[str] = None,
                 init_std: Optional[float] = None, seed: int = 0,
                 precision: Optional[str] = None) -> None:
        model: Dict[str, Any] = {"layers": [_layer_dict(l, i) for i, l in enumerate(layers)]}
        if init is not None:
            model["init"] = init
        if init_std is not None:
            model["init_std"] = init_std
        config: Dict[str, Any] = {"device": device, "seed": seed, "model": model}
        if loss is not None:
            config["loss"] = loss if isinstance(loss, str) else dict(loss)
        if precision is not None:
            config["precision"] = precision
        self._init(_mlpx.Net(Config(config)._native, inputs))

    def _init(self, net: Any) -> None:
        self._net = net
        self._fit: Any = None
        self.history: List[Dict[str, Any]] = []

    @classmethod
    def _wrap(cls, net: Any) -> "Model":
        model = cls.__new__(cls)
        model._init(net)
        return model

    # -- description --
    @property
    def config(self) -> Config:
        """The configuration the model was built (and last fitted) with."""
        c = Config.__new__(Config)
        c._native = self._net.config
        return c

    @property
    def inputs(self) -> int:
        return self._net.inputs

    @property
    def outputs(self) -> int:
        return self._net.outputs

    @property
    def layers(self) -> List[Tuple[int, str, float]]:
        """(units, activation, alpha) per layer (dropout: ``config["model"]["layers"]``)."""
        return list(self._net.layers)

    @property
    def num_params(self) -> int:
        return self._net.num_params

    @property
    def device(self) -> str:
        return self._net.device

    def summary(self) -> str:
        return self._net.summary()

    def __repr__(self) -> str:
        dropouts = [l.get("dropout", 0) for l in self.config["model"]["layers"]]
        layers = ", ".join(f"({u}, {a!r}" + (f", {{'dropout': {p!r}}})" if p else ")")
                           for (u, a, _), p in zip(self.layers, dropouts))
        return f"mlpx.Model(inputs={self.inputs}, layers=[{layers}], device={self.device!r})"

    def to(self, device: str) -> "Model":
        """A copy of the model on another device ("cpu", "cuda", "cuda:N")."""
        return Model._wrap(self._net.to(device))

    # -- training --
    def _training_state(self) -> Optional[Tuple[int, int]]:
        """(epochs, optimizer steps) of the training a fit can go on from: the last fit's, else
        the checkpoint's the model was loaded from; None when there is none."""
        if self._fit is not None:
            epoch, steps = self._fit.epoch, self._fit.steps
        else:
            epoch, steps = self._net.progress
        return (epoch, steps) if epoch > 0 or steps > 0 else None

    def fit(self, x: Any, y: Any, *, validation: Optional[Tuple[Any, Any]] = None,
            epochs: int = 1, batch_size: int = 128,
            optimizer: Union[None, str, Mapping[str, Any]] = None,
            lr: Optional[float] = None, schedule: Optional[Mapping[str, Any]] = None,
            shuffle: bool = True, seed: Optional[int] = None,
            callbacks: Iterable[Callable[[Dict[str, Any]], Any]] = (),
            checkpoint: Optional[PathLike] = None, progress: bool = False,
            task: Optional[str] = None,
            sample_weight: Any = None, clip_grad_norm: float = 0.0,
            accumulate_steps: int = 1) -> List[Dict[str, Any]]:
        """Trains ``epochs`` more epochs on x [N, inputs] (float32) and y (class indices [N] or
        targets [N, K]).

        ``optimizer`` is a name ("sgd", "adam", ...) or the config's optimizer dict
        (``{"type": "sgd", "lr": 0.1, "momentum": 0.9}``), ``lr`` its learning rate;
        ``schedule`` the config's schedule dict; ``batch_size`` 1 is SGD, 0 full-batch GD (all
        rows in their given order: shuffling a single batch would only reorder its sums).
        After each epoch the validation set (if any) is scored, ``checkpoint`` (if any) is
        saved, and each callback gets the epoch's metrics (a dict); one that returns False
        stops training. Returns the metrics of each epoch (also appended to
        ``model.history``; ``elapsed_s`` counts from the start of this call). The step sequence is the one ``mlpx train`` runs for the same
        config and data (bit for bit on the CPU).

        A second call continues the first, as in Keras and PyTorch: the optimizer's state
        (Adam's moments, its step count), the schedule's position and the epoch count (which
        seeds each epoch's shuffle and dropout masks) carry over, so ``fit(epochs=2)`` then
        ``fit(epochs=1)`` takes the same steps as ``fit(epochs=3)``. A model loaded from a
        checkpoint goes on from the checkpoint's state the same way (``mlpx train --resume``).
        ``optimizer=None`` and ``schedule=None`` keep the ones the model was trained with
        (Adam at its defaults and a constant rate for a new model). An optimizer or schedule
        that differs from those (its type or any setting, ``lr`` included) starts afresh: a new
        optimizer, the schedule at its first epoch and the epoch count at 0, from the current
        weights. A cosine schedule decays over ``total_epochs`` (default: the ``epochs`` of
        the call that set it): give it for a decay that spans several calls.

        ``sample_weight`` (optional, [N], >= 0) weighs the training rows: each batch's loss is
        the weighted average sum_i w_i l_i / sum_i w_i over its rows (as numpy's ``average``
        with weights); unit weights train exactly as none. Accuracy and the validation set stay
        unweighted. Not with data-parallel ranks.
        ``clip_grad_norm`` (0: off) clips the gradients' global L2 norm before each step, as
        ``torch.nn.utils.clip_grad_norm_`` (each epoch's metrics then hold ``grad_norm``);
        ``accumulate_steps`` k steps the optimizer once per k batches on their gradients' sum,
        each scaled by 1 / k (``train.clip_grad_norm``, ``train.accumulate_steps``). The
        schedules include ``onecycle`` (per step) and ``plateau`` (on the validation set's
        ``metric``, so it needs ``validation``); see docs/deep-mlps.md.
        """
        base = self.config.to_dict()
        state = self._training_state()
        if optimizer is None:
            opt: Dict[str, Any] = dict(base["optimizer"]) if state else {"type": "adam"}
        elif isinstance(optimizer, str):
            opt = {"type": optimizer}
        else:
            opt = dict(optimizer)
        if lr is not None:
            opt["lr"] = lr
        if schedule is None:
            sched: Dict[str, Any] = dict(base["schedule"]) if state else {"type": "none"}
        else:
            sched = dict(schedule)
            if (state and "total_epochs" not in sched
                    and sched.get("type", "none") == base["schedule"]["type"]):
                # The same schedule again: its span is the one it was given (a cosine decays
                # over the first call's epochs), not this call's.
                sched["total_epochs"] = base["schedule"]["total_epochs"]
        # A new optimizer and schedule start from their own defaults, not merged over the old.
        rest = {k: v for k, v in base.items() if k not in ("optimizer", "schedule")}

        def config_for(total_epochs: int) -> Config:
            overrides: Dict[str, Any] = {
                "optimizer": opt, "schedule": sched,
                "train": {"epochs": total_epochs, "batch_size": batch_size, "shuffle": shuffle,
                          "clip_grad_norm": clip_grad_norm, "accumulate_steps": accumulate_steps},
            }
            if seed is not None:
                overrides["seed"] = seed
            if task is not None:
                overrides["data"] = {"task": task}
            return Config(_merge(rest, overrides))

        # train.epochs is the run's total, as in a config that `mlpx train --resume` continues.
        config = config_for(state[0] + epochs if state else epochs)
        resume = (state is not None and config["optimizer"] == base["optimizer"]
                  and config["schedule"] == base["schedule"])
        if state is not None and not resume:
            config = config_for(epochs)
        native = config._native
        train_set = _mlpx.Data(self._net, native, _features(x), _targets(y), "x", "y", "train",
                               sample_weight=_sample_weights(sample_weight))
        val_set = None
        if validation is not None:
            xv, yv = validation
            val_set = _mlpx.Data(self._net, native, _features(xv), _targets(yv),
                                 "validation x", "validation y", "validation")
        fit = _mlpx.Fit(self._net, native, train_set)
        if resume:
            if self._fit is not None:
                fit.continue_from(self._fit)
            else:
                fit.continue_from_checkpoint()
        total = fit.epoch + epochs
        self._fit = fit
        self._net.config = native  # what save() stores from now on
        callbacks = list(callbacks)
        bar = _Progress(progress, total)
        history: List[Dict[str, Any]] = []
        start = time.perf_counter()
        plateau = sched.get("type") == "plateau"
        plateau_lr = None  # the rate ReduceLROnPlateau set after the last validation
        try:
            while fit.epoch < total:
                batches = math.ceil(train_set.size / max(fit.batch_size, 1))
                lr_now = native.scheduled_lr(fit.epoch)
                if plateau and plateau_lr is not None:
                    lr_now = plateau_lr
                m = fit.run_epoch(lr_now, bar.on_step, max(1, batches // 20))
                if not m["completed"]:
                    break
                if val_set is not None:
                    v = _mlpx.evaluate(self._net, val_set, 4096)
                    m["val_loss"], m["val_accuracy"], m["val_r2"] = v["loss"], v["accuracy"], v["r2"]
                    if plateau:
                        plateau_lr = fit.plateau_step(m[sched.get("metric", "val_loss")])
                # As in `mlpx train`'s log: seconds since this fit began, validation included.
                m["elapsed_s"] = time.perf_counter() - start
                history.append(m)
                self.history.append(m)
                bar.epoch_done(m)
                if checkpoint is not None:
                    fit.save(os.fspath(checkpoint))
                if any(cb(m) is False for cb in callbacks):
                    break
        finally:
            bar.close()
        return history

    def evaluate(self, x: Any, y: Any, *, batch_size: int = 4096) -> Dict[str, float]:
        """Mean loss and accuracy (regression: r2 and mse) on x and y: a dict."""
        data = _mlpx.Data(self._net, self._net.config, _features(x), _targets(y), "x", "y", "test")
        out = _mlpx.evaluate(self._net, data, batch_size)
        out["regression"] = data.regression
        return out

    def predict(self, x: Any) -> Any:
        """What ``mlpx predict`` gives for x [N, inputs]: [N, outputs] class probabilities for
        cross_entropy (softmax over each row) and bce (sigmoid of each output), the raw outputs
        for the other losses (:meth:`logits` gives the raw outputs for every loss). numpy in,
        numpy out; a torch tensor in, a torch tensor out (on the model's CUDA device for a CUDA
        tensor and a CUDA model)."""
        return self._outputs(x, raw=False)

    def logits(self, x: Any) -> Any:
        """The last layer's raw outputs [N, outputs] (logits for cross_entropy and bce: take
        argmax(1) for the class), as :meth:`predict` takes and gives arrays."""
        return self._outputs(x, raw=True)

    def _outputs(self, x: Any, raw: bool) -> Any:
        xin = _features(x)
        if _is_torch(x):
            import torch
            if x.is_cuda and self.device.startswith("cuda"):
                return self._net.predict_on_device(xin, raw)
            return torch.from_numpy(self._net.predict(xin, raw))
        return self._net.predict(xin, raw)

    __call__ = predict

    # -- weights --
    def state_dict(self) -> Dict[str, np.ndarray]:
        """Copies of the parameters as float32 numpy arrays, named as in checkpoints:
        layers.{i}.weight [out, in], layers.{i}.bias [out] (a layer with a bias),
        layers.{i}.norm.weight and layers.{i}.norm.bias [out] (a layer with a norm); then, as
        checkpoints hold them, each batch norm's buffers: layers.{i}.norm.running_mean and
        running_var (float32 [out]) and num_batches_tracked (int32 [1])."""
        return dict(self._net.state_dict())

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Sets every parameter from arrays (numpy or torch) named as state_dict() names them,
        and the batch norms' buffers when given (all of them or none; num_batches_tracked int32
        or int64, [1] or torch's scalar []); DataError naming the first one unexpected, missing
        or of the wrong shape or dtype (the model is then unchanged)."""
        items = []
        for name, value in state.items():
            if _is_torch(value):
                value = value.detach().cpu().numpy()
            items.append((name, value if isinstance(value, np.ndarray) else np.asarray(value)))
        self._net.load_state_dict(items)

    def export_onnx(self, path: PathLike, *, opset: int = 17, output: str = "auto",
                    input_scale: str = "none",
                    metrics: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Writes the model as an ONNX file (atomically) that ONNX Runtime, TensorRT and other
        serving stacks run, as ``mlpx export`` does (docs/deploy.md). Input: float32
        [batch, inputs], what ``predict`` takes (the model's input standardisation, if any, is
        inside the graph); ``input_scale="auto"``: raw values 0 to 255 instead, divided by 255
        in the graph, when the model was trained on uint8 features (as ``mlpx export`` does,
        and ``mlpx predict`` with a uint8 file); ``"255"``: divided by 255 always.
        Output: ``probabilities`` (softmax, sigmoid for bce), ``raw`` (what ``logits``
        gives), or ``auto`` (probabilities for classification losses, raw for mse and sse).
        ``metrics`` (default: the last epoch of ``history``) go into the metadata with the
        config and the mlpx version. Returns {"bytes", "output", "nodes"}; DataError for a bad
        opset or output, Error when mlpx was built without ONNX."""
        if metrics is None:
            metrics = self.history[-1] if self.history else {}
        epoch, steps = self._training_state() or (0, 0)
        # JSON has no NaN (an epoch without a validation split has NaN val_loss): null.
        clean = {k: None if isinstance(v, float) and math.isnan(v) else v
                 for k, v in dict(metrics).items()}
        text = json.dumps(clean, default=float) if clean else ""
        return self._net.export_onnx(os.fspath(path), opset, output, input_scale, text, epoch,
                                     steps)

    def save(self, path: PathLike) -> None:
        """Writes a checkpoint (safetensors, atomically) that ``mlpx.load``, ``mlpx eval``,
        ``mlpx predict`` and ``mlpx train --resume`` read; with the optimizer's state when
        the model was fitted."""
        if self._fit is not None:
            self._fit.save(os.fspath(path))
        else:
            self._net.save(os.fspath(path))

    # -- pickling: the checkpoint's bytes travel (weights, config, optimizer state) --
    def __getstate__(self) -> Dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="mlpx-pickle-") as folder:
            path = os.path.join(folder, "model.safetensors")
            self.save(path)
            with open(path, "rb") as f:
                checkpoint = f.read()
        return {"checkpoint": checkpoint, "device": self.device, "history": self.history}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        with tempfile.TemporaryDirectory(prefix="mlpx-pickle-") as folder:
            path = os.path.join(folder, "model.safetensors")
            with open(path, "wb") as f:
                f.write(state["checkpoint"])
            net = _mlpx.Net.load(path)
        if state["device"] != "cpu":
            net = net.to(state["device"])
        self._init(net)
        self.history = list(state["history"])


def load(path: PathLike, device: Optional[str] = None) -> Model:
    """A model from a checkpoint (``model.save`` or ``mlpx train``), on ``device`` (default:
    the checkpoint's config's device, "auto": a GPU when there is one)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(errno.ENOENT, "checkpoint not found", path)
    net = _mlpx.Net.load(path)
    target = device if device is not None else json.loads(net.config.to_json())["device"]
    if target != "cpu":
        net = net.to(target)
    return Model._wrap(net)


# ---- the whole job -----------------------------------------------------------------------------

class TrainResult:
    """What :func:`train` returns: ``history`` (one metrics dict per epoch), ``test`` (the
    test set's loss and accuracy, or None), ``model`` (the trained :class:`Model`),
    ``stopped`` (a callback ended it early) and ``seconds``."""

    def __init__(self, history: List[Dict[str, Any]], test: Optional[Dict[str, Any]],
                 model: Optional[Model], stopped: bool, seconds: float) -> None:
        self.history = history
        self.test = test
        self.model = model
        self.stopped = stopped
        self.seconds = seconds

    def __repr__(self) -> str:
        return (f"TrainResult({len(self.history)} epochs, test={self.test}, "
                f"stopped={self.stopped}, seconds={self.seconds:.1f})")


def train(config: Union[Config, Mapping[str, Any], PathLike, None] = None, *,
          progress: bool = True, resume: Optional[PathLike] = None,
          init_weights: Optional[PathLike] = None,
          callbacks: Iterable[Callable[[Dict[str, Any]], Any]] = ()) -> TrainResult:
    """Runs the job that ``mlpx train`` runs for ``config`` (a Config, a dict or a JSON
    file's path): data, model, epochs, validation, checkpoints, log and test set. The same
    config gives the same bits as the command line. Each callback gets each epoch's metrics
    dict; one that returns False ends training after that epoch. SIGTERM or SIGUSR1 (where
    Python has no handler for it) ends training after the current step, saves
    ``output.checkpoint`` with that exact position (``resume`` continues it bit for bit),
    prints one line on stderr and raises SystemExit(128 + the signal's number)."""
    if not isinstance(config, Config):
        config = Config(config)
    epochs = config["train"]["epochs"]
    bar = _Progress(progress, epochs)
    callbacks = list(callbacks)

    def on_epoch(m: Dict[str, Any]) -> bool:
        bar.epoch_done(m)
        return not any(cb(m) is False for cb in callbacks)

    def on_start(lines: List[str]) -> None:
        if progress:
            print("\n".join(lines), file=sys.stderr, flush=True)

    try:
        history, test, net, stopped, seconds, preempted = _mlpx.run_training(
            config._native, os.fspath(resume) if resume else "",
            os.fspath(init_weights) if init_weights else "", on_start, bar.on_step, 10, on_epoch)
    finally:
        bar.close()
    if preempted is not None:
        # SIGTERM or SIGUSR1 (without a Python handler): the step finished, the checkpoint
        # holds it; one line, then the process ends as `mlpx train` does, 128 + the signal.
        number, step, epoch, batch, checkpoint = preempted
        where = f"epoch {epoch + 1}, batch {batch}" if batch > 0 else f"epoch {epoch} complete"
        saved = (f"saved {checkpoint}; continue with resume=" + repr(checkpoint) if checkpoint
                 else "no checkpoint saved (output.checkpoint is empty)")
        print(f"stopped by {signal.Signals(number).name} after step {step} ({where}): {saved}",
              file=sys.stderr, flush=True)
        raise SystemExit(128 + number)
    return TrainResult(history, test, Model._wrap(net) if net is not None else None, stopped,
                       seconds)
