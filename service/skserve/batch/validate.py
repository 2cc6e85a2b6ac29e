"""Vectorised row validation with the online endpoint's rules, over a whole frame at once.

The online service validates each row with the pydantic model from `schema.request_model`;
per-row pydantic would cost more than the prediction in batch, so the same rules are applied
here column by column: unknown and missing columns, wrong types, numbers outside
`Feature.valid_bounds()`, values outside closed sets, unparseable timestamps or ones more than
`DATETIME_VALID_YEARS` from the training range (an offset is dropped: wall-clock time), and
nulls (a missing value) only where the training data had them (`Feature.nullable`).

Files have their own type systems, so two things differ from JSON on purpose: CSV is text, so
numbers written as text are parsed; and an integral float (an int column holding a null is
float in Parquet and pandas) is an integer. Booleans are not numbers, as online.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..schema import DATETIME_VALID_YEARS, Feature, FeatureSchema

_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"


@dataclass
class Checked:
    """The model's input frame for the good rows, and a reason for every bad one.

    `good` and `reasons` are aligned with the input frame's rows (positions, not labels).
    """

    frame: pd.DataFrame
    good: np.ndarray
    reasons: np.ndarray  # object array: "" for good rows, "field: why" for bad ones

    @property
    def bad_count(self) -> int:
        return int((~self.good).sum())


class _Reasons:
    """Collects per-row reasons cheaply: strings are only built for the rows that are bad."""

    def __init__(self, n: int):
        self.bad = np.zeros(n, dtype=bool)
        self.text = np.full(n, "", dtype=object)

    def add(self, mask: np.ndarray, values: pd.Series | None, message: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        for i in np.flatnonzero(mask):
            why = message if values is None else message.format(value=_short(values.iloc[i]))
            self.text[i] = why if not self.text[i] else f"{self.text[i]}; {why}"
        self.bad |= mask


def _short(value: object) -> str:
    text = repr(value.item() if hasattr(value, "item") else value)
    return text if len(text) <= 40 else text[:37] + "..."


def allowed_columns(schema: FeatureSchema, id_column: str | None) -> set[str]:
    """Columns a batch file may carry: the features, the target (historical data usually has
    it; it is ignored) and the chosen id column."""
    return {*schema.names, schema.target, *([id_column] if id_column else [])}


def _numbers(col: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Numbers and a mask of values that are present but not numbers (booleans included)."""
    if pd.api.types.is_bool_dtype(col):
        return pd.Series(np.nan, index=col.index), col.notna().to_numpy()
    if pd.api.types.is_numeric_dtype(col):
        return col.astype(float, copy=False), np.zeros(len(col), dtype=bool)
    present = col.notna().to_numpy()
    is_bool = col.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    numbers = pd.to_numeric(col.where(~is_bool), errors="coerce").astype(float)
    return numbers, present & numbers.isna().to_numpy()


def _check_number(f: Feature, col: pd.Series, out: _Reasons) -> np.ndarray:
    values, not_number = _numbers(col)
    out.add(not_number, col, f"{f.name}: {{value}} is not a number")
    if not f.nullable:
        out.add(col.isna().to_numpy(), None, f"{f.name}: a value is required")
    arr = values.to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(arr)
    out.add(ok & np.isinf(arr), col, f"{f.name}: {{value}} is not finite")
    finite = ok & np.isfinite(arr)
    if f.dtype == "int":
        out.add(finite & (arr != np.round(arr)), col, f"{f.name}: {{value}} is not an integer")
    if f.dtype == "int" and f.categories:
        out.add(finite & ~np.isin(arr, np.asarray(f.categories, dtype=float)), col,
                f"{f.name}: {{value}} is not one of {list(f.categories)}")
    else:
        bounds = f.valid_bounds()
        if bounds is not None:
            low, high = bounds
            with np.errstate(invalid="ignore"):
                outside = finite & ((arr < low) | (arr > high))
            out.add(outside, col, f"{f.name}: {{value}} is outside the valid range "
                                  f"[{low:g}, {high:g}]")
    return arr


def _check_category(f: Feature, col: pd.Series, out: _Reasons) -> pd.Series:
    present = col.notna().to_numpy()
    if not f.nullable:
        out.add(~present, None, f"{f.name}: a value is required")
    text = col.astype(object).where(col.notna(), None)
    if not pd.api.types.is_string_dtype(col) and not pd.api.types.is_object_dtype(col):
        text = col.astype(str).where(col.notna(), None)
    if f.categories:
        out.add(present & ~text.isin(f.categories).to_numpy(), col,
                f"{f.name}: {{value}} is not one of the training categories")
    return text


def _check_datetime(f: Feature, col: pd.Series, out: _Reasons) -> pd.Series:
    missing = col.isna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(col):
        stamps = col
    else:
        text = col.astype(str).str.replace(_OFFSET, "", regex=True).where(col.notna())
        stamps = pd.to_datetime(text, errors="coerce", format="ISO8601")
        out.add(~missing & stamps.isna().to_numpy(), col,
                f"{f.name}: {{value}} is not an ISO 8601 timestamp")
    out.add(missing, None, f"{f.name}: a timestamp is required")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)  # wall-clock time, as online
    if f.min is not None and f.max is not None:
        low = pd.Timestamp(str(f.min)) - pd.DateOffset(years=DATETIME_VALID_YEARS)
        high = pd.Timestamp(str(f.max)) + pd.DateOffset(years=DATETIME_VALID_YEARS)
        far = (stamps.notna() & ((stamps < low) | (stamps > high))).to_numpy()
        out.add(far, col, f"{f.name}: {{value}} is not between {low.year} and {high.year}")
    return stamps


def check_frame(schema: FeatureSchema, frame: pd.DataFrame,
                id_column: str | None = None) -> Checked:
    """Validate every row of `frame`; return the model input for the good rows and reasons."""
    n = len(frame)
    out = _Reasons(n)
    allowed = allowed_columns(schema, id_column)
    for name in frame.columns:
        if name not in allowed:
            out.add(np.ones(n, dtype=bool), None, f"{name}: unknown column")
    columns: dict[str, object] = {}
    for f in schema.features:
        if f.name not in frame.columns:
            out.add(np.ones(n, dtype=bool), None, f"{f.name}: missing column")
            columns[f.name] = (np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
                               if f.dtype == "datetime" else np.full(n, np.nan))
            continue
        col = frame[f.name].reset_index(drop=True)
        if f.dtype in ("float", "int"):
            columns[f.name] = _check_number(f, col, out)
        elif f.dtype == "category":
            columns[f.name] = _check_category(f, col, out).to_numpy(dtype=object)
        else:
            columns[f.name] = _check_datetime(f, col, out).to_numpy()
    good = ~out.bad
    model_input = pd.DataFrame(columns)
    if not good.all():
        model_input = model_input.loc[good].reset_index(drop=True)
    return Checked(model_input, good, out.text)
