"""What a model answers: a regressor's number, or a classifier's label and class probabilities.

One place turns a stored model's metadata (`task`, `classes`, `has_proba`) into its output
contract and calls the estimator, for the online endpoints, the V2 protocol and batch
scoring alike.

Class keys. JSON object keys (the `probabilities` of a /predict answer) and column names are
text, while labels keep their type (`1`, `true`, `"yes"`). A class's key is the label itself
when it is text and its JSON text otherwise (`1` → `"1"`, `true` → `"true"`, `2.5` →
`"2.5"`). scikit-learn refuses targets that mix text and numbers, so within one model the
keys are distinct and a client maps a key back through `/metadata`'s `classes` (the labels,
in `predict_proba` column order) and `class_keys` (their keys, in the same order).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np

from .store import ModelInfo

if TYPE_CHECKING:
    import pandas as pd

PROBA_PREFIX = "proba_"


def class_key(label: Any) -> str:
    """A class's key in `probabilities` and metric labels: text as it is, else its JSON."""
    return label if isinstance(label, str) else json.dumps(label)


def proba_column(key: str) -> str:
    """A batch output column for one class: `proba_` + the key percent-encoded (RFC 3986:
    everything but ASCII letters, digits and `_.-~`), so any label gives a plain, distinct
    name (`proba_died`, `proba_1`, `proba_true`, `proba_no%20show`); `urllib.parse.unquote`
    reverses it."""
    return PROBA_PREFIX + quote(key, safe="")


@dataclass(frozen=True)
class Task:
    """A model's output contract, from its metadata."""

    kind: str  # regression | classification
    classes: tuple[Any, ...] = ()
    has_proba: bool = False

    @classmethod
    def of(cls, info: ModelInfo) -> Task:
        if info.task != "classification":
            return cls("regression")
        return cls("classification", tuple(info.classes),
                   bool(info.metadata.get("has_proba", False)) and bool(info.classes))

    def check(self, pipeline: Any) -> None:
        """Refuse (RuntimeError, at start) an estimator whose classes are not the stored
        ones: its probability columns would be given the wrong labels."""
        if self.is_classifier:
            own = [c.item() if hasattr(c, "item") else c
                   for c in getattr(pipeline, "classes_", [])]
            if own != list(self.classes):
                raise RuntimeError(f"the estimator's classes {own} are not the stored "
                                   f"classes {list(self.classes)}")

    @property
    def is_classifier(self) -> bool:
        return self.kind == "classification"

    @property
    def keys(self) -> list[str]:
        return [class_key(c) for c in self.classes]

    @property
    def label_type(self) -> str:
        """The labels' JSON type: boolean, integer, number or string (also for no classes)."""
        kinds = {type(c) for c in self.classes}
        if kinds == {bool}:
            return "boolean"
        if kinds == {int}:
            return "integer"
        if kinds and kinds <= {int, float}:
            return "number"
        return "string"


@dataclass
class Scores:
    """A model call's answer for n rows: `values` are the predictions (regression: float64;
    classification: the labels as JSON-native Python values) and, for a classifier with
    `predict_proba`, `proba` of shape (n, classes) in the metadata's class order."""

    values: Any
    proba: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values)

    def confidence(self) -> np.ndarray:
        """The top class's probability per row (empty without probabilities)."""
        return self.proba.max(axis=1) if self.proba is not None and len(self.proba) else \
            np.empty(0)


def model_input(estimator: Any, frame: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
    """`frame` as `estimator` takes it: an estimator fitted on a bare array (it has
    `n_features_in_` and no `feature_names_in_`, e.g. an imported model whose columns came
    from `--sample`) gets the frame's values in column order, which is what it was fitted
    on; given a DataFrame, scikit-learn would warn on every call that X has feature names.
    Anything else (an array already, an estimator fitted on named columns or one that
    records neither) gets `frame` as it is."""
    if isinstance(frame, np.ndarray) or getattr(estimator, "feature_names_in_", None) is not None \
            or getattr(estimator, "n_features_in_", None) is None:
        return frame
    return frame.to_numpy()


def score(pipeline: Any, task: Task, frame: pd.DataFrame | np.ndarray) -> Scores:
    """Call the estimator on a frame built by `schema.rows_to_frame` (or the batch reader),
    or on the array that `inputs.serving_path` builds for the rest of the pipeline.

    Regressors give float64 values. Classifiers give `predict`'s labels (as `tolist()` makes
    them: Python str, int, bool or float) and `predict_proba` in the stored class order; an
    estimator whose `classes_` differ from the stored ones is a server fault (RuntimeError).
    An estimator fitted on a bare array gets the frame's values (`model_input`)."""
    frame = model_input(pipeline, frame)
    if not task.is_classifier:
        return Scores(np.asarray(pipeline.predict(frame), dtype=float))
    labels = np.asarray(pipeline.predict(frame)).tolist()
    if not task.has_proba:
        return Scores(labels)
    proba = np.asarray(pipeline.predict_proba(frame), dtype=float)
    if proba.shape != (len(labels), len(task.classes)):
        raise RuntimeError(f"predict_proba gave shape {proba.shape} for {len(labels)} rows and "
                           f"{len(task.classes)} classes")
    return Scores(labels, proba)
