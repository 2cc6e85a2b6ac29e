"""Realistic request rows: sampled from the model's feature schema or from a sample file.

A fixed payload hits one path through the model and one cache line of every lookup; rows
drawn from the observed ranges and categories exercise the model the way traffic does.
Rows are drawn once into a pool and pre-encoded as JSON, so the load generator spends its
CPU on requests, not on `random` and `json.dumps` (see the harness notes on loadgen CPU).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ..extras import require

POOL_SIZE = 1024


def _iso(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def sample_value(feature: Mapping[str, Any], rng: random.Random) -> Any:
    """One value for one feature description (`GET /metadata` → features[i]).

    float: uniform in [min, max]; int: one of its categories, else uniform integer;
    category: one of the categories; datetime: uniform between min and max, ISO 8601
    to the second. A feature with no range or categories gets None (the service imputes).
    """
    dtype = feature.get("dtype")
    categories = [c for c in (feature.get("categories") or []) if c is not None]
    lo, hi = feature.get("min"), feature.get("max")
    if dtype == "datetime":
        if lo is None or hi is None:
            return None
        start, end = _iso(lo), _iso(hi)
        seconds = max(0.0, (end - start).total_seconds())
        return (start + timedelta(seconds=int(rng.uniform(0, seconds)))).isoformat()
    if categories:
        return rng.choice(categories)
    if lo is None or hi is None:
        return None
    if dtype == "int":
        return rng.randint(math.ceil(float(lo)), math.floor(float(hi)))
    if dtype == "float":
        return round(rng.uniform(float(lo), float(hi)), 4)
    return None


def sample_row(features: Sequence[Mapping[str, Any]], rng: random.Random) -> dict[str, Any]:
    """One row: a value for every feature, in schema order."""
    return {f["name"]: sample_value(f, rng) for f in features}


def _json_safe(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return value


def rows_from_file(path: Path, features: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows of a CSV or Parquet sample file as JSON-ready dicts (NaN → null, times → ISO).

    With `features`, only those columns are kept (a training file's target is dropped);
    a missing feature column is an error naming it.
    """
    suffix = path.suffix.lower()
    require(f"a sample file ({path.name})", "pandas",
            *(["pyarrow"] if suffix in (".parquet", ".pq") else []))
    import pandas as pd

    if suffix == ".csv":
        frame = pd.read_csv(path)
    elif suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    else:
        raise InvalidInput(f"{path}: sample file must be .csv or .parquet, not {suffix!r}")
    if features is not None:
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise InvalidInput(f"{path}: sample file lacks feature column(s) {missing}")
        frame = frame[list(features)]
    if frame.empty:
        raise InvalidInput(f"{path}: sample file has no rows")
    return [{k: _json_safe(v) for k, v in row.items()} for row in frame.to_dict("records")]


class RowPool:
    """A seeded pool of rows with their JSON encodings, for single and batch bodies."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], seed: int | None = None):
        if not rows:
            raise InvalidInput("a row pool needs at least one row")
        self.rows = list(rows)
        self.encoded = [json.dumps(r, separators=(",", ":")).encode() for r in self.rows]
        self.rng = random.Random(seed)

    @classmethod
    def from_schema(cls, features: Sequence[Mapping[str, Any]], seed: int | None = None,
                    size: int = POOL_SIZE) -> RowPool:
        """`size` rows sampled from the schema with an RNG seeded by `seed`."""
        if not features:
            raise InvalidInput("the schema has no features to sample")
        rng = random.Random(seed)
        return cls([sample_row(features, rng) for _ in range(size)], seed)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], seed: int | None = None,
                  size: int = POOL_SIZE) -> RowPool:
        """Up to `size` rows drawn (with replacement if needed) from a sample file's rows."""
        rng = random.Random(seed)
        picked = rows if len(rows) <= size else rng.sample(list(rows), size)
        return cls(picked, seed)

    def body(self) -> bytes:
        """A JSON body of one random row, for POST /predict."""
        return self.encoded[self.rng.randrange(len(self.encoded))]

    def batch_body(self, n: int) -> bytes:
        """A JSON list of `n` random rows, for POST /predict_batch."""
        k = len(self.encoded)
        return b"[" + b",".join(self.encoded[self.rng.randrange(k)] for _ in range(n)) + b"]"


def parse_mix(text: str) -> dict[str, float]:
    """`predict=0.8,predict_batch=0.2` → normalised weights; raises ValueError naming the
    bad part. Weights need not add up to 1 (`predict=4,predict_batch=1` is the same)."""
    known = ("predict", "predict_batch")
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip().lstrip("/")
        if not sep or name not in known:
            raise InvalidInput(f"bad mix entry {part!r}: use e.g. predict=0.8,predict_batch=0.2")
        try:
            weights[name] = float(value)
        except ValueError as exc:
            raise InvalidInput(f"bad mix weight {value!r} for {name}") from exc
        if weights[name] < 0:
            raise InvalidInput(f"mix weight for {name} must not be negative")
    total = sum(weights.values())
    if total <= 0:
        raise InvalidInput(f"mix {text!r} has no positive weight")
    return {k: weights.get(k, 0.0) / total for k in known}
