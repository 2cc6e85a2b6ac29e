"""Genuinely bad model versions, built here, for tests that must see a bad model fail.

No fault flags in the serving or batch code: each model below is a real scikit-learn pipeline
saved to the model store with the same metadata `skserve train` writes, and it is bad the
way real models are bad.

- `save_shifted`: trained on a corrupted target (every label moved by `shift`): fast, 200s,
  plausible numbers, all wrong.
- `save_slow`: a very large random forest: correct-ish predictions, each call costs tens of
  milliseconds of CPU.
- `save_waiting`: a stored model behind a step that waits a set time per call, as a feature
  lookup over the network does: the same answers, each call a known time slower whatever
  the machine's load (the step is `tests.waiting.Wait`: the server needs the repository on
  PYTHONPATH to load it).
- `save_retrained`: the control: a good retrain of a stored model, to be promoted.
- `save_failing`: the time and temperature features are fine, but WorkDay was one-hot
  encoded from workdays only (`handle_unknown="error"`), so `predict` raises on every
  non-workday row (about a third of valid inputs) while the schema accepts them.

Every function but `save_waiting` takes a `Dataset` (e.g. `tests.conftest.small_dataset()`);
each returns the tag.
"""

from __future__ import annotations

from dataclasses import replace

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from skserve import store
from skserve.data import Dataset, frame_sha256
from skserve.features import TimeFeatures, build_preprocessor
from skserve.schema import infer_schema
from skserve.train import REGRESSION, Entry, Selection, model_metadata, select_model


def _xy(dataset: Dataset):
    schema_names = [c for c in dataset.frame.columns if c != dataset.target]
    return dataset.frame[schema_names], dataset.frame[dataset.target].to_numpy()


def _save(dataset: Dataset, name: str, version: str, pipeline: Pipeline, family: str) -> str:
    """Store a fitted `pipeline` with the metadata `skserve train` writes (the schema of the
    whole dataset; metrics in-sample on the rows it can predict)."""
    schema = infer_schema(dataset.frame, dataset.target, dataset.time_column)
    X, y = _xy(dataset)
    if family.endswith("workdays_only"):
        keep = (X["WorkDay"] == 1).to_numpy()
        X, y = X[keep], y[keep]
    entry = Entry(family, {**REGRESSION.score(pipeline, X, y, []), "cv_rmse": None}, 0.0, 0.0,
                  {})
    selection = Selection(pipeline, entry, [entry], schema, 0, len(dataset.frame))
    metadata = model_metadata(selection, dataset, 7)
    info = store.save(name, pipeline, metadata, {"dataset": dataset.name, "family": family},
                      version=version)
    return info.tag


def save_shifted(dataset: Dataset, shift: float, name: str = "demand",
                 version: str = "shifted") -> str:
    """A model fitted to `target + shift` (target units; e.g. +2 GW on demand)."""
    frame = dataset.frame.copy()
    frame[dataset.target] = frame[dataset.target] + shift
    corrupted = replace(dataset, frame=frame, sha256=frame_sha256(frame))
    selection = select_model(corrupted, seed=7, n_iter=1, holdout_weeks=1, cv_splits=2)
    info = store.save(name, selection.pipeline, model_metadata(selection, corrupted, 7),
                      {"dataset": dataset.name, "family": selection.winner.model},
                      version=version)
    return info.tag


def save_slow(dataset: Dataset, trees: int = 600, name: str = "demand",
              version: str = "slow") -> str:
    """A random forest of `trees` deep trees: every predict walks all of them."""
    schema = infer_schema(dataset.frame, dataset.target, dataset.time_column)
    forest = RandomForestRegressor(n_estimators=trees, max_depth=12, random_state=7, n_jobs=1)
    pipeline = Pipeline([("features", build_preprocessor(schema, scale=False)),
                         ("model", forest)])
    X, y = _xy(dataset)
    pipeline.fit(X, y)
    return _save(dataset, name, version, pipeline, f"random_forest_{trees}")


def save_failing(dataset: Dataset, name: str = "demand", version: str = "failing") -> str:
    """A model whose WorkDay encoder only ever saw workdays: raises on WorkDay=0 rows."""
    frame = dataset.frame
    time_column = dataset.time_column or "timestamp"
    features = ColumnTransformer([
        ("time", TimeFeatures(), [time_column]),
        ("temperature", "passthrough", ["Temperature"]),
        ("workday", OneHotEncoder(handle_unknown="error", sparse_output=False), ["WorkDay"]),
    ])
    pipeline = Pipeline([("features", features),
                         ("model", HistGradientBoostingRegressor(random_state=7))])
    workdays = frame[frame["WorkDay"] == 1]
    X, y = _xy(replace(dataset, frame=workdays))
    pipeline.fit(X, y)
    return _save(dataset, name, version, pipeline, "hist_gradient_boosting_workdays_only")


def save_retrained(dataset: Dataset, base: str, name: str = "demand",
                   version: str = "retrained", seed: int = 11) -> str:
    """A good new version: `base`'s pipeline refitted on the same data with another seed
    (what a scheduled retrain produces); it must be promoted."""
    from sklearn.base import clone

    pipeline, info = store.load(base)
    fresh = clone(pipeline)
    if "model__random_state" in fresh.get_params():
        fresh.set_params(model__random_state=seed)
    X, y = _xy(dataset)
    fresh.fit(X, y)
    return _save(dataset, name, version, fresh, str(info.metadata.get("family", "retrained")))


def save_waiting(base: str, low_s: float, high_s: float, name: str = "demand",
                 version: str = "waiting") -> str:
    """`base`'s pipeline behind a `Wait(low_s, high_s)` step, with `base`'s metadata."""
    from tests.waiting import Wait

    pipeline, info = store.load(base)
    waiting = Pipeline([("lookup", Wait(low_s, high_s)), ("model", pipeline)])
    return store.save(name, waiting, info.metadata, dict(info.labels), version=version).tag
