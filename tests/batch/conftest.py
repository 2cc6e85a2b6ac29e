"""Fixtures for the batch tests: real CSV and Parquet files cut from the reference data, and
genuinely bad models (tests/badmodels.py).

The good model comes from the session fixture `trained_model` in tests/conftest.py (a small
model in a throwaway BentoML home)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def reference() -> pd.DataFrame:
    from skserve.data import load_reference

    return load_reference().frame


@pytest.fixture
def mixed_inputs(tmp_path: Path, reference: pd.DataFrame) -> Path:
    """A folder with a Parquet file (several row groups, target column included) and a CSV
    file holding four bad rows, one per rule."""
    folder = tmp_path / "in"
    folder.mkdir()
    reference.iloc[:2500].to_parquet(folder / "a.parquet", row_group_size=700)
    c = reference.iloc[2500:4000].drop(columns=["Demand"]).reset_index(drop=True)
    c = c.astype({"Temperature": object, "WorkDay": object, "timestamp": str})
    c.loc[3, "Temperature"] = "abc"
    c.loc[10, "Temperature"] = 999.0
    c.loc[20, "WorkDay"] = 7
    c.loc[30, "timestamp"] = "not a date"
    c.to_csv(folder / "b.csv", index=False)
    return folder


BAD_CSV_ROWS = {3: "Temperature", 10: "Temperature", 20: "WorkDay", 30: "timestamp"}


@pytest.fixture(scope="session")
def slow_model() -> str:
    """A real random forest of 300 deep trees (tests/badmodels.py): each predict walks every
    tree in Python-level steps, about 10-20 ms for 100 rows, so a run can be killed or
    timed out mid-way. Stored as `batchbad:slow`, apart from the `demand` models."""
    from tests.badmodels import save_slow
    from tests.conftest import small_dataset

    return save_slow(small_dataset(), trees=300, name="batchbad")


@pytest.fixture(scope="session")
def failing_model() -> str:
    """A real pipeline whose WorkDay encoder never saw 0: predict raises on any mini-batch
    holding a non-workday row (tests/badmodels.py)."""
    from tests.badmodels import save_failing
    from tests.conftest import small_dataset

    return save_failing(small_dataset(), name="batchbad")


@dataclass
class BadInputs:
    """A folder holding every kind of bad input beside good files, and what must come out."""

    folder: Path
    good: set[tuple[str, int]]  # (file, row) of every row that must be scored, once
    bad: dict[tuple[str, int], str]  # (file, row) of every bad row -> a reason fragment
    unreadable: dict[str, str]  # file -> a reason fragment; each counts as one failed item


@pytest.fixture
def bad_inputs(tmp_path: Path, reference: pd.DataFrame) -> BadInputs:
    folder = tmp_path / "bad-in"
    folder.mkdir()
    good: set[tuple[str, int]] = set()

    def name(f: str) -> str:
        return str(folder / f)

    reference.iloc[:300].to_csv(folder / "a_good.csv", index=False)
    good |= {(name("a_good.csv"), i) for i in range(300)}
    reference.iloc[300:800].to_parquet(folder / "b_good.parquet", row_group_size=128)
    good |= {(name("b_good.parquet"), i) for i in range(500)}
    (folder / "c_empty.csv").write_bytes(b"")
    (folder / "d_header_only.csv").write_text("timestamp,WorkDay,Temperature,Demand\n")
    (folder / "e_blank_lines.csv").write_text("\n\n\n")
    (folder / "f_empty.parquet").write_bytes(b"")

    # 20 records: one field too many, one too few, a field that is not UTF-8, blank lines
    # (not rows) and, last, an unterminated quote (it runs to the end of the file).
    lines = reference.iloc[800:820].to_csv(index=False).encode().splitlines()
    header, records = lines[0], lines[1:]
    records[3] += b",9"
    records[7] = records[7].rsplit(b",", 1)[0]
    fields = records[12].split(b",")
    records[12] = b",".join([*fields[:2], b"1\xe97", *fields[3:]])
    records[19] = records[19].replace(b",", b',"', 1)
    body = b"\n".join([header, *records[:6], b"", *records[6:]]) + b"\n\n"
    (folder / "g_malformed.csv").write_bytes(body)
    bad = {(name("g_malformed.csv"), 3): "expected 4 fields, saw 5",
           (name("g_malformed.csv"), 7): "expected 4 fields, saw 3",
           (name("g_malformed.csv"), 12): "is not UTF-8 text",
           (name("g_malformed.csv"), 19): "expected 4 fields, saw 2"}
    good |= {(name("g_malformed.csv"), i) for i in range(20)} - set(bad)

    parquet = (folder / "b_good.parquet").read_bytes()
    (folder / "h_corrupt.parquet").write_bytes(parquet[: len(parquet) // 2])
    # a sound footer (40 rows planned) over data pages that do not decode
    reference.iloc[820:860].to_parquet(folder / "k_bad_pages.parquet")
    pages = bytearray((folder / "k_bad_pages.parquet").read_bytes())
    pages[8:200] = b"\xab" * 192
    (folder / "k_bad_pages.parquet").write_bytes(bytes(pages))
    bad |= {(name("k_bad_pages.parquet"), i): "could not read rows planned from this file"
            for i in range(40)}
    (folder / "i_garbage.csv").write_bytes(random.Random(9).randbytes(4000))
    (folder / "j_utf16.csv").write_bytes(
        reference.iloc[:5].to_csv(index=False).encode("utf-16"))
    unreadable = {name("h_corrupt.parquet"): "Parquet", name("i_garbage.csv"): "CSV parse",
                  name("j_utf16.csv"): "UnicodeDecodeError"}
    return BadInputs(folder, good, bad, unreadable)
