"""Batch validation gives the online verdicts: the shared table through the real readers."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skserve.batch.inputs import read_minibatches, scan
from skserve.batch.plan import plan_minibatches
from skserve.batch.validate import check_frame
from tests.validation_cases import CASES, GOOD, SCHEMA, SKIP, Case


def _read(files: list[Path]) -> list:
    """Plan and read files as `skserve batch run` does; one piece per file here."""
    batches = plan_minibatches([scan(f) for f in files], mini_batch_size=10_000)
    return list(read_minibatches(batches))


def _verdicts(piece, expected: list[tuple[bool, str | None]], labels: list[str]) -> None:
    checked = check_frame(SCHEMA, piece.frame, text=piece.text, read_errors=piece.read_errors)
    for (ok, reason), good, why, label in zip(expected, checked.good, checked.reasons,
                                                labels, strict=True):
        feature = label.split("=", 1)[0]
        assert bool(good) is ok, (label, why)
        if not ok:
            assert why.startswith(f"{feature}: "), (label, why)
            assert ";" not in why, (label, why)  # one reason, as online
            if reason:
                assert reason in why, (label, why)
    assert list(checked.frame.columns) == SCHEMA.names
    assert len(checked.frame) == sum(ok for ok, _ in expected)


def test_the_shared_table_in_a_csv_file(tmp_path: Path) -> None:
    """Every table value written into a CSV field, read by the batch reader as text."""
    path = tmp_path / "cases.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(SCHEMA.names)
        for case in CASES:
            row = {**{k: Case(k, v, True).csv_text() for k, v in GOOD.items()},
                   case.feature: case.csv_text()}
            writer.writerow([row[name] for name in SCHEMA.names])
    (piece,) = _read([path])
    assert piece.text and len(piece.frame) == len(CASES)
    _verdicts(piece, [(c.csv_ok, c.csv_reason or (c.reason if c.csv is None else None))
                      for c in CASES], [str(c) for c in CASES])


def test_the_shared_table_in_typed_parquet_files(tmp_path: Path) -> None:
    """Every table value as a one-row Parquet file, typed as Arrow infers it (a string stays
    a string: only CSV is text)."""
    cases = [c for c in CASES if c.typed_ok != SKIP]
    files = []
    for i, case in enumerate(cases):
        files.append(tmp_path / f"case-{i:03d}.parquet")
        pq.write_table(pa.Table.from_pylist([case.row()]), files[-1])
    pieces = sorted(_read(files), key=lambda p: p.mb.file)
    for case, piece in zip(cases, pieces, strict=True):
        assert not piece.text
        reason = case.reason if case.typed is None else None
        _verdicts(piece, [(case.typed_ok, reason)], [str(case)])


def test_timestamp_columns_of_a_typed_file(tmp_path: Path) -> None:
    """A Parquet timestamp column is a timestamp already: only the years are checked, and an
    offset is dropped to wall-clock time as for text."""
    stamps = [datetime(2014, 3, 1, 10, 30), datetime(2200, 1, 1), datetime(1900, 5, 5),
              datetime(2500, 1, 1)]  # 2500 is beyond pandas' nanoseconds: kept in µs
    frame = pd.DataFrame([GOOD] * 4).assign(ts=pd.Series(stamps, dtype="datetime64[us]"))
    path = tmp_path / "typed.parquet"
    frame.to_parquet(path)
    (piece,) = _read([path])
    checked = check_frame(SCHEMA, piece.frame)
    assert checked.good.tolist() == [True, False, False, False]
    assert all("is not between 1964 and 2064" in r for r in checked.reasons[1:])

    aware = frame.iloc[:1].assign(ts=pd.Timestamp("2014-03-01 10:30", tz="Asia/Kolkata"))
    checked = check_frame(SCHEMA, aware)
    assert checked.frame["ts"][0] == pd.Timestamp("2014-03-01 10:30")


def test_unknown_and_missing_columns_fail_every_row_naming_the_column() -> None:
    frame = pd.DataFrame([GOOD, GOOD]).drop(columns=["count"]).assign(extra=1)
    checked = check_frame(SCHEMA, frame)
    assert checked.bad_count == 2
    assert all("extra: unknown column" in r and "count: missing column" in r
               for r in checked.reasons)


def test_target_and_id_columns_are_allowed_and_a_missing_id_column_is_named() -> None:
    frame = pd.DataFrame([GOOD]).assign(y=4.2, key="k1")
    assert check_frame(SCHEMA, frame, id_column="key").bad_count == 0
    assert check_frame(SCHEMA, frame).bad_count == 1  # without --id-column, `key` is unknown
    checked = check_frame(SCHEMA, frame.drop(columns=["key"]), id_column="key")
    assert checked.reasons.tolist() == ["key: missing column (the --id-column)"]


def test_a_row_the_reader_could_not_read_keeps_only_the_readers_reason() -> None:
    frame = pd.DataFrame([GOOD, {k: None for k in GOOD}, GOOD]).astype(str)
    errors = np.array(["", "malformed CSV record (line 3): expected 7 fields, saw 8", ""],
                      dtype=object)
    checked = check_frame(SCHEMA, frame.assign(**{k: frame[k].where(frame.index != 1)
                                                  for k in GOOD}),
                          text=True, read_errors=errors)
    assert checked.good.tolist() == [True, False, True]
    assert checked.reasons[1] == errors[1]


def test_typed_columns_take_the_fast_path() -> None:
    n = 50_000
    frame = pd.DataFrame({
        "ts": pd.date_range("2014-01-01", periods=n, freq="30min"),
        "temp": np.linspace(2, 40, n), "temp_or_null": np.linspace(2, 40, n),
        "count": np.arange(n) % 400, "flag": np.arange(n) % 2,
        "region": np.where(np.arange(n) % 3, "north", "south"), "kind": "a"})
    frame.loc[7, "temp"] = -500.0
    checked = check_frame(SCHEMA, frame)
    assert np.flatnonzero(~checked.good).tolist() == [7]
    assert len(checked.frame) == n - 1
    assert checked.frame["ts"].dtype.kind == "M"


@pytest.mark.parametrize("dtype", ["category", "string[pyarrow]", object])
def test_category_columns_of_any_string_dtype(dtype: object) -> None:
    frame = pd.DataFrame([GOOD, {**GOOD, "region": "west"}]).astype({"region": dtype})
    assert check_frame(SCHEMA, frame).good.tolist() == [True, False]
