"""The feature schema and the request model generated from it (pure, but one test talks to a
real server)."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
from pydantic import ValidationError

from skserve import store
from skserve.schema import (
    FeatureSchema,
    example_row,
    infer_schema,
    out_of_range_counts,
    request_model,
    rows_to_frame,
)
from tests.validation_cases import CASES, GOOD, SERVER_CASES, Case
from tests.validation_cases import SCHEMA as SHARED_SCHEMA


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "ts": pd.date_range("2020-01-01", periods=6, freq="h"),
        "flag": [0, 1, 0, 1, 1, 0],
        "temp": [1.5, 2.0, None, 10.0, 4.0, 3.0],
        "count": list(range(100, 130, 5)),
        "city": ["a", "b", "a", "c", "b", "a"],
        "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    })


def test_infer_schema_describes_each_column(frame):
    schema = infer_schema(frame, "y", "ts")
    by_name = {f.name: f for f in schema.features}
    assert schema.names == ["ts", "flag", "temp", "count", "city"]
    assert by_name["ts"].dtype == "datetime" and by_name["ts"].min == "2020-01-01T00:00:00"
    assert by_name["flag"].dtype == "int" and by_name["flag"].categories == [0, 1]
    assert (by_name["temp"].min, by_name["temp"].max, by_name["temp"].nullable) == (1.5, 10.0, True)
    assert by_name["count"].categories == [100, 105, 110, 115, 120, 125]
    assert by_name["city"].dtype == "category" and by_name["city"].categories == ["a", "b", "c"]
    assert (schema.target_min, schema.target_max) == (1.0, 6.0)


def test_schema_round_trips_through_a_dict(frame):
    schema = infer_schema(frame, "y", "ts")
    assert FeatureSchema.from_dict(schema.to_dict()) == schema


def test_missing_target_is_named(frame):
    with pytest.raises(ValueError, match="'price'"):
        infer_schema(frame, "price")


@pytest.fixture
def row_model(frame):
    return request_model(infer_schema(frame, "y", "ts"))


def good_row() -> dict:
    return {"ts": "2020-01-01T03:00:00", "flag": 1, "temp": 2.5, "count": 105, "city": "b"}


def test_a_good_row_and_example_row_validate(frame, row_model):
    assert row_model.model_validate_json(pd.io.json.ujson_dumps(good_row())).flag == 1
    row_model.model_validate(example_row(infer_schema(frame, "y", "ts")))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_shared_table_through_the_request_model(case: Case) -> None:
    """Every value of the table shared with batch gets the table's verdict online, and a
    bad one is a single error on its field whose message carries the table's reason."""
    model = request_model(SHARED_SCHEMA)
    body = json.dumps(case.row())  # NaN and Infinity as Python's json writes them
    if case.ok:
        model.model_validate_json(body)
        return
    with pytest.raises(ValidationError) as info:
        model.model_validate_json(body)
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [(case.feature,)], errors
    assert case.reason in errors[0]["msg"], errors[0]["msg"]


@pytest.mark.parametrize(("feature", "value", "kind", "message"), [
    ("temp", "warm", "float_type", "'warm' is not a number"),
    ("temp", True, "float_type", "true is not a number"),
    ("temp", 1e9, "out_of_range", "is outside the valid range"),
    ("count", 1.5, "int_type", "1.5 is not an integer"),
    ("flag", 2, "enum", "2 is not one of [0, 1]"),
    ("kind", None, "missing", "a value is required"),
    ("region", False, "string_type", "false is not a string"),
    ("region", "west", "enum", "is not one of the training categories"),
    ("ts", "yesterday", "datetime_type", "is not a timestamp"),
    ("ts", "2014-02-30T00:00:00", "datetime_parsing", "is not a date in the calendar"),
    ("ts", "1014-02-03T00:00:00", "out_of_range", "is not between"),
])
def test_each_fault_has_its_own_error_type(feature, value, kind, message):
    """The `type` a 400's detail and its log line carry says what kind of fault it was, and
    the message spells a value as the client wrote it (JSON's true/false)."""
    with pytest.raises(ValidationError) as info:
        request_model(SHARED_SCHEMA).model_validate({**GOOD, feature: value})
    [error] = info.value.errors()
    assert (error["loc"], error["type"]) == ((feature,), kind)
    assert message in error["msg"] and not error["msg"].startswith("Value error")


