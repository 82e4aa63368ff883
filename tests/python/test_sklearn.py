"""mlpx.sklearn: MLPClassifier and MLPRegressor pass scikit-learn's check_estimator and work as a
scikit-learn user uses them (Pipeline, GridSearchCV, cross_val_score, clone, pickle, pandas,
any label type). Skipped where scikit-learn is not installed (Debian: python3-sklearn)."""
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed (Debian: python3-sklearn, "
                                      "`make deps`): the estimator tests skip")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_iris, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError, SkipTestWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import mlpx  # noqa: E402
from mlpx.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# The checks marked expected-to-fail through the estimators' tags (docs/python.md says why).
EXPECTED_TO_FAIL = {"check_methods_subset_invariance", "check_sample_weights_invariance"}


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def iris():
    x, y = load_iris(return_X_y=True)
    return x, y  # float64 [150, 4], int64 [150]


@pytest.mark.parametrize("estimator", [MLPClassifier(), MLPRegressor()],
                         ids=["classifier", "regressor"])
def test_check_estimator_passes(estimator):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkipTestWarning)
        check_estimator(estimator)  # raises on the first check that fails
    skipped = {str(w.message).split()[1] for w in caught if w.category is SkipTestWarning}
    assert skipped == EXPECTED_TO_FAIL, [str(w.message) for w in caught
                                         if w.category is SkipTestWarning]


def test_the_expected_failure_does_fail_and_only_in_the_last_bits():
    """What docs/python.md says of the one expected failure: a row predicted alone differs from
    the same row among 20 by float32 rounding, not more."""
    rng = np.random.RandomState(0)
    x = 3 * rng.uniform(size=(20, 3))
    y = (x[:, 0] > 1.5).astype(int)
    clf = MLPClassifier(random_state=0, max_iter=20).fit(x, y)
    together = clf.predict_proba(x)
    alone = np.concatenate([clf.predict_proba(row[None]) for row in x])
    np.testing.assert_allclose(alone, together, rtol=0, atol=1e-6)
    assert np.array_equal(np.argmax(alone, 1), np.argmax(together, 1))


@pytest.mark.parametrize("labels", [np.array(["setosa", "versicolor", "virginica"]),
                                    np.array(["b", "a", "c"], dtype=object),
                                    np.array([-3, 7, 100]), np.array([2.0, 0.0, 5.0])],
                         ids=["strings", "objects", "ints", "integral-floats"])
def test_any_label_type(iris, labels):
    x, y = iris
    named = labels[y]
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=60, batch_size=16,
                        learning_rate_init=0.01, random_state=0).fit(x, named)
    assert np.array_equal(clf.classes_, np.sort(labels))
    predicted = clf.predict(x)
    assert predicted.dtype == named.dtype and set(predicted) <= set(labels)
    assert clf.score(x, named) > 0.9
    proba = clf.predict_proba(x)
    assert proba.shape == (150, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-6)
    assert np.array_equal(clf.classes_[proba.argmax(1)], predicted)
    np.testing.assert_allclose(clf.predict_log_proba(x), np.log(proba))


def test_booleans_and_a_single_class(iris):
    x, y = iris
    flags = y == 2
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=60, learning_rate_init=0.01,
                        random_state=0).fit(x, flags)
    assert clf.classes_.tolist() == [False, True] and clf.predict(x).dtype == bool
    assert clf.predict_proba(x).shape == (150, 2)
    with pytest.raises(ValueError, match="expected at least 2 classes, found 1 class"):
        MLPClassifier().fit(x[:10], np.zeros(10))


def test_float64_and_int_features_are_cast(iris):
    x, y = iris
    params = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=3)
    p32 = MLPClassifier(**params).fit(x.astype(np.float32), y).predict_proba(x.astype(np.float32))
    p64 = MLPClassifier(**params).fit(x, y).predict_proba(x)
    assert np.array_equal(p32, p64)
    counts = np.round(x * 10).astype(np.int64)
    clf = MLPClassifier(**params).fit(counts, y)
    assert np.array_equal(clf.predict_proba(counts),
                          clf.predict_proba(counts.astype(np.float32)))
    assert clf.n_features_in_ == 4 and not hasattr(clf, "feature_names_in_")


def test_pandas_input_names_its_features(iris):
    pd = pytest.importorskip("pandas", reason="pandas is not installed: the pandas test skips")
    x, y = iris
    frame = pd.DataFrame(x, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    target = pd.Series(np.array(["a", "b", "c"])[y], name="species")
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=40, learning_rate_init=0.01,
                        random_state=0).fit(frame, target)
    assert clf.feature_names_in_.tolist() == list(frame.columns)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        assert np.array_equal(clf.predict(frame), clf.predict(x.astype(np.float32)))
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(frame.rename(columns={"sepal_l": "other"}))
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    reg.fit(frame[["sepal_l", "sepal_w"]], frame["petal_l"])
    assert reg.predict(frame[["sepal_l", "sepal_w"]]).shape == (150,)


