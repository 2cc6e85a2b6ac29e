"""`TimeFeatures` gives the same numbers on datetime64[ns] (numpy's calendar units) as on
the same instants parsed by pandas, so models trained before the numpy path serve
unchanged."""

from __future__ import annotations

import numpy as np

from skserve.features import TimeFeatures


def instants(n: int = 20_000, seed: int = 5) -> np.ndarray:
    """Random instants to the nanosecond from 1700 to 2200 (before 1970 too, leap years,
    month and year ends), a tenth of them missing."""
    rng = np.random.default_rng(seed)
    low = np.datetime64("1700-01-01", "ns").astype(np.int64)
    high = np.datetime64("2200-01-01", "ns").astype(np.int64)
    values = rng.integers(low, high, n).astype("datetime64[ns]")
    edges = np.array(["2000-02-29T23:59:59.999999999", "1969-12-31T23:59", "1970-01-01",
                      "2024-12-31T12:30", "1900-03-01T00:01"], dtype="datetime64[ns]")
    values[rng.random(n) < 0.1] = np.datetime64("NaT")
    return np.concatenate([values, edges])


def test_numpy_and_pandas_calendars_agree_to_the_bit():
    values = instants()
    fast = TimeFeatures().fit(values[:, None]).transform(values[:, None])
    parsed = TimeFeatures().fit(values[:, None]).transform(values.astype(object)[:, None])
    assert fast.dtype == parsed.dtype == np.float64
    assert np.array_equal(fast, parsed, equal_nan=True)
    missing = np.isnat(values)
    assert missing.sum() > 1000 and np.isnan(fast[missing, 0]).all()
    assert not np.isnan(fast[~missing]).any()


def test_a_known_instant():
    """2024-03-16 was a Saturday, day 76 of a leap year."""
    out = TimeFeatures().transform(np.array([["2024-03-16T18:45"]], dtype="datetime64[ns]"))
    assert out[0, :4].tolist() == [18.75, 5.0, 3.0, 1.0]
    assert out[0, 8] == np.sin(2 * np.pi * 76 / 365.25)
