"""One definition of a valid input value per feature type, for the online and batch paths.

`Rule.check` validates one JSON value (the pydantic request model calls it for every field);
`Rule.check_column` applies the same rule, in the same order and with the same reasons, to
a whole column of a batch file at once. tests/validation_cases.py holds the one table of
(feature type, value, verdict) both are tested against.

What is valid, per feature type:

- null: only where the training data had missing values (`Feature.nullable`); otherwise
  "a value is required".
- float: a number (booleans are not numbers), finite, inside `Feature.valid_bounds()`.
- int: the same, and integral (`1.0` is the integer 1: JSON has one number type); with
  closed levels (at most `MAX_INT_LEVELS` values seen in training) one of those levels
  instead of the bounds.
- category: a string that is one of the training categories.
- datetime: text in the RFC 3339 date-time form `YYYY-MM-DDTHH:MM:SS`, `T` or a space
  between date and time (RFC 3339 allows both; pandas writes the space), an optional
  fraction of a second (kept to the microsecond) and an optional offset `Z` or `±HH:MM`,
  which is dropped: the model sees the wall-clock time it was trained on. Seconds are
  required and run 00-59 (Python and pandas have no leap second; pandas would roll :60
  into the next minute); a date alone, a year, or any other layout is refused. It must be
  a date in the calendar, within the years `DATETIME_VALID_YEARS` before the training
  data's first year to as many after its last (and within what pandas can hold,
  1678-2261). Lower case `t` and `z` are RFC 3339 too. Python callers may pass a datetime.

Files bring their own type systems, so these differ on purpose (`text=True` for CSV): a
CSV field is text, so a number written as text is parsed (with the JSON number grammar:
`-1.5e3`, not `+1`, `.5`, `NaN` or ` 1`) and an empty field is a missing value; in typed
files (Parquet) a NaN or NaT is a missing value, as pandas and Arrow have it, and a
timestamp column is a timestamp already. Everything else is identical.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .schema import Feature

# pandas and pyarrow are imported where a column is checked (batch scoring), not here: the
# service checks single values and starts faster without them (BENCHMARKS.md).

# Timestamps more than this many years from the training range are input errors.
DATETIME_VALID_YEARS = 50
# The whole years pandas (and so the model's pipeline) can hold as datetime64[ns]:
# pd.Timestamp.min is in 1677 and pd.Timestamp.max in 2262 (tests/service/test_schema.py).
PANDAS_YEARS = (1678, 2261)

_DATE = r"(?P<date>[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01]))"
_TIME = r"(?P<time>(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])(?:\.(?P<frac>[0-9]+))?"
_OFFSET = r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?"
TIMESTAMP_PATTERN = f"^{_DATE}[Tt ]{_TIME}{_OFFSET}$"
"""The accepted timestamp text (RE2 and Python `re` read it the same way: ASCII only)."""
NUMBER_PATTERN = r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$"
"""A number written as text in a CSV field: the JSON number grammar (RFC 8259)."""
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN, re.ASCII)

# The reasons, shared word for word by both paths.
REQUIRED = "a value is required"
NOT_NUMBER = "is not a number"
NOT_FINITE = "is not finite"
NOT_INTEGER = "is not an integer"
NOT_TEXT = "is not a string"
NOT_CATEGORY = "is not one of the training categories"
NOT_TIMESTAMP = ("is not a timestamp YYYY-MM-DDTHH:MM:SS (RFC 3339: T or a space, seconds "
                 "00-59, optional .fraction and Z or ±HH:MM offset)")
NOT_A_DATE = "is not a date in the calendar"


# Each reason's error type: the `type` of its entry in a 400's `detail` and in the request's
# log line (pydantic's own names where one fits; a closed set is an `enum`).
TYPES = {REQUIRED: "missing", NOT_NUMBER: "float_type", NOT_FINITE: "finite_number",
         NOT_INTEGER: "int_type", NOT_TEXT: "string_type", NOT_CATEGORY: "enum",
         NOT_TIMESTAMP: "datetime_type", NOT_A_DATE: "datetime_parsing"}
OUT_OF_RANGE = "out_of_range"
JSON_WORDS = {True: "true", False: "false"}


def short(value: Any) -> str:
    """A value as it appears in a reason: its repr (JSON's `true`/`false` for booleans, which
    is how clients wrote them), cut to 40 characters."""
    value = value.item() if hasattr(value, "item") else value
    text = JSON_WORDS[value] if isinstance(value, bool) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Invalid(ValueError):
    """One value broke its feature's rule; the message says how (without the field name),
    `kind` is its error type (TYPES, else `kind` as given)."""

    def __init__(self, value: Any, why: str, kind: str = "value_error"):
        super().__init__(why if why == REQUIRED else f"{short(value)} {why}")
        self.kind = TYPES.get(why, kind)


@dataclass(frozen=True)
class Rule:
    """What a valid value of one feature is. Build it with `Rule.of(feature)`."""

    name: str
    kind: str  # float | int | category | datetime
    nullable: bool
    bounds: tuple[float, float] | None = None  # numbers without closed levels
    levels: tuple[Any, ...] | None = None  # int levels or categories
    years: tuple[int, int] | None = None  # datetimes: first and last valid year

    @classmethod
    def of(cls, feature: Feature) -> Rule:
        if feature.dtype == "datetime":
            years = None
            if feature.min is not None and feature.max is not None:
                first = datetime.fromisoformat(str(feature.min)).year - DATETIME_VALID_YEARS
                last = datetime.fromisoformat(str(feature.max)).year + DATETIME_VALID_YEARS
                years = (max(first, PANDAS_YEARS[0]), min(last, PANDAS_YEARS[1]))
            return cls(feature.name, "datetime", feature.nullable, years=years)
        if feature.dtype == "category":
            # no categories at all (an imported model's signature said only "string"): any text
            levels = None if feature.categories is None else tuple(feature.categories)
            return cls(feature.name, "category", feature.nullable, levels=levels)
        if feature.dtype == "int" and feature.categories:
            return cls(feature.name, "int", feature.nullable,
                       levels=tuple(int(c) for c in feature.categories))
        return cls(feature.name, feature.dtype, feature.nullable, bounds=feature.valid_bounds())

    # ------------------------------------------------------------ messages

    @property
    def not_level(self) -> str:
        return f"is not one of {list(self.levels or ())}"

    @property
    def outside(self) -> str:
        low, high = self.bounds or (-math.inf, math.inf)
        return f"is outside the valid range [{low:g}, {high:g}]"

    @property
    def far(self) -> str:
        first, last = self.years or PANDAS_YEARS
        return f"is not between {first} and {last}"

    # ------------------------------------------------------------ one value (online)

    def check(self, value: Any) -> Any:
        """The value the model gets for one JSON value; raises `Invalid` naming the fault."""
        if value is None:
            if self.nullable:
                return None
            raise Invalid(value, REQUIRED)
        if self.kind in ("float", "int"):
            return self._number(value)
        if self.kind == "category":
            if not isinstance(value, str):
                raise Invalid(value, NOT_TEXT)
            if self.levels is not None and value not in self.levels:
                raise Invalid(value, NOT_CATEGORY)
            return value
        return self._timestamp(value)

    def _number(self, value: Any) -> float | int:
        kind = type(value)  # the usual JSON numbers skip the slower ABC check
        if kind is not float and kind is not int and (
                isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real)):
            raise Invalid(value, NOT_NUMBER)
        try:
            x = float(value)
        except OverflowError:  # an integer beyond float64: as text it would parse to inf
            x = math.inf if value > 0 else -math.inf
        if not math.isfinite(x):
            raise Invalid(value, NOT_FINITE)
        if self.kind == "int" and not x.is_integer():
            raise Invalid(value, NOT_INTEGER)
        if self.levels is not None:
            if x not in self.levels:
                raise Invalid(value, self.not_level, "enum")
        elif self.bounds is not None and not self.bounds[0] <= x <= self.bounds[1]:
            raise Invalid(value, self.outside, OUT_OF_RANGE)
        return int(x) if self.kind == "int" else x

    def _timestamp(self, value: Any) -> datetime:
        if isinstance(value, datetime):  # Python callers; JSON brings text
            value = value.isoformat()
        match = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise Invalid(value, NOT_TIMESTAMP)
        first, last = self.years or PANDAS_YEARS
        if not first <= int(value[:4]) <= last:  # the match starts with the year
            raise Invalid(value, self.far, OUT_OF_RANGE)
        date, time_, frac = match.group("date", "time", "frac")
        try:
            stamp = datetime.fromisoformat(f"{date}T{time_}")
        except ValueError:
            raise Invalid(value, NOT_A_DATE) from None
        return stamp.replace(microsecond=int(frac[:6].ljust(6, "0"))) if frac else stamp

    # ------------------------------------------------------------ a column (batch)

    def check_column(self, col: pd.Series, text: bool = False) -> ColumnCheck:
        """The model's input values for a whole column, and which rows break the rule why.

        `text`: the column holds a CSV file's fields (strings, None where empty).
        Each bad row gets the first reason `check` would raise for it, in the same words.
        """
        col = col.reset_index(drop=True)
        verdict = ColumnCheck(len(col))
        if self.kind in ("float", "int"):
            self._number_column(col, text, verdict)
        elif self.kind == "category":
            self._category_column(col, text, verdict)
        else:
            self._timestamp_column(col, text, verdict)
        return verdict

    def _required(self, present: np.ndarray, verdict: ColumnCheck) -> None:
        if not self.nullable:
            verdict.fail(~present, REQUIRED)

    def _number_column(self, col: pd.Series, text: bool, verdict: ColumnCheck) -> None:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.compute as pc

        if text:
            strings = _strings(col)
            present = _mask(strings.is_valid())
            matches = pc.fill_null(pc.match_substring_regex(strings, NUMBER_PATTERN), False)
            parsed = pc.cast(pc.if_else(matches, strings, None), pa.float64())
            x = parsed.to_numpy(zero_copy_only=False)
            not_number = present & ~_mask(matches)
        elif pd.api.types.is_bool_dtype(col):
            x = np.full(len(col), np.nan)
            present = not_number = col.notna().to_numpy()
        elif pd.api.types.is_numeric_dtype(col):
            x = col.to_numpy(dtype=float, na_value=np.nan)
            present = ~np.isnan(x)  # NaN in a typed file is a missing value
            not_number = np.zeros(len(col), dtype=bool)
        else:
            x, present, not_number = _python_numbers(col)
        self._required(present, verdict)
        verdict.fail(not_number, NOT_NUMBER)
        with np.errstate(invalid="ignore"):
            verdict.fail(present & ~np.isfinite(x), NOT_FINITE)
            finite = present & np.isfinite(x)
            if self.kind == "int":
                verdict.fail(finite & (x != np.round(x)), NOT_INTEGER)
            if self.levels is not None:
                verdict.fail(finite & ~np.isin(x, np.asarray(self.levels, dtype=float)),
                             self.not_level)
            elif self.bounds is not None:
                low, high = self.bounds
                verdict.fail(finite & ((x < low) | (x > high)), self.outside)
        verdict.values = x

    def _category_column(self, col: pd.Series, text: bool, verdict: ColumnCheck) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        levels = pa.array(list(self.levels or ()), pa.string())
        if text or _is_string_dtype(col):
            strings = _strings(col)
            present = _mask(strings.is_valid())
            not_text = np.zeros(len(col), dtype=bool)
        else:
            values = col.astype(object).to_numpy()
            present = ~_missing(values)
            is_text = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
            not_text = present & ~is_text
            strings = pa.array(np.where(is_text, values, None), pa.string())
        self._required(present, verdict)
        verdict.fail(not_text, NOT_TEXT)
        if self.levels is not None:
            verdict.fail(present & ~_mask(pc.is_in(strings, value_set=levels)), NOT_CATEGORY)
        verdict.values = strings.to_numpy(zero_copy_only=False)

    def _timestamp_column(self, col: pd.Series, text: bool, verdict: ColumnCheck) -> None:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(col)
        if not text and pd.api.types.is_datetime64_any_dtype(col):
            stamps = col.dt.tz_localize(None) if col.dt.tz is not None else col
            values = stamps.to_numpy()
            present = ~np.isnat(values)
            self._required(present, verdict)
            first, last = self.years or PANDAS_YEARS
            outside = ((values < np.datetime64(f"{first:04d}-01-01"))
                       | (values >= np.datetime64(f"{last + 1:04d}-01-01")))
            verdict.fail(present & outside, self.far)
            verdict.values = values
            return
        if text or _is_string_dtype(col):
            strings, not_timestamp = _strings(col), np.zeros(n, dtype=bool)
        else:  # Python objects: datetimes are timestamps written out; strings are text
            strings, not_timestamp = _python_timestamps(col)
        present = _mask(strings.is_valid())
        parts = pc.extract_regex(strings, TIMESTAMP_PATTERN)
        matched = _mask(parts.is_valid())
        date, time_, frac = (pc.struct_field(parts, k) for k in ("date", "time", "frac"))
        years = pc.cast(pc.utf8_slice_codeunits(date, 0, 4), pa.int64()).to_numpy(
            zero_copy_only=False).astype(float)
        in_years = matched & self._years_ok(years)
        six = pc.utf8_slice_codeunits(pc.binary_join_element_wise(frac, "000000", ""), 0, 6)
        local = pc.binary_join_element_wise(date, "T", time_, ".", six, "")
        stamps = pd.to_datetime(pd.Series(pc.if_else(pa.array(in_years), local, None)
                                          .to_numpy(zero_copy_only=False)),
                                format="%Y-%m-%dT%H:%M:%S.%f", errors="coerce")
        self._required(present | not_timestamp, verdict)
        verdict.fail(not_timestamp | (present & ~matched), NOT_TIMESTAMP)
        verdict.fail(matched & ~in_years, self.far)
        verdict.fail(in_years & stamps.isna().to_numpy(), NOT_A_DATE)
        verdict.values = stamps.to_numpy()

    def _years_ok(self, years: np.ndarray) -> np.ndarray:
        first, last = self.years or PANDAS_YEARS
        with np.errstate(invalid="ignore"):
            return (years >= first) & (years <= last)

    # ------------------------------------------------------------ the OpenAPI contract

    def json_schema(self) -> dict[str, Any]:
        """What OpenAPI shows for the field: the same rule, as far as JSON Schema says it."""
        if self.kind == "datetime":
            schema: dict[str, Any] = {"type": "string",
                                      "pattern": re.sub(r"\?P<\w+>", "?:", TIMESTAMP_PATTERN)}
        elif self.kind == "category":
            schema = {"type": "string"}
            if self.levels is not None:
                schema["enum"] = list(self.levels)
        else:
            schema = {"type": "integer" if self.kind == "int" else "number"}
            if self.levels is not None:
                schema["enum"] = list(self.levels)
            elif self.bounds is not None:
                schema.update(minimum=self.bounds[0], maximum=self.bounds[1])
        return {"anyOf": [schema, {"type": "null"}]} if self.nullable else schema

    def description(self, seen: str) -> str:
        """One line for the API docs; `seen` says what training saw."""
        if self.kind == "datetime":
            text = ("timestamp, RFC 3339 date-time (T or a space between date and time; an "
                    "offset is dropped: wall-clock time of the training data), "
                    f"{self.far.removeprefix('is not ')}")
        else:
            text = f"{self.kind} feature{seen}"
        return text + ("; null: a missing value, imputed as in training" if self.nullable
                       else "")


class ColumnCheck:
    """A column's verdict: the model's input values and, per reason, the rows that broke it.

    Each row keeps only its first reason, as `Rule.check` stops at the first fault."""

    def __init__(self, n: int):
        self.ok = np.ones(n, dtype=bool)
        self.problems: list[tuple[np.ndarray, str]] = []
        self.values: np.ndarray = np.empty(0)

    def fail(self, rows: np.ndarray, why: str) -> None:
        rows = rows & self.ok
        if rows.any():
            self.problems.append((rows, why))
            self.ok &= ~rows


def _mask(values: Any) -> np.ndarray:
    """A boolean Arrow array (nulls as False) as numpy."""
    import pyarrow.compute as pc

    return pc.fill_null(values, False).to_numpy(zero_copy_only=False)


def _is_string_dtype(col: pd.Series) -> bool:
    import pandas as pd
    import pyarrow as pa

    return isinstance(col.dtype, pd.StringDtype) or (
        isinstance(col.dtype, pd.ArrowDtype) and pa.types.is_string(col.dtype.pyarrow_dtype))


def _strings(col: pd.Series) -> pa.Array:
    """A column of text (None for missing) as an Arrow string array, without copies when it
    is Arrow-backed already."""
    import pyarrow as pa

    if _is_string_dtype(col):
        arr = pa.array(col.array)
        return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return pa.array(col.astype(object).where(col.notna(), None).to_numpy(), pa.string())


def _python_numbers(col: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numbers from a column of Python objects: values, present, present-but-not-a-number."""
    values = col.astype(object).to_numpy()
    x = np.full(len(values), np.nan)
    present = ~_missing(values)
    not_number = np.zeros(len(values), dtype=bool)
    for i in np.flatnonzero(present):
        v = values[i]
        if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real):
            not_number[i] = True
            continue
        try:
            x[i] = float(v)
        except OverflowError:
            x[i] = math.inf if v > 0 else -math.inf
    return x, present, not_number


def _python_timestamps(col: pd.Series) -> tuple[pa.Array, np.ndarray]:
    """Text for a column of Python objects (datetimes written as ISO text, strings as they
    are), and the rows holding something else (numbers, dates without a time)."""
    import pyarrow as pa

    values = col.astype(object).to_numpy()
    missing = _missing(values)
    text: list[str | None] = [None] * len(values)
    other = np.zeros(len(values), dtype=bool)
    for i in np.flatnonzero(~missing):
        v = values[i]
        if isinstance(v, datetime):
            text[i] = v.isoformat()
        elif isinstance(v, str):
            text[i] = v
        else:
            other[i] = True
    return pa.array(text, pa.string()), other


def _missing(values: np.ndarray) -> np.ndarray:
    """None, NaN, NaT and pd.NA in an object array: a typed file's missing values."""
    import pandas as pd

    return np.fromiter((v is None or (pd.api.types.is_scalar(v) and bool(pd.isna(v)))
                        for v in values), bool, len(values))
