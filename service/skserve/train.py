"""Model selection: search families, rank them on a hold-out against naive baselines, keep
the best. One search for both tasks; an `Objective` says what differs (families, baselines,
metrics, the ranking metric, how rows are split).

The core (`select_model`) is pure: data in, fitted pipeline and leaderboard out. Saving to
BentoML's model store is a separate step (`store.save` with `model_metadata`).
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import loguniform, randint, uniform
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.model_selection import (
    ParameterSampler,
    StratifiedKFold,
    TimeSeriesSplit,
    train_test_split,
)
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from .data import Dataset
from .errors import InvalidInput, TrainingFailed
from .features import build_preprocessor
from .schema import FeatureSchema, infer_schema

PACKAGES = ("scikit-learn", "pandas", "numpy", "scipy", "bentoml", "skops", "skserve")

Task = Literal["regression", "classification"]
TASKS: tuple[Task, ...] = ("regression", "classification")
# An integer target with at most this many distinct values is taken as class labels.
MAX_CLASS_LEVELS = 10
# More classes than this is not a classification skserve trains (or serves) well.
MAX_CLASSES = 50
# Fewest rows of one class that a stratified hold-out and cross-validation can split.
MIN_CLASS_ROWS = 5
# Share of rows held out for ranking when the data has no time column (classification).
HOLDOUT_FRACTION = 0.2
CLASS_WEIGHTS = [None, "balanced"]


@dataclass(frozen=True)
class Family:
    """A model family: an estimator, whether it needs scaled inputs, and its search space.

    `quick`: one candidate unless the search is `--wide` (a linear model with one knob)."""

    name: str
    make: Callable[[int], BaseEstimator]
    scale: bool
    space: dict[str, Any]
    wide_only: bool = False
    quick: bool = False


REGRESSION_FAMILIES = (
    Family("ridge", lambda seed: Ridge(), True, {"alpha": loguniform(1e-3, 1e2)}, quick=True),
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

# Class weights are searched like any other parameter: "balanced" reweights rows by inverse
# class frequency (scikit-learn's answer to imbalance), None keeps the data's own mix.
CLASSIFICATION_FAMILIES = (
    Family(
        "logistic_regression",
        lambda seed: LogisticRegression(max_iter=2000),
        True,
        {"C": loguniform(1e-2, 1e2), "class_weight": CLASS_WEIGHTS},
    ),
    Family(
        "random_forest",
        lambda seed: RandomForestClassifier(random_state=seed, n_jobs=1),
        False,
        {
            "n_estimators": randint(100, 300),
            "max_depth": randint(3, 16),
            "min_samples_leaf": randint(1, 10),
            "max_features": uniform(0.3, 0.7),
            "class_weight": CLASS_WEIGHTS,
        },
    ),
    Family(
        "hist_gradient_boosting",
        lambda seed: HistGradientBoostingClassifier(random_state=seed),
        False,
        {
            "learning_rate": loguniform(0.02, 0.3),
            "max_iter": randint(50, 300),
            "max_leaf_nodes": randint(7, 40),
            "min_samples_leaf": randint(5, 40),
            "l2_regularization": loguniform(1e-4, 1.0),
            "class_weight": CLASS_WEIGHTS,
        },
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


def aligned_proba(estimator: Any, X: pd.DataFrame, classes: list[Any]) -> np.ndarray:
    """`predict_proba` with one column per class of `classes`, in that order: a model fitted
    on a fold that lacked a class gets probability 0 for it (and pays for it in log loss)."""
    proba = np.asarray(estimator.predict_proba(X), dtype=float)
    own = list(estimator.classes_)
    if own == list(classes):
        return proba
    out = np.zeros((len(X), len(classes)))
    for j, label in enumerate(own):
        out[:, classes.index(label)] = proba[:, j]
    return out


def predict_values(estimator: Any, X: pd.DataFrame, classes: list[Any]) -> np.ndarray:
    """A regressor's output: one number per row."""
    return np.asarray(estimator.predict(X), dtype=float)


