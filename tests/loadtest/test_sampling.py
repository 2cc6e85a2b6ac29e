"""Row sampling from a feature schema and from a sample file (pure, seeded)."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest

from skserve.loadtest.sampling import RowPool, parse_mix, rows_from_file, sample_row
from skserve.schema import FeatureSchema, infer_schema, request_model

FEATURES = [
    {"name": "timestamp", "dtype": "datetime", "min": "2014-01-01T00:00:00",
     "max": "2014-12-31T23:30:00", "categories": None},
    {"name": "WorkDay", "dtype": "int", "min": 0.0, "max": 1.0, "categories": [0, 1]},
    {"name": "Temperature", "dtype": "float", "min": 1.5, "max": 43.2, "categories": None},
    {"name": "Count", "dtype": "int", "min": 3.0, "max": 90.0, "categories": None},
    {"name": "Region", "dtype": "category", "min": None, "max": None,
     "categories": ["north", "south", "west"]},
]


def test_rows_stay_within_the_schema_and_vary():
    pool = RowPool.from_schema(FEATURES, seed=1, size=500)
    temps = [r["Temperature"] for r in pool.rows]
    assert all(1.5 <= t <= 43.2 for t in temps)
    assert max(temps) - min(temps) > 30  # spread over the range, not a fixed payload
    assert {r["WorkDay"] for r in pool.rows} == {0, 1}
    assert {r["Region"] for r in pool.rows} == {"north", "south", "west"}
    assert all(3 <= r["Count"] <= 90 and isinstance(r["Count"], int) for r in pool.rows)
    stamps = [datetime.fromisoformat(r["timestamp"]) for r in pool.rows]
    assert min(stamps) >= datetime(2014, 1, 1) and max(stamps) <= datetime(2014, 12, 31, 23, 30)
    assert len({s.month for s in stamps}) == 12


def test_same_seed_same_rows_other_seed_other_rows():
    a = RowPool.from_schema(FEATURES, seed=5, size=50)
    b = RowPool.from_schema(FEATURES, seed=5, size=50)
    c = RowPool.from_schema(FEATURES, seed=6, size=50)
    assert a.rows == b.rows and a.rows != c.rows
    assert [a.body() for _ in range(20)] == [b.body() for _ in range(20)]


def test_sampled_rows_pass_the_services_request_model():
    """The rows must be valid requests for the model they were sampled for."""
    frame = pd.DataFrame({"timestamp": pd.date_range("2014-01-01", periods=200, freq="h"),
                          "WorkDay": [0, 1] * 100, "Temperature": range(200),
                          "Region": ["north", "south"] * 100, "y": range(200)})
    schema = infer_schema(frame, "y", "timestamp")
    features = FeatureSchema.from_dict(schema.to_dict()).to_dict()["features"]
    row_model = request_model(schema)
    pool = RowPool.from_schema(features, seed=0, size=200)
    for body in pool.encoded:
        row_model.model_validate_json(body)


def test_batch_body_is_a_json_list_of_rows():
    pool = RowPool.from_schema(FEATURES, seed=2, size=10)
    rows = json.loads(pool.batch_body(7))
    assert len(rows) == 7 and all(set(r) == {f["name"] for f in FEATURES} for r in rows)


def test_sample_file_rows(tmp_path):
    path = tmp_path / "rows.parquet"
    pd.DataFrame({"timestamp": pd.to_datetime(["2014-03-01 10:00", "2014-03-02 11:30"]),
                  "Temperature": [12.5, float("nan")], "Demand": [4.1, 4.3]}).to_parquet(path)
    rows = rows_from_file(path, ["timestamp", "Temperature"])
    assert rows == [{"timestamp": "2014-03-01T10:00:00", "Temperature": 12.5},
                    {"timestamp": "2014-03-02T11:30:00", "Temperature": None}]
    with pytest.raises(ValueError, match="WorkDay"):
        rows_from_file(path, ["WorkDay"])


def test_sample_row_handles_missing_ranges():
    import random

    row = sample_row([{"name": "x", "dtype": "float", "min": None, "max": None}],
                     random.Random(0))
    assert row == {"x": None}


def test_parse_mix():
    assert parse_mix("predict=0.8,predict_batch=0.2") == {"predict": 0.8, "predict_batch": 0.2}
    assert parse_mix("predict=4, /predict_batch=1") == {"predict": 0.8, "predict_batch": 0.2}
    assert parse_mix("predict_batch=1") == {"predict": 0.0, "predict_batch": 1.0}
    for bad in ("predict", "foo=1", "predict=-1", "predict=0", "predict=x"):
        with pytest.raises(ValueError):
            parse_mix(bad)