def test_unknown_fields_are_refused(row_model):
    with pytest.raises(ValidationError) as info:
        row_model.model_validate({**good_row(), "surprise": 1})
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_the_openapi_schema_states_the_rule(row_model):
    props = row_model.model_json_schema()["properties"]
    assert props["flag"]["enum"] == [0, 1] and props["flag"]["type"] == "integer"
    assert props["city"]["enum"] == ["a", "b", "c"]
    assert props["temp"]["anyOf"][1] == {"type": "null"}  # training had missing values
    assert props["count"]["type"] == "integer" and "anyOf" not in props["count"]
    pattern = props["ts"]["pattern"]
    assert "?P<" not in pattern  # ECMA 262 (what JSON Schema uses) has no (?P<name>...)
    assert re.search(pattern, "2020-01-01 03:00:00") and not re.search(pattern, "2020-01-01")


V2_DATATYPES = {bool: "BOOL", int: "INT64", float: "FP64", str: "BYTES"}


@pytest.mark.slow
def test_a_real_server_answers_the_issue_cases(server):
    """A few table values through a real `skserve serve`, on /predict and as a V2 infer
    request (each tensor's datatype follows the value's JSON type): 200 or 400, the same
    verdict on both, never anything else."""
    from tests.service.test_http import call

    info = store.get_info(server.model)
    base = example_row(info.schema)
    for field, value, ok in SERVER_CASES:
        row = {**base, field: value}
        infer = {"inputs": [{"name": k, "datatype": V2_DATATYPES[type(v)], "shape": [1],
                             "data": [v]} for k, v in row.items()]}
        for path, body in (("/predict", row), (f"/v2/models/{info.name}/infer", infer)):
            status, _, answer = call(server.url + path, json.dumps(body).encode())
            assert status == (200 if ok else 400), (path, field, value, status, answer)
            if not ok:
                assert field in answer.decode(), answer


def test_missing_field_is_named(row_model):
    row = good_row()
    del row["city"]
    with pytest.raises(ValidationError) as info:
        row_model.model_validate(row)
    assert info.value.errors()[0]["loc"] == ("city",)


def test_null_only_where_training_had_missing_values(row_model):
    row_model.model_validate({**good_row(), "temp": None})
    with pytest.raises(ValidationError):
        row_model.model_validate({**good_row(), "count": None})


def test_offsets_are_dropped_to_wall_clock(row_model):
    row = row_model.model_validate_json(
        pd.io.json.ujson_dumps({**good_row(), "ts": "2020-01-01T03:00:00+05:00"}))
    assert row.ts.tzinfo is None and row.ts.hour == 3


def test_rows_to_frame_and_out_of_range(frame):
    schema = infer_schema(frame, "y", "ts")
    rows = [good_row(), {**good_row(), "temp": None, "count": 200, "city": "b"},
            {**good_row(), "temp": -5.0}]
    built = rows_to_frame(schema, rows)
    assert list(built.columns) == schema.names
    assert pd.api.types.is_datetime64_any_dtype(built["ts"])
    assert math.isnan(built["temp"][1])
    assert out_of_range_counts(schema, rows) == {"temp": 1, "count": 1}


def test_pandas_years_are_what_pandas_can_hold():
    """validation.PANDAS_YEARS is written out (the service imports no pandas to check a
    value): the whole years between pandas' first and last Timestamp."""
    from skserve.validation import PANDAS_YEARS

    assert (pd.Timestamp.min.year + 1, pd.Timestamp.max.year - 1) == PANDAS_YEARS