def regression_metrics(y: np.ndarray, pred: np.ndarray,
                       classes: list[Any]) -> dict[str, float | None]:
    """RMSE, MAE in target units; MAPE as a fraction; R²."""
    return {
        "rmse": float(root_mean_squared_error(y, pred)),
        "mae": float(mean_absolute_error(y, pred)),
        "r2": float(r2_score(y, pred)),
        "mape": float(mean_absolute_percentage_error(y, pred)),
    }


def brier_mean_over_classes(y: np.ndarray, proba: np.ndarray, classes: list[Any]) -> float:
    """Mean over rows and classes of (p_c − 1[y = c])²: scikit-learn's multiclass Brier score
    (a sum over classes) divided by the number of classes. With two classes it equals the
    usual binary Brier score (p_positive − y)²."""
    total = brier_score_loss(y, proba, labels=classes, scale_by_half=False)
    return float(total) / len(classes)


def classification_metrics(y: np.ndarray, proba: np.ndarray,
                           classes: list[Any]) -> dict[str, float | None]:
    """From probabilities (one column per class of `classes`): accuracy and macro F1 of the
    most probable label; ROC AUC (one-vs-rest, macro-averaged for more than two classes; None
    when the rows lack a class), log loss (natural log) and Brier score (see
    `brier_mean_over_classes`)."""
    pred = np.asarray(classes)[proba.argmax(axis=1)]
    y_arr = np.asarray(y)
    try:
        if len(classes) == 2:
            auc = roc_auc_score(y_arr == classes[1], proba[:, 1])
        else:
            auc = roc_auc_score(y_arr, proba, multi_class="ovr", labels=classes)
        auc_value: float | None = float(auc)
    except ValueError:  # a class absent from these rows
        auc_value = None
    return {
        "accuracy": float(accuracy_score(y_arr, pred)),
        "macro_f1": float(f1_score(y_arr, pred, average="macro", labels=classes,
                                   zero_division=0)),
        "roc_auc": auc_value,
        "log_loss": float(log_loss(y_arr, proba, labels=classes)),
        "brier": brier_mean_over_classes(y_arr, proba, classes),
    }


@dataclass(frozen=True)
class Column:
    """One leaderboard column: header, metric key, number format."""

    header: str
    key: str
    fmt: str


@dataclass(frozen=True)
class Objective:
    """What a task searches, how it scores and ranks (lower `rank_metric` is better)."""

    task: Task
    families: tuple[Family, ...]
    rank_metric: str
    rank_label: str
    predict: Callable[[Any, pd.DataFrame, list[Any]], np.ndarray]
    metrics: Callable[[np.ndarray, np.ndarray, list[Any]], dict[str, float | None]]
    columns: tuple[Column, ...]

    @property
    def cv_key(self) -> str:
        return f"cv_{self.rank_metric}"

    def score(self, estimator: Any, X: pd.DataFrame, y: np.ndarray,
              classes: list[Any]) -> dict[str, float | None]:
        """The task's metrics of a fitted estimator on rows X with true values y."""
        return self.metrics(y, self.predict(estimator, X, classes), classes)

    def baselines(self, schema: FeatureSchema) -> list[tuple[str, BaseEstimator]]:
        """The naive models the winner must beat on the ranking metric."""
        if self.task == "classification":
            return [("baseline_majority", DummyClassifier(strategy="most_frequent")),
                    ("baseline_prior", DummyClassifier(strategy="prior"))]
        flag = next((f.name for f in schema.features
                     if f.dtype == "int" and f.categories == [0, 1]), None)
        return [("baseline_mean", MeanBaseline()),
                ("baseline_profile", ProfileBaseline(schema.time_column, flag))]