def test_pickle_carries_the_weights(iris, tmp_path):
    x, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=10, random_state=0).fit(x, y)
    blob = pickle.dumps(clf)
    weights = sum(v.nbytes for v in clf.model_.state_dict().values())
    assert len(blob) > weights
    back = pickle.loads(blob)
    assert np.array_equal(back.predict_proba(x), clf.predict_proba(x))
    assert back.n_iter_ == clf.n_iter_ and back.get_params() == clf.get_params()
    # A model on its own pickles too, with its history, and goes on training from its state.
    model = pickle.loads(pickle.dumps(clf.model_))
    assert isinstance(model, mlpx.Model) and len(model.history) == clf.n_iter_
    assert [h["train_loss"] for h in model.history] == clf.loss_curve_
    assert np.array_equal(model.predict(x.astype(np.float32)),
                          clf.model_.predict(x.astype(np.float32)))


def test_pipeline_gridsearch_cross_val_score_and_clone(iris):
    x, y = iris
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=50,
                                                         learning_rate_init=0.01,
                                                         random_state=0))
    assert pipe.fit(x, y).score(x, y) > 0.9
    scores = cross_val_score(pipe, x, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85, scores
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)],
                               "mlpclassifier__learning_rate_init": [0.01, 0.03]}, cv=3)
    grid.fit(x, y)
    assert len(grid.cv_results_["params"]) == 4 and grid.best_score_ > 0.85
    assert grid.best_params_["mlpclassifier__hidden_layer_sizes"] in [(4,), (16,)]
    best = grid.best_estimator_[-1]
    assert best.hidden_layer_sizes == grid.best_params_["mlpclassifier__hidden_layer_sizes"]
    fitted = pipe[-1]
    twin = clone(fitted)
    assert twin.get_params() == fitted.get_params() and not hasattr(twin, "model_")
    with pytest.raises(NotFittedError):
        twin.predict(x)


def test_regressor_one_and_several_outputs_and_int_targets():
    x, y = make_regression(n_samples=200, n_features=5, n_targets=2, noise=1.0, random_state=0)
    y = y / y.std(0)
    reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=200, learning_rate_init=0.01,
                       random_state=0).fit(x, y)
    assert reg.n_outputs_ == 2 and reg.predict(x).shape == (200, 2)
    assert reg.predict(x).dtype == np.float64 and reg.score(x, y) > 0.9
    # Two float columns are regression targets (R^2), not class scores (accuracy).
    last = reg.model_.history[-1]
    assert np.isfinite(last["train_r2"]) and np.isnan(last["train_accuracy"])
    one = MLPRegressor(hidden_layer_sizes=(32,), max_iter=200, learning_rate_init=0.01,
                       random_state=0).fit(x, y[:, 0])
    assert one.predict(x).shape == (200,) and one.score(x, y[:, 0]) > 0.9
    counts = np.round(y[:, 0] * 10).astype(np.int64)
    assert MLPRegressor(max_iter=5, random_state=0).fit(x, counts).predict(x).shape == (200,)


@pytest.mark.parametrize("estimator", [MLPClassifier(), MLPRegressor()],
                         ids=["classifier", "regressor"])
def test_the_sample_weight_expected_failure_is_float32_rounding_only(estimator):
    """What docs/python.md says of check_sample_weights_invariance: its "ones" half passes as
    it is; its "zeros" half (zero weights against removed rows) fails only by float32
    rounding, which up to 200 Adam epochs (and the stopping rule's epoch count) carry to at most
    about 3e-4."""
    from sklearn.utils.estimator_checks import check_sample_weights_invariance
    name = type(estimator).__name__
    check_sample_weights_invariance(name, estimator, kind="ones")
    with pytest.raises(AssertionError, match="not equivalent to removing") as failure:
        check_sample_weights_invariance(name, estimator, kind="zeros")
    difference = float(str(failure.value).split("Max absolute difference: ")[1].split()[0])
    assert 0 < difference < 1e-3, difference


