"""The feature schema: what a model was trained on, and the request model derived from it.

The schema travels in the model's metadata, so the service, the batch scorer and the load
generator all validate and sample rows from the same description without new code.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, create_model
from pydantic_core import PydanticCustomError

from .errors import InvalidInput
from .validation import Invalid, Rule

if TYPE_CHECKING:
    import pandas as pd

    from .outputs import Task

Dtype = Literal["float", "int", "category", "datetime"]

# An int column with at most this many distinct values is a closed set (e.g. a 0/1 flag):
# a value outside it is rejected rather than counted as drift.
MAX_INT_LEVELS = 20
# Numbers this many spans beyond the observed range are input errors, not drift.
VALID_RANGE_SPANS = 1.0


@dataclass(frozen=True)
class Feature:
    """One input column as observed in the training data."""

    name: str
    dtype: Dtype
    min: float | str | None = None  # numbers; ISO 8601 strings for datetimes
    max: float | str | None = None
    categories: list[Any] | None = None
    nullable: bool = True  # the training data had missing values here

    def valid_bounds(self) -> tuple[float, float] | None:
        """Hard limits for numbers: the observed range widened by one span each side."""
        if self.dtype not in ("float", "int") or self.min is None or self.max is None:
            return None
        assert isinstance(self.min, float | int) and isinstance(self.max, float | int)
        span = max(self.max - self.min, abs(self.max), 1.0) * VALID_RANGE_SPANS
        return self.min - span, self.max + span


@dataclass(frozen=True)
class FeatureSchema:
    """The ordered input features, the target and the optional time column."""

    features: list[Feature]
    target: str
    time_column: str | None = None
    target_min: float | None = None
    target_max: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        return next(f for f in self.features if f.name == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSchema:
        features = [Feature(**f) for f in data["features"]]
        return cls(**{**data, "features": features})


def _number(value: Any) -> float:
    return float(value.item() if hasattr(value, "item") else value)


def infer_schema(frame: pd.DataFrame, target: str, time_column: str | None = None,
                 task: str = "regression") -> FeatureSchema:
    """Describe every non-target column of a training frame; the target's range for a
    regression (a classifier's labels are not numbers)."""

    if target not in frame.columns:
        raise InvalidInput(f"target column {target!r} is not in the data ({list(frame.columns)})")
    features = infer_features(frame.drop(columns=[target]), time_column)
    if task != "regression":
        return FeatureSchema(features, target, time_column)
    y = frame[target].dropna()
    return FeatureSchema(features, target, time_column, _number(y.min()), _number(y.max()))


def infer_features(frame: pd.DataFrame, time_column: str | None = None) -> list[Feature]:
    """One `Feature` per column, in order: dtype, observed range, levels, nullability."""
    import pandas as pd  # here, not at import: the service starts without it

    if time_column is not None and time_column not in frame.columns:
        raise InvalidInput(f"time column {time_column!r} is not in the data")
    features = []
    for name in frame.columns:
        col = frame[name]
        nullable = bool(col.isna().any())
        if name == time_column or pd.api.types.is_datetime64_any_dtype(col):
            stamps = pd.to_datetime(col)
            features.append(Feature(name, "datetime", stamps.min().isoformat(),
                                    stamps.max().isoformat(), None, nullable=False))
        elif pd.api.types.is_bool_dtype(col) or pd.api.types.is_integer_dtype(col):
            values = col.dropna().astype("int64")
            levels = sorted(int(v) for v in values.unique())
            categories = levels if len(levels) <= MAX_INT_LEVELS else None
            features.append(Feature(name, "int", _number(values.min()), _number(values.max()),
                                    categories, nullable))
        elif pd.api.types.is_numeric_dtype(col):
            values = col.dropna()
            features.append(Feature(name, "float", _number(values.min()), _number(values.max()),
                                    None, nullable))
        else:
            levels = sorted(str(v) for v in col.dropna().unique())
            features.append(Feature(name, "category", None, None, levels, nullable))
    return features


def _field(feature: Feature) -> tuple[Any, Any]:
    """The pydantic annotation and Field for one feature: required (null only where the
    rule allows it), checked by the feature's `validation.Rule`, the one definition of a
    valid value the batch scorer applies too."""
    rule = Rule.of(feature)

    def check(value: Any) -> Any:  # pydantic's error type is the rule's, not "value_error"
        try:
            return rule.check(value)
        except Invalid as exc:
            raise PydanticCustomError(exc.kind, str(exc)) from None

    typ = Annotated[Any, PlainValidator(check), WithJsonSchema(rule.json_schema())]
    seen = (f"; seen in training {feature.min} .. {feature.max}"
            if feature.dtype in ("float", "int") and feature.min is not None else "")
    return typ, Field(..., description=rule.description(seen))


def request_model(schema: FeatureSchema, name: str = "Row") -> type[BaseModel]:
    """A pydantic model for one input row that rejects unknown fields and bad values.

    Each field's value is checked by `validation.Rule.check` (no coercion: a boolean is not
    a number, "2.5" is not a float, a date alone is not a timestamp)."""
    fields = {f.name: _field(f) for f in schema.features}
    config = ConfigDict(extra="forbid", title=name)
    return create_model(name, __config__=config, **fields)


# Each feature type's column dtype in the model's input (int is float64 too: None is NaN).
COLUMN_DTYPES: dict[str, Any] = {"float": float, "int": float, "category": object,
                                 "datetime": "datetime64[ns]"}


def column(dtype: str, values: list[Any]) -> np.ndarray:
    """One feature's validated values as a model input column of its training dtype:
    datetime64[ns] (validated timestamps are naive; None is NaT), object (text), float64
    (None is NaN)."""
    kind = COLUMN_DTYPES[dtype]
    if kind is float:
        values = [math.nan if v is None else v for v in values]
    return np.array(values, dtype=kind)


def rows_to_frame(schema: FeatureSchema, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Build the model's input frame from validated rows, with the training dtypes
    (`column`). Each column is a numpy array, so pandas wraps rather than converts them
    (half the time of `pd.to_datetime` and Series, measured for a micro-batch of 6 rows)."""
    import pandas as pd  # here, not at import: the service starts without it

    return pd.DataFrame({f.name: column(f.dtype, [row[f.name] for row in rows])
                         for f in schema.features}, copy=False)


def out_of_range_counts(schema: FeatureSchema, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Per feature, how many of the validated `rows` hold a value outside what training saw
    (the first drift signal): a number outside [min, max], a category not among the training
    categories. Plain Python over the rows: per model call of the service, pandas' column
    operations cost more than the model's own input handling for a few rows."""
    counts: dict[str, int] = {}
    for f in schema.features:
        if f.dtype in ("float", "int") and f.min is not None and f.max is not None:
            low, high = f.min, f.max
            n = sum(1 for row in rows if (v := row.get(f.name)) is not None
                    and not low <= v <= high)
        elif f.dtype == "category" and f.categories:
            levels = set(f.categories)
            n = sum(1 for row in rows if (v := row.get(f.name)) is not None
                    and v not in levels)
        else:
            n = 0
        if n:
            counts[f.name] = n
    return counts


def example_row(schema: FeatureSchema) -> dict[str, Any]:
    """A valid request row: numbers at the middle of their training range, the last level of
    closed sets, the latest training timestamp; for what training did not bound, a plain
    valid value (0, "text", 2014-06-01T12:00:00)."""
    row: dict[str, Any] = {}
    for f in schema.features:
        if f.dtype == "datetime":
            row[f.name] = str(f.max or "2014-06-01T12:00:00")
        elif f.categories:
            row[f.name] = f.categories[-1]
        elif f.dtype == "category":
            row[f.name] = "text"
        elif f.min is not None and f.max is not None:
            mid = (float(f.min) + float(f.max)) / 2
            row[f.name] = round(mid) if f.dtype == "int" else round(mid, 3)
        else:
            row[f.name] = 0 if f.dtype == "int" else 0.0
    return row


def response_model(task: Task, target: str, name: str = "Prediction") -> type[BaseModel]:
    """The pydantic model of one prediction for this model's task (see `outputs`):

    - regression: `{"prediction": float, "model_version": str}`;
    - classification: `{"label": <a class, its own JSON type>, "probabilities": {key: p}
      (only with predict_proba), "model_version": str}`.

    The JSON Schema lists the classes (`enum`) and the probability keys, so a client knows
    every possible answer from /docs.json."""
    version = (str, Field(description="the model tag that made this prediction"))
    if not task.is_classifier:
        return create_model(name, prediction=(float, Field(description=f"predicted {target}")),
                            model_version=version)
    label_schema = {"type": task.label_type, "enum": list(task.classes)}
    fields: dict[str, Any] = {"label": (
        Annotated[Any, WithJsonSchema(label_schema)],
        Field(description=f"predicted {target} (the estimator's predict)"))}
    if task.has_proba:
        keys = task.keys
        proba_schema = {"type": "object", "additionalProperties": False, "required": keys,
                        "properties": {k: {"type": "number", "minimum": 0, "maximum": 1}
                                       for k in keys}}
        fields["probabilities"] = (
            Annotated[dict[str, float], WithJsonSchema(proba_schema)],
            Field(description="probability of each class (predict_proba), keyed by class key: "
                              "the label if it is text, else its JSON text; /metadata lists "
                              "`classes` and `class_keys` in the same order"))
    return create_model(name, **fields, model_version=version)


def example_answer(task: Task, schema: FeatureSchema, model_version: str) -> dict[str, Any]:
    """An illustrative answer of the model's shape (not a real prediction), for a document
    built where the model is not loaded: the middle of the target range, or the first class
    at 0.8 with the rest sharing 0.2."""
    if not task.is_classifier:
        low, high = schema.target_min, schema.target_max
        value = round((low + high) / 2, 3) if low is not None and high is not None else 0.0
        return {"prediction": value, "model_version": model_version}
    answer: dict[str, Any] = {"label": task.classes[0] if task.classes else None}
    if task.has_proba:
        rest = round(0.2 / max(len(task.keys) - 1, 1), 6)
        answer["probabilities"] = {k: (0.8 if i == 0 else rest) for i, k in enumerate(task.keys)}
    answer["model_version"] = model_version
    return answer