REGRESSION = Objective(
    "regression", REGRESSION_FAMILIES, "rmse", "RMSE", predict_values, regression_metrics,
    (Column("RMSE", "rmse", ".4f"), Column("MAE", "mae", ".4f"), Column("R²", "r2", ".3f"),
     Column("MAPE", "mape", ".2%")),
)
# Ranked by log loss: a proper scoring rule on the probabilities the service will serve,
# defined for any number of classes and not fooled by a majority-class guess on imbalanced
# data the way accuracy is.
CLASSIFICATION = Objective(
    "classification", CLASSIFICATION_FAMILIES, "log_loss", "log loss", aligned_proba,
    classification_metrics,
    (Column("log loss", "log_loss", ".4f"), Column("accuracy", "accuracy", ".3f"),
     Column("macro F1", "macro_f1", ".3f"), Column("ROC AUC", "roc_auc", ".3f"),
     Column("Brier", "brier", ".4f")),
)
OBJECTIVES = {o.task: o for o in (REGRESSION, CLASSIFICATION)}


def objective(task: str) -> Objective:
    if task not in OBJECTIVES:
        raise InvalidInput(f"unknown task {task!r}: use one of {list(OBJECTIVES)}")
    return OBJECTIVES[task]


def detect_task(target: pd.Series) -> tuple[Task, str]:
    """The task a target column implies, and the rule that decided it (said to the user):
    text or boolean → classification; integers with at most MAX_CLASS_LEVELS distinct values
    → classification; any other number → regression."""
    values = target.dropna()
    name = target.name
    if pd.api.types.is_bool_dtype(values):
        return "classification", f"target {name!r} is boolean"
    if not pd.api.types.is_numeric_dtype(values):
        return "classification", f"target {name!r} is text"
    levels = values.nunique()
    if pd.api.types.is_integer_dtype(values) and levels <= MAX_CLASS_LEVELS:
        return "classification", (f"target {name!r} is an integer with {levels} levels "
                                  f"(at most {MAX_CLASS_LEVELS})")
    return "regression", f"target {name!r} is numeric with {levels} distinct values"


def check_target(dataset: Dataset, task: Task) -> None:
    """Refuse a target the task cannot learn, naming what is wrong with it."""
    y = dataset.frame[dataset.target]
    where = f"{dataset.source}: target {dataset.target!r}"
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            raise InvalidInput(f"{where} is not numeric ({y.dtype}): a regression needs "
                               "numbers (use --task classification)")
        return
    if pd.api.types.is_float_dtype(y) and not np.all(np.mod(y.dropna(), 1) == 0):
        raise InvalidInput(f"{where} has fractional values: class labels must be text, "
                           "booleans or integers (use --task regression)")
    counts = y.value_counts()
    if len(counts) < 2:
        raise InvalidInput(f"{where} has {len(counts)} class: a classifier needs at least two")
    if len(counts) > MAX_CLASSES:
        raise InvalidInput(f"{where} has {len(counts)} classes (at most {MAX_CLASSES}); "
                           "use --task regression if it is a number")
    rare = counts[counts < MIN_CLASS_ROWS]
    if len(rare):
        raise InvalidInput(f"{where}: class(es) {rare.to_dict()} have fewer than "
                           f"{MIN_CLASS_ROWS} rows, too few to hold out and cross-validate")


@dataclass
class Entry:
    """One leaderboard row, scored on the hold-out: the task's metrics (plus `cv_<rank
    metric>`, the mean over CV folds, None for baselines), fit seconds and predict µs/row."""

    model: str
    metrics: dict[str, float | None]
    fit_s: float
    predict_us_per_row: float
    params: dict[str, Any]
    baseline: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A flat row (the shape of `reports/leaderboard.json` and of the metadata)."""
        return {"model": self.model, **self.metrics, "fit_s": self.fit_s,
                "predict_us_per_row": self.predict_us_per_row, "params": self.params,
                "baseline": self.baseline}


@dataclass
class Selection:
    """The outcome of a training run."""

    pipeline: Pipeline
    winner: Entry
    leaderboard: list[Entry]
    schema: FeatureSchema
    holdout_rows: int
    train_rows: int
    task: Task = "regression"
    classes: list[Any] = field(default_factory=list)
    split: str = "chronological"

    @property
    def objective(self) -> Objective:
        return objective(self.task)


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
    return _checked(frame[~mask], frame[mask], f"hold-out of {holdout_weeks} weeks")


def stratified_split(dataset: Dataset, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random HOLDOUT_FRACTION of rows with the same class mix as the whole data."""
    frame = dataset.frame
    train, holdout = train_test_split(frame, test_size=HOLDOUT_FRACTION, random_state=seed,
                                      stratify=frame[dataset.target])
    return _checked(train, holdout, f"stratified {HOLDOUT_FRACTION:.0%} hold-out")


