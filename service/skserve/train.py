"""Model selection on a chronological split: search families, rank them, keep the best.

The core (`select_model`) is pure: data in, fitted pipeline and leaderboard out. Saving to
BentoML's model store is a separate step (`save_model`).
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import loguniform, randint, uniform
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import (
    ExtraTreesRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.linear_model import Ridge
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    r2_score,
    root_mean_squared_error,
)
from sklearn.model_selection import ParameterSampler, TimeSeriesSplit
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from .data import Dataset
from .errors import InvalidInput, TrainingFailed
from .features import build_preprocessor
from .schema import FeatureSchema, infer_schema

PACKAGES = ("scikit-learn", "pandas", "numpy", "scipy", "bentoml", "skserve")


@dataclass(frozen=True)
class Family:
    """A model family: an estimator, whether it needs scaled inputs, and its search space."""

    name: str
    make: Callable[[int], BaseEstimator]
    scale: bool
    space: dict[str, Any]
    wide_only: bool = False


FAMILIES = (
    Family("ridge", lambda seed: Ridge(), True, {"alpha": loguniform(1e-3, 1e2)}),
    Family(
        "random_forest",
        lambda seed: RandomForestRegressor(random_state=seed, n_jobs=1),
        False,
        {
            "n_estimators": randint(40, 120),
            "max_depth": randint(8, 18),
            "min_samples_leaf": randint(1, 8),
            "max_features": uniform(0.4, 0.6),
        },
    ),
    Family(
        "hist_gradient_boosting",
        lambda seed: HistGradientBoostingRegressor(random_state=seed),
        False,
        {
            "learning_rate": loguniform(0.03, 0.3),
            "max_iter": randint(150, 500),
            "max_leaf_nodes": randint(15, 63),
            "min_samples_leaf": randint(10, 60),
            "l2_regularization": loguniform(1e-4, 1.0),
        },
    ),
    Family(
        "extra_trees",
        lambda seed: ExtraTreesRegressor(random_state=seed, n_jobs=1),
        False,
        {"n_estimators": randint(60, 160), "max_depth": randint(10, 24),
         "min_samples_leaf": randint(1, 6)},
        wide_only=True,
    ),
)


class MeanBaseline(RegressorMixin, BaseEstimator):
    """Predicts the training mean: the floor any model must clear."""

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> MeanBaseline:
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), self.mean_)


class ProfileBaseline(RegressorMixin, BaseEstimator):
    """Mean target by time of day × a 0/1 day-type flag (e.g. workday): a seasonal naive model."""

    def __init__(self, time_column: str | None = None, flag_column: str | None = None):
        self.time_column = time_column
        self.flag_column = flag_column

    def _keys(self, X: pd.DataFrame) -> pd.Series:
        parts = []
        if self.time_column:
            stamps = pd.to_datetime(X[self.time_column])
            parts.append((stamps.dt.hour * 60 + stamps.dt.minute).astype(str))
        if self.flag_column:
            parts.append(X[self.flag_column].astype(str))
        if not parts:
            return pd.Series("all", index=X.index)
        key = parts[0]
        for part in parts[1:]:
            key = key + "|" + part
        return key

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> ProfileBaseline:
        self.profile_ = pd.Series(np.asarray(y), index=X.index).groupby(self._keys(X)).mean()
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self._keys(X).map(self.profile_).fillna(self.mean_).to_numpy(dtype=float)


@dataclass
class Entry:
    """One leaderboard row, scored on the chronological hold-out."""

    model: str
    rmse: float
    mae: float
    r2: float
    mape: float
    fit_s: float
    predict_us_per_row: float
    cv_rmse: float | None
    params: dict[str, Any]
    baseline: bool = False


@dataclass
class Selection:
    """The outcome of a training run."""

    pipeline: Pipeline
    winner: Entry
    leaderboard: list[Entry]
    schema: FeatureSchema
    holdout_rows: int
    train_rows: int


def chronological_split(dataset: Dataset,
                        holdout_weeks: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last `holdout_weeks` of data (or the last 15 % of rows without a time column)."""
    frame = dataset.frame
    if dataset.time_column:
        stamps = pd.to_datetime(frame[dataset.time_column])
        cut = stamps.max() - pd.Timedelta(weeks=holdout_weeks)
        mask = stamps > cut
    else:
        mask = pd.Series(np.arange(len(frame)) >= int(len(frame) * 0.85), index=frame.index)
    train, holdout = frame[~mask], frame[mask]
    if len(train) < 50 or len(holdout) < 10:
        raise InvalidInput(
            f"not enough rows for a hold-out: {len(train)} train / {len(holdout)} hold-out "
            f"(hold-out of {holdout_weeks} weeks)"
        )
    return train, holdout


def _score(model: str, estimator: Any, X: pd.DataFrame, y: np.ndarray, fit_s: float,
           cv_rmse: float | None, params: dict[str, Any], baseline: bool = False) -> Entry:
    start = time.perf_counter()
    pred = estimator.predict(X)
    predict_us = (time.perf_counter() - start) / len(X) * 1e6
    return Entry(
        model=model,
        rmse=float(root_mean_squared_error(y, pred)),
        mae=float(mean_absolute_error(y, pred)),
        r2=float(r2_score(y, pred)),
        mape=float(mean_absolute_percentage_error(y, pred)),
        fit_s=fit_s,
        predict_us_per_row=predict_us,
        cv_rmse=cv_rmse,
        params=params,
        baseline=baseline,
    )


