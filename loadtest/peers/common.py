"""What every peer server in `make bench-serve` shares: skserve's reference pipeline,
exported by the benchmark (`pipeline.joblib`, with `features.json`: names and dtypes, in
`$SKSERVE_BENCH_MODEL_DIR`), and the DataFrame a user of each framework would build for it:
one column per feature, timestamps parsed by pandas, numbers as float64.

The peers run in their own virtual environment (`bench_serve.py --peers-venv`) with the
same scikit-learn, numpy and pandas as skserve's; the pipeline's own transformer
(`skserve.features.TimeFeatures`) is imported from the repository's `service/` folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

MODEL_DIR = Path(os.environ["SKSERVE_BENCH_MODEL_DIR"])
PIPELINE = joblib.load(MODEL_DIR / "pipeline.joblib")  # written by bench_serve.py itself
FEATURES: list[dict[str, str]] = json.loads((MODEL_DIR / "features.json").read_text())
NAMES = [f["name"] for f in FEATURES]


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the training dtypes: datetime64 timestamps, float64 numbers."""
    for f in FEATURES:
        if f["dtype"] == "datetime":
            frame[f["name"]] = pd.to_datetime(frame[f["name"]])
        elif f["dtype"] in ("float", "int"):
            frame[f["name"]] = frame[f["name"]].astype(float)
    return frame


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The model's input for JSON rows."""
    return typed(pd.DataFrame(rows, columns=NAMES))


def predict(rows: list[dict[str, Any]]) -> list[float]:
    return PIPELINE.predict(frame(rows)).tolist()