def _checked(train: pd.DataFrame, holdout: pd.DataFrame,
             what: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    if len(train) < 50 or len(holdout) < 10:
        raise InvalidInput(
            f"not enough rows for a hold-out: {len(train)} train / {len(holdout)} hold-out "
            f"({what})")
    return train, holdout


def _plain(value: Any) -> Any:
    """numpy scalars to plain Python, so params serialise to JSON and model metadata."""
    return value.item() if hasattr(value, "item") else value


def candidates(seed: int, n_iter: int, wide: bool,
               task: str = "regression") -> Iterator[tuple[Family, dict[str, Any]]]:
    """Every (family, parameter set) the search will try, in a fixed order for a seed."""
    for family in objective(task).families:
        if family.wide_only and not wide:
            continue
        n = 1 if family.quick and not wide else n_iter
        for params in ParameterSampler(family.space, n_iter=n, random_state=seed):
            yield family, {k: _plain(v) for k, v in sorted(params.items())}


def make_pipeline_for(family: Family, schema: FeatureSchema, params: dict[str, Any],
                      seed: int) -> Pipeline:
    estimator = family.make(seed).set_params(**params)
    return Pipeline([("features", build_preprocessor(schema, family.scale)), ("model", estimator)])


def select_model(
    dataset: Dataset,
    *,
    task: Task = "regression",
    seed: int = 42,
    n_iter: int = 3,
    wide: bool = False,
    cv_splits: int = 3,
    holdout_weeks: float = 4,
    on_step: Callable[[str], None] | None = None,
) -> Selection:
    """Search every family of the task with cross-validation, score the best of each and the
    baselines on the hold-out, refit the winner on all rows.

    Split: chronological (the last `holdout_weeks`, TimeSeriesSplit CV) for a regression or
    with a time column; otherwise stratified (HOLDOUT_FRACTION, StratifiedKFold CV) for a
    classification. Raises TrainingFailed when no model beats every baseline.

    OpenMP is held to one thread: on a shared 2-core machine, histogram boosting with a
    thread per core ran 20x slower under contention than with one.
    """
    check_target(dataset, task)
    with threadpool_limits(limits=1):
        return _select(dataset, objective(task), seed, n_iter, wide, cv_splits, holdout_weeks,
                       on_step)


def _folds(chronological: bool, X: pd.DataFrame, y: np.ndarray,
           cv_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    if chronological:
        return list(TimeSeriesSplit(n_splits=cv_splits).split(X))
    return list(StratifiedKFold(n_splits=cv_splits, shuffle=True, random_state=seed).split(X, y))


def _select(dataset: Dataset, objective: Objective, seed: int, n_iter: int, wide: bool,
            cv_splits: int, holdout_weeks: float,
            on_step: Callable[[str], None] | None) -> Selection:
    task = objective.task
    chronological = task == "regression" or dataset.time_column is not None
    train, holdout = (chronological_split(dataset, holdout_weeks) if chronological
                      else stratified_split(dataset, seed))
    schema = infer_schema(dataset.frame, dataset.target, dataset.time_column, task)
    X_train, y_train = train[schema.names], train[dataset.target].to_numpy()
    X_hold, y_hold = holdout[schema.names], holdout[dataset.target].to_numpy()
    classes = (np.unique(dataset.frame[dataset.target]).tolist()
               if task == "classification" else [])
    folds = _folds(chronological, X_train, y_train, cv_splits, seed)
    rank = objective.rank_metric

    best: dict[str, tuple[float, dict[str, Any]]] = {}
    for family, params in candidates(seed, n_iter, wide, task):
        if on_step:
            on_step(f"{family.name} {params}")
        losses = []
        for fit_idx, val_idx in folds:
            pipe = make_pipeline_for(family, schema, params, seed)
            pipe.fit(X_train.iloc[fit_idx], y_train[fit_idx])
            scores = objective.score(pipe, X_train.iloc[val_idx], y_train[val_idx], classes)
            losses.append(scores[rank])
        cv = float(np.mean(losses))
        if family.name not in best or cv < best[family.name][0]:
            best[family.name] = (cv, params)

    board: list[Entry] = []
    fitted: dict[str, Pipeline] = {}
    contenders: list[tuple[str, Any, float | None, dict[str, Any], bool]] = []
    for family in objective.families:
        if family.name in best:
            cv, params = best[family.name]
            contenders.append((family.name, make_pipeline_for(family, schema, params, seed),
                               cv, params, False))
    for name, baseline in objective.baselines(schema):
        contenders.append((name, baseline, None, baseline.get_params(), True))
    for name, estimator, cv, params, is_baseline in contenders:
        start = time.perf_counter()
        estimator.fit(X_train, y_train)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        output = objective.predict(estimator, X_hold, classes)
        predict_us = (time.perf_counter() - start) / len(X_hold) * 1e6
        metrics = objective.metrics(y_hold, output, classes)
        board.append(Entry(name, {**metrics, objective.cv_key: cv}, fit_s, predict_us,
                           {k: _plain(v) for k, v in params.items()}, is_baseline))
        if not is_baseline:
            fitted[name] = estimator
    board.sort(key=lambda e: e.metrics[rank])  # type: ignore[arg-type, return-value]

    winner = next(e for e in board if not e.baseline)
    for base in (e for e in board if e.baseline):
        if winner.metrics[rank] >= base.metrics[rank]:  # type: ignore[operator]
            raise TrainingFailed(
                f"the best model {winner.model} ({objective.rank_label} "
                f"{winner.metrics[rank]:.4f}) does not beat {base.model} "
                f"({objective.rank_label} {base.metrics[rank]:.4f}); refusing to save it"
            )
    if on_step:
        on_step(f"refit {winner.model} on all {len(dataset.frame)} rows")
    final = clone(fitted[winner.model])
    final.fit(dataset.frame[schema.names], dataset.frame[dataset.target].to_numpy())
    final_classes = [_plain(c) for c in getattr(final, "classes_", [])]
    split = "chronological" if chronological else "stratified"
    return Selection(final, winner, board, schema, len(holdout), len(train), task,
                     final_classes, split)


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
    """Everything the service, batch jobs and auditors need to know about a saved model
    (the contract is in docs/models.md)."""
    winner = selection.winner
    return without_nones({
        "schema": selection.schema.to_dict(),
        "task": selection.task,
        "classes": selection.classes or None,
        "has_proba": hasattr(selection.pipeline, "predict_proba"),
        "metrics": winner.metrics,
        "ranked_by": selection.objective.rank_metric,
        "family": winner.model,
        "params": winner.params,
        "leaderboard": [e.to_dict() for e in selection.leaderboard],
        "dataset": {"name": dataset.name, "source": dataset.source, "sha256": dataset.sha256,
                    "rows": len(dataset.frame), "train_rows": selection.train_rows,
                    "holdout_rows": selection.holdout_rows, "split": selection.split},
        "seed": seed,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "packages": package_versions(),
    })


def model_labels(dataset_name: str, family: str, task: str) -> dict[str, str]:
    """BentoML labels of a stored model (what `bentoml models list` can filter on)."""
    return {"dataset": dataset_name, "family": family, "task": task}
