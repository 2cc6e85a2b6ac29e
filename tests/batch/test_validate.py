"""Vectorised validation agrees with the online endpoint's pydantic model, row by row."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from skserve.batch.validate import check_frame
from skserve.schema import Feature, FeatureSchema, request_model

SCHEMA = FeatureSchema(
    features=[
        Feature("timestamp", "datetime", "2014-01-01T00:00:00", "2014-12-31T23:30:00",
                nullable=False),
        Feature("WorkDay", "int", 0.0, 1.0, [0, 1], nullable=False),
        Feature("Temperature", "float", 1.5, 43.2, nullable=False),
        Feature("Count", "int", 0.0, 500.0, nullable=True),
        Feature("Region", "category", categories=["north", "south"], nullable=True),
    ],
    target="Demand", time_column="timestamp")

GOOD = {"timestamp": "2014-03-01T10:30:00", "WorkDay": 1, "Temperature": 20.5, "Count": 3,
        "Region": "north"}
CASES = [  # (change to a good row, field the reason must name or None when valid)
    ({}, None),
    ({"Count": None}, None),  # missing values are imputed where training had them
    ({"Region": None}, None),
    ({"Temperature": None}, "Temperature"),  # training had none: a value is required
    ({"Temperature": 80.0}, None),  # outside training range but inside the valid bounds
    ({"Temperature": 1000.0}, "Temperature"),
    ({"Temperature": "warm"}, "Temperature"),
    ({"Temperature": math.inf}, "Temperature"),
    ({"WorkDay": 2}, "WorkDay"),
    ({"Count": 2.5}, "Count"),
    ({"Count": 10_000}, "Count"),
    ({"Region": "west"}, "Region"),
    ({"timestamp": "yesterday-ish"}, "timestamp"),
    ({"timestamp": None}, "timestamp"),
    ({"timestamp": "2200-01-01T00:00:00"}, "timestamp"),
    ({"WorkDay": True}, "WorkDay"),  # booleans are not numbers
]


def _pydantic_accepts(row: dict) -> bool:
    try:
        request_model(SCHEMA).model_validate(row)
    except ValidationError:
        return False
    return True


def test_same_verdict_as_the_online_model_for_every_rule() -> None:
    rows = [{**GOOD, **change} for change, _ in CASES]
    checked = check_frame(SCHEMA, pd.DataFrame(rows))
    for (change, field), good, reason, row in zip(CASES, checked.good, checked.reasons, rows,
                                                  strict=True):
        assert bool(good) is (field is None), (change, reason)
        assert _pydantic_accepts(row) is bool(good), change
        if field is not None:
            assert reason.startswith(f"{field}:"), reason
    assert len(checked.frame) == sum(field is None for _, field in CASES)
    assert checked.frame["timestamp"].dtype.kind == "M"
    assert list(checked.frame.columns) == SCHEMA.names


def test_unknown_and_missing_columns_fail_every_row_naming_the_column() -> None:
    frame = pd.DataFrame([GOOD, GOOD]).drop(columns=["Count"]).assign(extra=1)
    checked = check_frame(SCHEMA, frame)
    assert checked.bad_count == 2
    assert all("extra: unknown column" in r and "Count: missing column" in r
               for r in checked.reasons)


def test_target_and_id_columns_are_allowed() -> None:
    frame = pd.DataFrame([GOOD]).assign(Demand=4.2, key="k1")
    assert check_frame(SCHEMA, frame, id_column="key").bad_count == 0
    assert check_frame(SCHEMA, frame).bad_count == 1  # without --id-column, `key` is unknown


def test_typed_columns_take_the_fast_path() -> None:
    n = 50_000
    frame = pd.DataFrame({
        "timestamp": pd.date_range("2014-01-01", periods=n, freq="30min"),
        "WorkDay": np.arange(n) % 2, "Temperature": np.linspace(2, 40, n),
        "Count": np.arange(n) % 400, "Region": np.where(np.arange(n) % 3, "north", "south")})
    frame.loc[7, "Temperature"] = -500.0
    checked = check_frame(SCHEMA, frame)
    assert np.flatnonzero(~checked.good).tolist() == [7]
    assert len(checked.frame) == n - 1


@pytest.mark.parametrize("value", ["2014-03-01 10:30:00", "2014-03-01T10:30:00+00:00"])
def test_timestamp_strings_in_iso_forms_parse(value: str) -> None:
    checked = check_frame(SCHEMA, pd.DataFrame([{**GOOD, "timestamp": value}]))
    assert checked.bad_count == 0
