"""scikit-learn estimators over :class:`mlpx.Model`: ``MLPClassifier`` and ``MLPRegressor``.

They take the parameters of ``sklearn.neural_network``'s estimators of the same names where the
concept is the same (``hidden_layer_sizes``, ``activation``, ``solver``, ``alpha``,
``batch_size``, ``learning_rate_init``, ``max_iter``, ``shuffle``, ``random_state``, ``tol``,
``early_stopping``, ``validation_fraction``, ``n_iter_no_change``, ...) and mlpx's own
(``device``, ``precision``, ``dropout``, ``layers``), so they drop into a Pipeline,
GridSearchCV or cross_val_score::

    from mlpx.sklearn import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=50, random_state=0).fit(X, y)
    clf.predict_proba(X_test)

What differs from scikit-learn's (docs/python.md): the solvers are mlpx's optimizers (no
L-BFGS), ``alpha`` is an L2 penalty on biases too, and ``sample_weight`` weighs each batch's
loss (sum_i w_i l_i / sum_i w_i); the estimators pass scikit-learn's ``check_estimator``. Needs scikit-learn (Debian: python3-sklearn).
"""
from __future__ import annotations

import numbers
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from . import DataError, Model

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names that mlpx spells otherwise; mlpx's own names pass through.
_ACTIVATIONS = {"logistic": "sigmoid"}


def _float32(x: np.ndarray) -> np.ndarray:
    """x as the extension module wraps it: C-contiguous, aligned, writable float32 (a read-only
    memory map is copied)."""
    if x.dtype != np.float32 or not x.flags.c_contiguous or not x.flags.writeable \
            or not x.flags.aligned:
        x = np.array(x, dtype=np.float32, order="C")
    return x


