"""HistGradientBoosting trees walked together (`skserve.trees`): bit for bit scikit-learn's own
predictions for regressors and classifiers, with missing and infinite values and values on
the thresholds; anything it cannot prove equal keeps scikit-learn's per-tree loop. In
process; the served equality is `test_served_equals_in_process.py`."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

from skserve import trees

ROWS = 400


def data(seed: int = 0, missing: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Rows with missing values in every column, and a target that depends on them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(ROWS, 5))
    y = X[:, 0] * 2 + np.sin(X[:, 1] * 3) + np.where(X[:, 2] > 0.3, 1.5, 0) \
        + rng.normal(0, 0.1, ROWS)
    X[rng.random(X.shape) < missing] = np.nan
    return X, y


def unseen(model, seed: int = 9) -> np.ndarray:
    """Rows the model never saw: fresh draws, values on and beside its thresholds, NaN, inf."""
    X, _ = data(seed)
    probes = trees.probe_rows(trees.flatten(model), model.n_features_in_, seed=seed)
    return np.vstack([X, probes, np.full((1, X.shape[1]), np.nan)])


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and \
        np.array_equal(a.view(np.uint8), b.view(np.uint8))


@pytest.mark.parametrize("params", [
    {"max_iter": 60},
    {"max_iter": 40, "loss": "poisson"},
    {"max_iter": 30, "loss": "quantile", "quantile": 0.9, "max_leaf_nodes": 8},
    {"max_iter": 50, "max_depth": 3, "early_stopping": False},
])
def test_a_regressor_predicts_the_same_bits(params):
    X, y = data()
    if params.get("loss") == "poisson":
        y = np.exp(y / 4)
    model = HistGradientBoostingRegressor(random_state=0, **params).fit(X, y)
    walked = trees.faster(model)
    assert walked is not model and "_raw_predict" in vars(walked)
    rows = unseen(model)
    for n in (1, 7, trees.WALK_MAX_ROWS, len(rows)):  # the last: scikit-learn's loop
        assert same_bits(walked.predict(rows[:n]), model.predict(rows[:n]))


@pytest.mark.parametrize("classes", [2, 3])
def test_a_classifier_predicts_the_same_labels_and_probabilities(classes):
    X, y = data(seed=1)
    labels = np.array(["low", "mid", "high"])[np.digitize(y, np.quantile(y, [0.4, 0.7]))]
    if classes == 2:
        labels = np.where(labels == "low", "low", "not low")
    model = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(X, labels)
    walked = trees.faster(model)
    assert walked is not model
    assert len(walked._skserve_trees.roots) == 40 * (1 if classes == 2 else 3)
    rows = unseen(model)
    assert list(walked.predict(rows)) == list(model.predict(rows))
    assert same_bits(walked.predict_proba(rows), model.predict_proba(rows))
    assert same_bits(walked.decision_function(rows), model.decision_function(rows))


def test_a_pipeline_gets_a_copy_and_the_stored_one_is_untouched():
    X, y = data(seed=2)
    frame = pd.DataFrame(X, columns=list("abcde"))
    pipeline = make_pipeline(SimpleImputer(), HistGradientBoostingRegressor(max_iter=30))
    pipeline.fit(frame, y)
    walked = trees.faster(pipeline)
    assert walked is not pipeline and walked[-1] is not pipeline[-1]
    assert walked[0] is pipeline[0]
    assert "_raw_predict" not in vars(pipeline[-1])
    assert same_bits(walked.predict(frame), pipeline.predict(frame))


def test_a_model_fitted_on_named_columns_still_checks_them():
    """The walked copy runs the model's own input checks: named columns in another order are
    refused as scikit-learn refuses them, and neither loading nor predicting warns."""
    X, y = data(seed=3)
    frame = pd.DataFrame(X, columns=list("abcde"))
    model = HistGradientBoostingRegressor(max_iter=20).fit(frame, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        walked = trees.faster(model)
        assert walked is not model
        for rows in (frame[:trees.WALK_MAX_ROWS], frame):
            assert same_bits(walked.predict(rows), model.predict(rows))
    assert caught == []
    for rows in (frame[:3], frame):
        with pytest.raises(ValueError, match="feature names"):
            walked.predict(rows[list("edcba")])


def test_categorical_splits_keep_the_per_tree_loop(caplog):
    rng = np.random.default_rng(4)
    X = np.column_stack([rng.integers(0, 6, ROWS), rng.normal(size=ROWS)]).astype(float)
    y = np.where(np.isin(X[:, 0], [1, 4]), 3.0, 0.0) + X[:, 1]
    model = HistGradientBoostingRegressor(max_iter=20, categorical_features=[0]).fit(X, y)
    with caplog.at_level(logging.INFO, logger="skserve.trees"):
        assert trees.faster(model) is model
    assert "per-tree loop (it has categorical splits)" in caplog.text


def test_other_models_are_left_alone():
    X, y = data(seed=5, missing=0)
    model = Ridge().fit(X, y)
    assert trees.faster(model) is model
    with pytest.raises(trees.NotEquivalent, match="Ridge is not a fitted HistGradientBoosting"):
        trees.flatten(model)


@pytest.mark.parametrize("damage", ["missing values go the other way", "a root's children swapped"])
def test_the_proof_refuses_trees_walked_wrongly(damage):
    """What the probe rows are for: a flattening that sends rows down the wrong branch is
    caught at load, so a scikit-learn whose trees are laid out differently falls back."""
    X, y = data(seed=6)
    model = HistGradientBoostingRegressor(max_iter=30).fit(X, y)
    flat = trees.flatten(model)
    if damage == "missing values go the other way":
        flat.missing_left[:] = ~flat.missing_left
    else:
        root = flat.roots[0]
        flat.child[2 * root], flat.child[2 * root + 1] = \
            flat.child[2 * root + 1], flat.child[2 * root]
    with pytest.raises(trees.NotEquivalent, match="differ from scikit-learn's"):
        trees.walked_copy(model, flat)
