"""Feature engineering as scikit-learn transformers, so the saved pipeline holds all of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

if TYPE_CHECKING:  # pipelines unpickle without the serving stack (bench_serve's peers)
    from .schema import FeatureSchema

TIME_FEATURES = (
    "hour", "dayofweek", "month", "is_weekend",
    "day_sin", "day_cos", "week_sin", "week_cos", "year_sin", "year_cos",
)


def calendar(values: np.ndarray) -> tuple[np.ndarray, ...]:
    """(hour of day with minutes as a fraction, day of week from Monday = 0, month, day of
    year) as float64 for 1-D timestamps, NaN where missing.

    datetime64[ns] (what the service's validated rows and the training frame hold) is split
    with numpy's calendar units: per model call of the service, building a pandas
    DatetimeIndex and reading its fields cost more than the rest of this transform, and
    both give the same numbers (tests/service/test_time_features.py). Anything else (text,
    time zones) goes through pandas as it always did."""
    if values.dtype != np.dtype("datetime64[ns]"):
        stamps = pd.DatetimeIndex(pd.to_datetime(values))
        return (stamps.hour.to_numpy() + stamps.minute.to_numpy() / 60.0,
                stamps.dayofweek.to_numpy().astype(float), stamps.month.to_numpy().astype(float),
                stamps.dayofyear.to_numpy().astype(float))
    missing = np.isnat(values)
    days = values.astype("datetime64[D]")  # floors, also before 1970
    minutes = (values - days).astype("timedelta64[m]").astype(np.int64)
    day_number = days.astype(np.int64)
    fields = (minutes // 60 + (minutes % 60) / 60.0,
              ((day_number + 3) % 7).astype(float),  # 1970-01-01 was a Thursday
              (values.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(float),
              ((days - values.astype("datetime64[Y]")).astype(np.int64) + 1).astype(float))
    return tuple(np.where(missing, np.nan, f) for f in fields) if missing.any() else fields


class TimeFeatures(TransformerMixin, BaseEstimator):
    """Calendar features from one timestamp column: raw parts plus cyclic encodings.

    Cyclic (sin/cos) pairs let linear models see that 23:30 is next to 00:00; trees use the
    raw parts.
    """

    def fit(self, X, y=None):
        self.n_features_in_ = 1
        return self

    def transform(self, X):
        hour, dow, month, doy = calendar(np.asarray(X).ravel())
        week_pos = dow + hour / 24.0
        tau = 2 * np.pi
        return np.column_stack([
            hour, dow, month, (dow >= 5).astype(float),
            np.sin(tau * hour / 24), np.cos(tau * hour / 24),
            np.sin(tau * week_pos / 7), np.cos(tau * week_pos / 7),
            np.sin(tau * doy / 365.25), np.cos(tau * doy / 365.25),
        ])

    def get_feature_names_out(self, input_features=None):
        return np.array(TIME_FEATURES, dtype=object)


def build_preprocessor(schema: FeatureSchema, scale: bool) -> ColumnTransformer:
    """Time features, imputation, one-hot encoding and (for linear models) scaling."""
    numeric = [f.name for f in schema.features if f.dtype in ("float", "int")]
    categorical = [f.name for f in schema.features if f.dtype == "category"]
    times = [f.name for f in schema.features if f.dtype == "datetime"]
    transformers = []
    for name in times:
        steps = [TimeFeatures()] + ([StandardScaler()] if scale else [])
        transformers.append((f"time_{name}", make_pipeline(*steps), [name]))
    if numeric:
        steps = [SimpleImputer(strategy="median")] + ([StandardScaler()] if scale else [])
        transformers.append(("numeric", make_pipeline(*steps), numeric))
    if categorical:
        transformers.append((
            "categorical",
            make_pipeline(SimpleImputer(strategy="most_frequent"),
                          OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            categorical,
        ))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