class _BaseMLP(BaseEstimator):
    """What both estimators share: the parameters, the model they build and the training loop
    with scikit-learn's stopping rules."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate_init=0.001, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, device="cpu", precision="fp32", dropout=0.0, layers=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.precision = precision
        self.dropout = dropout
        self.layers = layers

    # -- what the subclasses say --
    _loss = "mse"
    _regression = False

    def _encode_targets(self, y: np.ndarray, first: bool, classes: Any = None) -> np.ndarray:
        raise NotImplementedError

    def _validation_score(self, metrics: Mapping[str, Any], x: np.ndarray,
                          targets: np.ndarray) -> float:
        raise NotImplementedError

    # -- the model --
    def _hidden_layers(self) -> List[Dict[str, Any]]:
        if self.layers is not None:
            if isinstance(self.layers, Mapping) or not isinstance(self.layers, Sequence):
                raise ValueError(f"layers: expected a list of the config's layer dicts, found "
                                 f"{self.layers!r}")
            return [dict(layer) for layer in self.layers]
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = (sizes,)
        sizes = list(sizes)
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                   for s in sizes):
            raise ValueError(f"hidden_layer_sizes: expected positive integers, found {sizes!r}")
        activation = _ACTIVATIONS.get(self.activation, self.activation)
        hidden = []
        for units in sizes:
            layer: Dict[str, Any] = {"units": int(units), "activation": activation}
            if self.dropout:
                layer["dropout"] = float(self.dropout)
            hidden.append(layer)
        return hidden

    def _seed(self) -> int:
        """random_state as mlpx's seed: an int as it is; a RandomState (or None: numpy's
        global one) draws one."""
        if isinstance(self.random_state, numbers.Integral) and \
                not isinstance(self.random_state, bool):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _batch(self, rows: int) -> int:
        if self.batch_size == "auto":
            return min(200, rows)
        if not isinstance(self.batch_size, numbers.Integral) or self.batch_size < 1:
            raise ValueError(f"batch_size: expected 'auto' or an integer >= 1, found "
                             f"{self.batch_size!r}")
        return min(int(self.batch_size), rows)  # as scikit-learn: at most the data set

    def _optimizer(self, batch: int) -> Dict[str, Any]:
        """The solver as mlpx's optimizer dict. alpha is scikit-learn's L2 term
        alpha / (2 batch) ||W||^2, whose gradient is weight_decay = alpha / batch."""
        if self.solver == "lbfgs":
            raise ValueError("solver: expected one of mlpx's optimizers ('adam', 'adamw', "
                             "'sgd', 'rmsprop', 'adagrad'), found 'lbfgs' (mlpx has no L-BFGS)")
        if not isinstance(self.alpha, numbers.Real) or self.alpha < 0:
            raise ValueError(f"alpha: expected a number >= 0, found {self.alpha!r}")
        opt: Dict[str, Any] = {"type": self.solver, "lr": float(self.learning_rate_init),
                               "weight_decay": float(self.alpha) / batch}
        if self.solver == "sgd":
            opt["momentum"] = float(self.momentum)
            opt["nesterov"] = bool(self.nesterovs_momentum) and self.momentum > 0
        elif self.solver in ("adam", "adamw"):
            opt.update(beta1=float(self.beta_1), beta2=float(self.beta_2),
                       eps=float(self.epsilon))
        return opt

    def _check_numbers(self) -> None:
        if not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise ValueError(f"max_iter: expected an integer >= 1, found {self.max_iter!r}")
        if not isinstance(self.n_iter_no_change, numbers.Integral) or self.n_iter_no_change < 1:
            raise ValueError(f"n_iter_no_change: expected an integer >= 1, found "
                             f"{self.n_iter_no_change!r}")
        if self.early_stopping and not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction: expected a number in (0, 1), found "
                             f"{self.validation_fraction!r}")

    # -- training --
    def _fit(self, X: Any, y: Any, incremental: bool, classes: Any = None,
             sample_weight: Any = None) -> "_BaseMLP":
        first = not hasattr(self, "model_") or not (incremental or self.warm_start)
        self._check_numbers()
        X, y = self._validate_data(X, y, reset=first, dtype=np.float32, order="C",
                                   multi_output=self._regression, y_numeric=self._regression)
        X = _float32(X)
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, X, dtype=np.float32,
                                           only_non_negative=True)
        targets = self._encode_targets(y, first, classes)
        if first:
            self.n_outputs_ = self._outputs(targets)
            self.model_ = Model(inputs=X.shape[1],
                                layers=self._hidden_layers() + [
                                    {"units": self.n_outputs_, "activation": "identity"}],
                                device=self.device, loss=self._loss, seed=self._seed(),
                                precision=self.precision)
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_: List[float] = []
            self.best_loss_: Optional[float] = np.inf
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_: List[float] = []
                self.best_validation_score_ = -np.inf
        batch = self._batch(X.shape[0])
        # partial_fit goes on with the optimizer it started (its state carries over in
        # mlpx.Model.fit only while the optimizer's settings stay the same).
        if not (incremental and not first and hasattr(self, "_solver_config")):
            self._solver_config = self._optimizer(batch)
        validation = None
        if self.early_stopping and not incremental:
            stratify = None if self._regression else targets
            parts = train_test_split(
                X, targets, *([] if weights is None else [weights]),
                test_size=self.validation_fraction, random_state=self._seed(), stratify=stratify)
            X, Xv, targets, yv = parts[:4]
            if weights is not None:
                weights = parts[4]  # the validation score stays unweighted
            X, Xv = _float32(X), _float32(Xv)
            validation = (Xv, yv)
            batch = self._batch(X.shape[0])
        best_weights: List[Optional[Dict[str, np.ndarray]]] = [None]
        stopped = [False]

        def after_epoch(m: Dict[str, Any]) -> bool:
            self.n_iter_ += 1
            self.t_ += X.shape[0]
            loss = float(m["train_loss"])
            self.loss_curve_.append(loss)
            self.loss_ = loss
            if incremental:
                return True
            if validation is not None:
                # scikit-learn's rule: the validation score (score(): accuracy, R^2) must beat
                # the best by tol.
                score = self._validation_score(m, *validation)
                self.validation_scores_.append(score)
                improved = score >= self.best_validation_score_ + self.tol
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best_weights[0] = self.model_.state_dict()
            else:
                improved = loss <= self.best_loss_ - self.tol
                if loss < self.best_loss_:
                    self.best_loss_ = loss
            self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
            if self._no_improvement_count > self.n_iter_no_change:
                stopped[0] = True
                return False
            return True

        self.model_.fit(X, targets, validation=validation,
                        epochs=1 if incremental else self.max_iter, batch_size=batch,
                        optimizer=self._solver_config, shuffle=bool(self.shuffle),
                        callbacks=[after_epoch], progress=bool(self.verbose),
                        task="regression" if self._regression else None,
                        sample_weight=weights)
        if validation is not None:
            self.best_loss_ = None
            if best_weights[0] is not None:
                self.model_.load_state_dict(best_weights[0])
        if not incremental and not stopped[0]:
            warnings.warn(f"{type(self).__name__}: max_iter ({self.max_iter}) epochs ran and "
                          f"the loss was still improving", ConvergenceWarning)
        return self

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "_BaseMLP":
        """Trains a new model on X [n_samples, n_features] and y (a new one each call, unless
        warm_start) for up to max_iter epochs; returns self. ``sample_weight`` ([n_samples],
        >= 0) makes each batch's loss the weighted average sum_i w_i l_i / sum_i w_i."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def _outputs(self, targets: np.ndarray) -> int:
        raise NotImplementedError

    # -- prediction --
    def _model_outputs(self, X: Any) -> np.ndarray:
        """Model.predict on X: probabilities for the classifier, values for the regressor, as
        float64 (scikit-learn's dtype of predictions)."""
        check_is_fitted(self, "model_")
        X = _float32(self._validate_data(X, reset=False, dtype=np.float32, order="C"))
        return self.model_.predict(X).astype(np.float64)

    def _weights(self, kind: str) -> List[np.ndarray]:
        check_is_fitted(self, "model_")
        state = self.model_.state_dict()
        count = len(self.model_.layers)
        return [state[f"layers.{i}.{kind}"].astype(np.float64) for i in range(count)]

    @property
    def coefs_(self) -> List[np.ndarray]:
        """Each layer's weights as scikit-learn holds them: [fan_in, fan_out] (mlpx and torch
        store [out, in]); copies."""
        return [w.T for w in self._weights("weight")]

    @property
    def intercepts_(self) -> List[np.ndarray]:
        """Each layer's bias [fan_out]; copies."""
        return self._weights("bias")

    def _more_tags(self) -> Dict[str, Any]:
        return {
            "non_deterministic": self.device != "cpu",
            # docs/python.md: OpenBLAS computes a float32 GEMM's rows in blocks, and the rows
            # left over past the last whole block with another kernel, so one row alone can
            # differ from the same row among 20 in its last bits; the check allows 1e-7.
            "_xfail_checks": {
                "check_methods_subset_invariance":
                    "float32 outputs of a row may differ in the last bits with the number of "
                    "rows predicted together (OpenBLAS's GEMM blocking); see docs/python.md",
                "check_sample_weights_invariance":
                    "a zero weight trains as no row up to float32 rounding (the sums run in "
                    "another order), not within 1e-7; unit weights are exact; see "
                    "docs/python.md",
            },
        }


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multilayer perceptron classifier trained by mlpx (cross-entropy over softmax outputs,
    one per class). Labels may be of any type numpy can sort (strings, booleans, ints that are
    not 0..K-1); ``classes_`` holds them, in the order of ``predict_proba``'s columns.

    Parameters as ``sklearn.neural_network.MLPClassifier``'s, plus ``device`` ("cpu",
    "cuda", "cuda:N", "auto"), ``precision`` ("fp32", "tf32", "bf16"), ``dropout`` (after each
    hidden layer) and ``layers`` (the hidden layers as the config file's dicts, instead of
    hidden_layer_sizes, activation and dropout). ``solver`` is any of mlpx's optimizers.
    """

    _loss = "cross_entropy"

    def _encode_targets(self, y: np.ndarray, first: bool, classes: Any = None) -> np.ndarray:
        check_classification_targets(y)
        if first:
            self.classes_ = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if len(self.classes_) < 2:
                raise DataError(f"y: expected at least 2 classes, found 1 class "
                                f"({self.classes_[0]!r})")
        codes = np.searchsorted(self.classes_, y)
        codes = np.minimum(codes, len(self.classes_) - 1)
        unknown = self.classes_[codes] != y
        if np.any(unknown):
            raise DataError(f"y: expected labels among classes_ {list(self.classes_)}, found "
                            f"{y[np.argmax(unknown)]!r}")
        return codes.astype(np.int64)

    def _outputs(self, targets: np.ndarray) -> int:
        return len(self.classes_)

    def _validation_score(self, metrics: Mapping[str, Any], x: np.ndarray,
                          targets: np.ndarray) -> float:
        return float(metrics["val_accuracy"])

    def partial_fit(self, X: Any, y: Any, classes: Any = None,
                    sample_weight: Any = None) -> "MLPClassifier":
        """One epoch over X and y, going on from the previous call (its weights and the
        optimizer's state). The first call needs ``classes``, every label that y may hold."""
        if not hasattr(self, "model_") and classes is None:
            raise ValueError("partial_fit: expected classes= (every label) in the first call, "
                             "found None")
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def predict_proba(self, X: Any) -> np.ndarray:
        """[n_samples, n_classes] class probabilities (softmax), columns in classes_' order."""
        return self._model_outputs(X)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row, as a label of classes_."""
        probabilities = self.predict_proba(X)  # first: NotFittedError before classes_
        return self.classes_[np.argmax(probabilities, axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multilayer perceptron regressor trained by mlpx (mean squared error, identity outputs):
    y [n_samples] or [n_samples, n_outputs]. Parameters as ``MLPClassifier``'s."""

    _loss = "mse"
    _regression = True

    def _encode_targets(self, y: np.ndarray, first: bool, classes: Any = None) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        outputs = 1 if y.ndim == 1 else y.shape[1]
        if not first and outputs != self.n_outputs_:
            raise DataError(f"y: expected {self.n_outputs_} output(s), as the first fit, found "
                            f"{outputs}")
        return np.ascontiguousarray(y)

    def _outputs(self, targets: np.ndarray) -> int:
        return 1 if targets.ndim == 1 else targets.shape[1]

    def _validation_score(self, metrics: Mapping[str, Any], x: np.ndarray,
                          targets: np.ndarray) -> float:
        # R^2 averaged over the outputs, as score() (the model's own val_r2 pools them).
        return float(r2_score(targets, self.model_.predict(x)))

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> "MLPRegressor":
        """One epoch over X and y, going on from the previous call."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X: Any) -> np.ndarray:
        """[n_samples] predictions ([n_samples, n_outputs] for a y of several columns)."""
        out = self._model_outputs(X)
        return out.ravel() if out.shape[1] == 1 else out

    def _more_tags(self) -> Dict[str, Any]:
        return {**super()._more_tags(), "multioutput": True}
