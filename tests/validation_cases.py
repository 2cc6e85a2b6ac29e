"""The one table of input values and verdicts that online and batch validation must share.

tests/service/test_schema.py runs it through the pydantic request model (and a few rows
through a real server, on /predict and V2 infer); tests/batch/test_validate.py through
`check_frame` on a CSV file read by the batch reader and on typed (Parquet) frames. A row's
verdict is the same everywhere unless a column below says otherwise, and every such
difference is one the README documents: CSV is text (numbers written as text parse, an empty
field is missing), and in a typed file NaN is a missing value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from skserve.schema import Feature, FeatureSchema

SCHEMA = FeatureSchema(
    features=[
        Feature("ts", "datetime", "2014-01-01T00:00:00", "2014-12-31T23:30:00", nullable=False),
        Feature("temp", "float", 1.5, 43.2, nullable=False),  # valid bounds [-41.7, 86.4]
        Feature("temp_or_null", "float", 1.5, 43.2, nullable=True),
        Feature("count", "int", 0.0, 500.0, nullable=True),  # valid bounds [-500, 1000]
        Feature("flag", "int", 0.0, 1.0, [0, 1], nullable=False),
        Feature("region", "category", categories=["north", "south"], nullable=True),
        Feature("kind", "category", categories=["a", "b"], nullable=False),
    ],
    target="y", time_column="ts")

GOOD = {"ts": "2014-03-01T10:30:00", "temp": 20.5, "temp_or_null": 20.5, "count": 3,
        "flag": 1, "region": "north", "kind": "a"}

SKIP = "skip"  # a value a source cannot hold (a 400-digit integer in a Parquet column)


@dataclass(frozen=True)
class Case:
    """One value of one feature, and whether it is valid.

    `ok` is the verdict online and in typed files; `csv`/`typed` override it where a file's
    type system makes the difference (documented). `reason` is a fragment of the reason
    online and in typed files, `csv_reason` in CSV when it differs."""

    feature: str
    value: Any
    ok: bool
    reason: str | None = None
    csv: bool | None = None
    csv_reason: str | None = None
    typed: bool | str | None = None

    @property
    def csv_ok(self) -> bool:
        return self.ok if self.csv is None else self.csv

    @property
    def typed_ok(self) -> bool | str:
        return self.ok if self.typed is None else self.typed

    def row(self) -> dict[str, Any]:
        return {**GOOD, self.feature: self.value}

    def csv_text(self) -> str:
        """The value as a CSV field: text as it is, anything else as JSON writes it, null as
        an empty field."""
        if self.value is None:
            return ""
        return self.value if isinstance(self.value, str) else json.dumps(self.value)

    def __str__(self) -> str:
        return f"{self.feature}={self.value!r}"


RFC = "is not a timestamp YYYY-MM-DDTHH:MM:SS"
CALENDAR = "is not a date in the calendar"
REQUIRED = "a value is required"
NOT_NUMBER = "is not a number"

CASES = [
    # datetime: RFC 3339 date-time, T or a space, seconds required, offset dropped
    Case("ts", "2014-12-31T23:30:00", True),
    Case("ts", "2014-12-31 23:30:00", True),  # how pandas writes timestamps to CSV
    Case("ts", "2014-12-31t23:30:00z", True),  # RFC 3339 allows lower case
    Case("ts", "2014-12-31T23:30:00Z", True),
    Case("ts", "2014-12-31T23:30:00+05:30", True),
    Case("ts", "2014-12-31T23:30:00.5-08:00", True),
    Case("ts", "2014-12-31T23:30:00.123456789", True),  # kept to the microsecond
    Case("ts", "2016-02-29T00:00:00", True),
    Case("ts", "1964-01-01T00:00:00", True),  # 50 years before the first training year
    Case("ts", "2064-12-31T23:59:59", True),  # 50 years after the last
    Case("ts", "2014/12/31 23:30", False, RFC),  # issue 9: batch read it as 23:30
    Case("ts", "2014-12", False, RFC),  # issue 9: batch read it as 1 December
    Case("ts", "2014", False, RFC),  # issue 9: batch read it as 1 January
    Case("ts", "2014-12-31", False, RFC),  # issue 9: online took a date alone
    Case("ts", "2014-12-31T23:30", False, RFC),  # seconds are required
    Case("ts", "20141231T233000", False, RFC),
    Case("ts", " 2014-12-31T23:30:00", False, RFC),
    Case("ts", "2014-12-31T23:30:00 ", False, RFC),
    Case("ts", "2014-12-31T23:30:00\n", False, RFC),  # Python's `$` would allow it; RE2's not
    Case("ts", "2014-12-31T23:30:00+0530", False, RFC),
    Case("ts", "2014-12-31T24:00:00", False, RFC),
    Case("ts", "2014-12-31T23:59:60", False, RFC),  # pandas would roll it into 2015
    Case("ts", "2014-13-01T00:00:00", False, RFC),
    Case("ts", "\u0662\u0660\u0661\u0664-12-31T23:30:00", False, RFC),  # Arabic-Indic digits
    Case("ts", "2015-02-29T00:00:00", False, CALENDAR),
    Case("ts", "2014-04-31T00:00:00", False, CALENDAR),
    Case("ts", "1963-12-31T23:59:59", False, "is not between 1964 and 2064"),
    Case("ts", "2065-01-01T00:00:00", False, "is not between 1964 and 2064"),
    Case("ts", "0001-01-01T00:00:00", False, "is not between 1964 and 2064"),
    Case("ts", "3000-02-30T00:00:00", False, "is not between 1964 and 2064"),
    Case("ts", 1388534400, False, RFC),  # epoch seconds are too easy to misread
    Case("ts", True, False, RFC),
    Case("ts", None, False, REQUIRED),
    Case("ts", "", False, RFC, csv_reason=REQUIRED),
    # float
    Case("temp", 20.5, True),
    Case("temp", 20, True),
    Case("temp", -0.0, True),
    Case("temp", 80.0, True),  # outside the training range, inside the valid bounds: drift
    Case("temp", 86.4, True),
    Case("temp", 86.5, False, "is outside the valid range [-41.7, 86.4]"),
    Case("temp", -1000, False, "outside the valid range"),
    Case("temp", float("nan"), False, "is not finite", csv_reason=NOT_NUMBER,
         typed=False),  # typed: NaN is missing, and temp needs a value
    Case("temp", float("inf"), False, "is not finite", csv_reason=NOT_NUMBER),
    Case("temp", True, False, NOT_NUMBER),
    Case("temp", "20.5", False, NOT_NUMBER, csv=True),  # CSV is text
    Case("temp", "4.5e1", False, NOT_NUMBER, csv=True),
    Case("temp", "1e400", False, NOT_NUMBER, csv_reason="is not finite"),
    Case("temp", "+5", False, NOT_NUMBER),  # CSV numbers follow the JSON grammar
    Case("temp", ".5", False, NOT_NUMBER),
    Case("temp", " 5", False, NOT_NUMBER),
    Case("temp", "NaN", False, NOT_NUMBER),
    Case("temp", "abc", False, NOT_NUMBER),
    Case("temp", None, False, REQUIRED),
    Case("temp", "", False, NOT_NUMBER, csv_reason=REQUIRED),  # CSV: empty is missing
    Case("temp_or_null", None, True),
    Case("temp_or_null", "", False, NOT_NUMBER, csv=True),
    Case("temp_or_null", float("nan"), False, "is not finite", csv_reason=NOT_NUMBER,
         typed=True),  # typed files: NaN is a missing value
    # int
    Case("count", 3, True),
    Case("count", 3.0, True),  # JSON has one number type; Parquet ints with nulls are floats
    Case("count", 1e3, True),
    Case("count", None, True),
    Case("count", 2.5, False, "is not an integer"),
    Case("count", 1001, False, "is outside the valid range [-500, 1000]"),
    Case("count", 10**400, False, "is not finite", typed=SKIP),
    Case("count", "3", False, NOT_NUMBER, csv=True),
    Case("count", False, False, NOT_NUMBER),
    # int with closed levels
    Case("flag", 0, True),
    Case("flag", 1, True),
    Case("flag", 1.0, True),
    Case("flag", 2, False, "is not one of [0, 1]"),
    Case("flag", -1, False, "is not one of [0, 1]"),
    Case("flag", 0.5, False, "is not an integer"),
    Case("flag", True, False, NOT_NUMBER),  # pydantic would match True to 1
    Case("flag", "1", False, NOT_NUMBER, csv=True),
    Case("flag", None, False, REQUIRED),
    # category
    Case("region", "north", True),
    Case("region", None, True),
    Case("region", "west", False, "is not one of the training categories"),
    Case("region", "North", False, "is not one of the training categories"),
    Case("region", " north", False, "is not one of the training categories"),
    Case("region", "", False, "is not one of the training categories", csv=True),
    Case("region", 5, False, "is not a string", csv_reason="training categories"),
    Case("region", True, False, "is not a string", csv_reason="training categories"),
    Case("kind", "b", True),
    Case("kind", None, False, REQUIRED),
]
"""Each case changes one feature of the good row `GOOD`."""

# A few cases whose verdict does not depend on the training ranges, for a real server
# serving the reference model (features timestamp, WorkDay, Temperature).
SERVER_CASES = [
    ("timestamp", "2014-12-31 23:30:00", True),
    ("timestamp", "2014/12/31 23:30", False),
    ("timestamp", "2014-12", False),
    ("timestamp", "2014", False),
    ("timestamp", "2014-12-31", False),
    ("WorkDay", 1.0, True),
    ("WorkDay", True, False),
    ("Temperature", "20.5", False),
]