def _plain(value: Any) -> Any:
    """numpy scalars to plain Python, so params serialise to JSON and model metadata."""
    return value.item() if hasattr(value, "item") else value


def candidates(seed: int, n_iter: int, wide: bool) -> Iterator[tuple[Family, dict[str, Any]]]:
    """Every (family, parameter set) the search will try, in a fixed order for a seed."""
    for family in FAMILIES:
        if family.wide_only and not wide:
            continue
        n = 1 if family.name == "ridge" and not wide else n_iter
        for params in ParameterSampler(family.space, n_iter=n, random_state=seed):
            yield family, {k: _plain(v) for k, v in sorted(params.items())}


def make_pipeline_for(family: Family, schema: FeatureSchema, params: dict[str, Any],
                      seed: int) -> Pipeline:
    estimator = family.make(seed).set_params(**params)
    return Pipeline([("features", build_preprocessor(schema, family.scale)), ("model", estimator)])


def select_model(
    dataset: Dataset,
    *,
    seed: int = 42,
    n_iter: int = 3,
    wide: bool = False,
    cv_splits: int = 3,
    holdout_weeks: float = 4,
    on_step: Callable[[str], None] | None = None,
) -> Selection:
    """Search every family with TimeSeriesSplit CV, score the best of each on the hold-out.

    OpenMP is held to one thread: on a shared 2-core machine, histogram boosting with a
    thread per core ran 20x slower under contention than with one.
    """
    with threadpool_limits(limits=1):
        return _select(dataset, seed, n_iter, wide, cv_splits, holdout_weeks, on_step)


def _select(dataset: Dataset, seed: int, n_iter: int, wide: bool, cv_splits: int,
            holdout_weeks: float, on_step: Callable[[str], None] | None) -> Selection:
    train, holdout = chronological_split(dataset, holdout_weeks)
    schema = infer_schema(dataset.frame, dataset.target, dataset.time_column)
    X_train, y_train = train[schema.names], train[dataset.target].to_numpy()
    X_hold, y_hold = holdout[schema.names], holdout[dataset.target].to_numpy()
    folds = list(TimeSeriesSplit(n_splits=cv_splits).split(X_train))

    best: dict[str, tuple[float, dict[str, Any]]] = {}
    for family, params in candidates(seed, n_iter, wide):
        if on_step:
            on_step(f"{family.name} {params}")
        errors = []
        for fit_idx, val_idx in folds:
            pipe = make_pipeline_for(family, schema, params, seed)
            pipe.fit(X_train.iloc[fit_idx], y_train[fit_idx])
            pred = pipe.predict(X_train.iloc[val_idx])
            errors.append(root_mean_squared_error(y_train[val_idx], pred))
        cv = float(np.mean(errors))
        if family.name not in best or cv < best[family.name][0]:
            best[family.name] = (cv, params)

    board: list[Entry] = []
    fitted: dict[str, Pipeline] = {}
    for family in FAMILIES:
        if family.name not in best:
            continue
        cv, params = best[family.name]
        pipe = make_pipeline_for(family, schema, params, seed)
        start = time.perf_counter()
        pipe.fit(X_train, y_train)
        fitted[family.name] = pipe
        board.append(_score(family.name, pipe, X_hold, y_hold, time.perf_counter() - start,
                            cv, params))
    flag = next((f.name for f in schema.features
                 if f.dtype == "int" and f.categories == [0, 1]), None)
    for name, baseline in (("baseline_mean", MeanBaseline()),
                           ("baseline_profile", ProfileBaseline(schema.time_column, flag))):
        start = time.perf_counter()
        baseline.fit(X_train, y_train)
        board.append(_score(name, baseline, X_hold, y_hold, time.perf_counter() - start,
                            None, baseline.get_params(), baseline=True))
    board.sort(key=lambda e: e.rmse)

    winner = next(e for e in board if not e.baseline)
    for base in (e for e in board if e.baseline):
        if winner.rmse >= base.rmse:
            raise TrainingFailed(
                f"the best model {winner.model} (RMSE {winner.rmse:.4f}) does not beat "
                f"{base.model} (RMSE {base.rmse:.4f}); refusing to save it"
            )
    if on_step:
        on_step(f"refit {winner.model} on all {len(dataset.frame)} rows")
    final = clone(fitted[winner.model])
    final.fit(dataset.frame[schema.names], dataset.frame[dataset.target].to_numpy())
    return Selection(final, winner, board, schema, len(holdout), len(train))


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def without_nones(value: Any) -> Any:
    """BentoML metadata takes no None: drop those keys (readers fall back to defaults)."""
    if isinstance(value, dict):
        return {k: without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nones(v) for v in value]
    return value


def model_metadata(selection: Selection, dataset: Dataset, seed: int) -> dict[str, Any]:
    """Everything the service, batch jobs and auditors need to know about a saved model."""
    winner = selection.winner
    return without_nones({
        "schema": selection.schema.to_dict(),
        "metrics": {k: getattr(winner, k) for k in ("rmse", "mae", "r2", "mape", "cv_rmse")},
        "family": winner.model,
        "params": winner.params,
        "leaderboard": [asdict(e) for e in selection.leaderboard],
        "dataset": {"name": dataset.name, "source": dataset.source, "sha256": dataset.sha256,
                    "rows": len(dataset.frame), "train_rows": selection.train_rows,
                    "holdout_rows": selection.holdout_rows},
        "seed": seed,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "packages": package_versions(),
    })
