"""The serving path (`skserve.inputs`): per-transformer arrays give exactly the stored
pipeline's predictions for the pipelines skserve trains and imports, and anything it cannot
prove equal falls back to the pipeline on a DataFrame. In process, no server: the served
equality is `test_served_equals_in_process.py`."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from skserve import store
from skserve.data import CLASSIFICATION_TARGET as TARGET
from skserve.inputs import serving_path
from skserve.outputs import Task, score
from skserve.schema import request_model, rows_to_frame
from tests.classifiers import import_pclass, titanic_frame
from tests.service.test_served_equals_in_process import sample


def valid_rows(tag: str) -> list[dict]:
    schema = store.get_info(tag).schema
    return [request_model(schema)(**r).__dict__ for r in sample(tag)]


def assert_same_scores(tag: str, sizes: tuple[int, ...] = (1, 7, 60)) -> str:
    """The path's scores equal the pipeline's on a frame, call by call; the path's kind."""
    pipeline, info = store.load(tag)
    path = serving_path(pipeline, info.schema)
    task = Task.of(info)
    rows = valid_rows(tag)
    for n in sizes:
        for start in range(0, len(rows) - n + 1, n):
            batch = rows[start:start + n]
            want = score(pipeline, task, rows_to_frame(info.schema, batch))
            got = score(path.model, task, path.to_input(batch))
            assert list(got.values) == list(want.values)
            if want.proba is not None:
                assert np.array_equal(got.proba, want.proba)
    return path.kind


def test_a_trained_regressor_skips_the_frame_and_predicts_the_same(trained_model):
    assert assert_same_scores(trained_model) == "columns"


def test_an_imported_classifier_skips_the_frame_and_predicts_the_same(classifier_model):
    """Titanic: numbers imputed and scaled, text one-hot encoded, with None among them."""
    assert assert_same_scores(classifier_model) == "columns"


def test_an_imported_forest_with_integer_labels_skips_the_frame():
    assert assert_same_scores(import_pclass(version="inputs"), sizes=(1, 13)) == "columns"


def _titanic(features: ColumnTransformer, model=None, output: str = "default") -> Pipeline:
    frame = titanic_frame()
    X, y = frame.drop(columns=[TARGET]), frame[TARGET].to_numpy()
    return Pipeline([("features", features),
                     ("model", model or LogisticRegression(max_iter=500))]) \
        .set_output(transform=output).fit(X, y)


NUMERIC, TEXT = ["age", "sibsp", "parch"], ["pclass", "sex"]


def _columns(**kwargs) -> ColumnTransformer:
    return ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
        ("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False), TEXT)], **kwargs)


def _needs_frame(X):
    return X.to_numpy(dtype=float)  # an ndarray has no to_numpy: the path must not be used


FALLBACKS = {
    "a plain estimator": lambda: HistGradientBoostingClassifier(
        max_iter=5, categorical_features="from_dtype").fit(
            titanic_frame().drop(columns=[TARGET]).astype({c: "category" for c in TEXT}),
            titanic_frame()[TARGET]),
    "text and numbers in one transformer": lambda: _titanic(ColumnTransformer(
        [("levels", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
          ["pclass", "sibsp"])])),
    "pandas output": lambda: _titanic(_columns(), output="pandas"),
    "a transformer that needs a DataFrame": lambda: _titanic(ColumnTransformer([
        ("numeric", make_pipeline(FunctionTransformer(_needs_frame), SimpleImputer()), NUMERIC),
        ("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False), TEXT)])),
    "weighted transformers": lambda: _titanic(_columns(
        transformer_weights={"numeric": 2.0, "text": 1.0})),
    "columns chosen by a boolean mask": lambda: _titanic(ColumnTransformer([
        ("numeric", SimpleImputer(),
         [c in NUMERIC for c in titanic_frame().drop(columns=[TARGET]).columns]),
        ("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False), TEXT)])),
}


@pytest.mark.parametrize("case", FALLBACKS)
def test_what_cannot_be_proven_equal_is_served_on_a_frame(classifier_model, case):
    schema = store.get_info(classifier_model).schema
    pipeline = FALLBACKS[case]()
    path = serving_path(pipeline, schema)
    assert path.kind == "frame" and path.reason
    assert path.model is pipeline
    rows = valid_rows(classifier_model)[:5]
    assert list(path.model.predict(path.to_input(rows))) == \
        list(pipeline.predict(rows_to_frame(schema, rows)))


TAKEN = {
    "imputed, scaled and one-hot": lambda: _titanic(_columns()),
    "numbers passed through": lambda: _titanic(ColumnTransformer(
        [("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False), TEXT)],
        remainder="passthrough"), HistGradientBoostingClassifier(max_iter=5)),
    "a default (sparse) one-hot in a dense output": lambda: _titanic(ColumnTransformer(
        [("text", OneHotEncoder(handle_unknown="ignore"), TEXT)],
        remainder="passthrough"), HistGradientBoostingClassifier(max_iter=5)),
}


@pytest.mark.parametrize("case", TAKEN)
def test_the_same_data_without_those_quirks_skips_the_frame(classifier_model, case):
    """The control for the fallbacks above."""
    schema = store.get_info(classifier_model).schema
    pipeline = TAKEN[case]()
    path = serving_path(pipeline, schema)
    assert path.kind == "columns", path.reason
    rows = valid_rows(classifier_model)
    assert np.array_equal(path.model.predict_proba(path.to_input(rows)),
                          pipeline.predict_proba(rows_to_frame(schema, rows)))