def test_sample_weight_in_fit_and_partial_fit(iris):
    """sample_weight as scikit-learn passes it: unit weights fit exactly as none; zero weights
    drop rows; partial_fit and early stopping take weights too."""
    x, y = iris
    x = StandardScaler().fit_transform(x)
    def fitted(xs, ys, **kw):
        return MLPClassifier(hidden_layer_sizes=(8,), batch_size=len(ys), max_iter=30,
                             learning_rate_init=0.01, shuffle=False, random_state=0).fit(
                                 xs, ys, **kw)
    plain, unit = fitted(x, y), fitted(x, y, sample_weight=[1.0] * len(y))
    assert np.array_equal(plain.predict_proba(x), unit.predict_proba(x))
    keep = np.arange(len(y)) % 3 != 0
    dropped = fitted(x, y, sample_weight=keep.astype(float))
    np.testing.assert_allclose(dropped.predict_proba(x), fitted(x[keep], y[keep]).predict_proba(x),
                               rtol=1e-4, atol=1e-6)
    # Weighting one class up moves its predicted share up.
    heavy = np.where(y == 2, 5.0, 1.0)
    shares = [(fitted(x, y, sample_weight=w).predict(x) == 2).mean() for w in (None, heavy)]
    assert shares[1] > shares[0]
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    clf.partial_fit(x, y, classes=[0, 1, 2], sample_weight=heavy)
    clf.partial_fit(x, y, sample_weight=heavy)
    assert clf.n_iter_ == 2
    MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, early_stopping=True,
                  random_state=0).fit(x, y, sample_weight=heavy)
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    reg.partial_fit(x, x[:, 0], sample_weight=heavy)
    with pytest.raises(ValueError, match="(?i)negative"):
        MLPRegressor(max_iter=2).fit(x, x[:, 0], sample_weight=-heavy)


def test_partial_fit_goes_on_from_the_last_call(iris):
    x, y = iris
    x = StandardScaler().fit_transform(x)
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, batch_size=16,
                        random_state=0)
    with pytest.raises(ValueError, match="classes="):
        clf.partial_fit(x, y)
    clf.partial_fit(x[:50], y[:50], classes=[0, 1, 2])
    for _ in range(30):
        clf.partial_fit(x, y)
    assert clf.n_iter_ == 31 and len(clf.loss_curve_) == 31
    assert clf.loss_curve_[-1] < clf.loss_curve_[1] and clf.score(x, y) > 0.9
    with pytest.raises(ValueError, match="classes_"):
        clf.partial_fit(x, np.full(150, 5))
    reg = MLPRegressor(hidden_layer_sizes=(8,), random_state=0)
    reg.partial_fit(x, x[:, 0])
    reg.partial_fit(x, x[:, 0])
    assert reg.n_iter_ == 2


def test_stopping_rules_early_stopping_and_warm_start(iris):
    x, y = iris
    x = StandardScaler().fit_transform(x)
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=500,
                        tol=1e-3, random_state=0).fit(x, y)
    assert clf.n_iter_ < 500 and clf.best_loss_ == min(clf.loss_curve_)
    early = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=500,
                          batch_size=16, early_stopping=True, n_iter_no_change=10,
                          random_state=0).fit(x, y)
    assert early.best_loss_ is None and len(early.validation_scores_) == early.n_iter_ < 500
    assert early.best_validation_score_ == max(early.validation_scores_) > 0.8
    warm = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, warm_start=True, random_state=0)
    warm.fit(x, y)
    model = warm.model_
    warm.fit(x, y)
    assert warm.model_ is model and warm.n_iter_ == 6
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        warnings.simplefilter("always", ConvergenceWarning)
        MLPClassifier(max_iter=2, random_state=0).fit(x, y)


def test_mlpx_parameters_and_sklearn_names(iris):
    x, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(6, 5), activation="logistic", solver="sgd",
                        learning_rate_init=0.1, dropout=0.1, max_iter=3, random_state=0)
    clf.fit(x, y)
    assert clf.model_.layers == [(6, "sigmoid", 0.0), (5, "sigmoid", 0.0), (3, "identity", 0.0)]
    config = clf.model_.config.to_dict()
    assert config["model"]["layers"][0]["dropout"] == pytest.approx(0.1)
    assert config["optimizer"]["type"] == "sgd" and config["optimizer"]["nesterov"]
    assert config["optimizer"]["weight_decay"] == pytest.approx(1e-4 / 150)
    assert [c.shape for c in clf.coefs_] == [(4, 6), (6, 5), (5, 3)]
    assert [b.shape for b in clf.intercepts_] == [(6,), (5,), (3,)]
    layered = MLPClassifier(layers=[{"units": 7, "activation": "elu", "alpha": 0.5}],
                            max_iter=2, random_state=0).fit(x, y)
    assert layered.model_.layers[0] == (7, "elu", pytest.approx(0.5))
    with pytest.raises(ValueError, match="no L-BFGS"):
        MLPClassifier(solver="lbfgs").fit(x, y)
    with pytest.raises(mlpx.ConfigError, match="activation"):
        MLPClassifier(activation="nope").fit(x, y)
    assert MLPClassifier(solver="rmsprop", max_iter=2).fit(x, y).n_iter_ == 2
