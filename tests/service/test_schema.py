"""The feature schema and the request model generated from it (pure, no server)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pydantic import ValidationError

from skserve.schema import (
    FeatureSchema,
    example_row,
    infer_schema,
    out_of_range_counts,
    request_model,
    rows_to_frame,
)


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


@pytest.mark.parametrize(
    ("change", "field", "error_type"),
    [
        ({"surprise": 1}, "surprise", "extra_forbidden"),
        ({"flag": 2}, "flag", "value_error"),
        ({"flag": False}, "flag", "int_type"),
        ({"temp": "2.5"}, "temp", "float_type"),
        ({"temp": True}, "temp", "float_type"),
        ({"temp": 1e9}, "temp", "less_than_equal"),
        ({"city": "z"}, "city", "literal_error"),
        ({"ts": "not a date"}, "ts", "value_error"),
        ({"ts": "2020-13-01T00:00:00"}, "ts", "datetime_from_date_parsing"),
        ({"ts": "0316-04-27T13:23:20Z"}, "ts", "value_error"),
        ({"ts": 0}, "ts", "value_error"),
        ({"ts": "0"}, "ts", "value_error"),
    ],
)
def test_bad_values_name_the_field(row_model, change, field, error_type):
    import json

    with pytest.raises(ValidationError) as info:
        row_model.model_validate_json(json.dumps({**good_row(), **change}))
    errors = info.value.errors()
    assert [e["loc"][0] for e in errors] == [field]
    assert errors[0]["type"] == error_type


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
    assert out_of_range_counts(schema, built) == {"temp": 1, "count": 1}
