"""Fixtures for the batch tests: real CSV and Parquet files cut from the reference data.

The model comes from the session fixture `trained_model` in tests/conftest.py (a small model
in a throwaway BentoML home)."""

from __future__ import annotations

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
