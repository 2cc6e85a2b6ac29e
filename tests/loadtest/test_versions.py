"""Per-version grouping of responses by `x-model-version` (pure)."""

from __future__ import annotations

import random

import pytest

from skserve.loadtest.versions import UNKNOWN, VersionRecorder, aggregate

from .test_latency import within_bound


def test_groups_by_version_with_own_percentiles_and_errors():
    records = [("demand:stable", float(ms), True) for ms in range(1, 101)]
    records += [("demand:canary", 50.0, True)] * 90 + [("demand:canary", 400.0, False)] * 10
    out = aggregate(records)
    assert list(out) == ["demand:canary", "demand:stable"]
    stable, canary = out["demand:stable"], out["demand:canary"]
    for key, exact in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99)):  # nearest rank
        assert within_bound(stable[key], exact), (key, stable[key])
    assert stable["error_ratio"] == 0 and stable["requests"] == 100
    assert within_bound(canary["p50_ms"], 50) and within_bound(canary["p95_ms"], 400)
    assert canary["failures"] == 10 and canary["error_ratio"] == 0.1


def test_missing_header_is_unknown():
    out = aggregate([(None, 5.0, False), ("", 6.0, False)])
    assert list(out) == [UNKNOWN]
    assert out[UNKNOWN]["requests"] == 2 and out[UNKNOWN]["error_ratio"] == 1.0


def test_drained_worker_payloads_merge_to_the_same_result():
    rng = random.Random(3)
    records = [(rng.choice(["a", "b"]), rng.uniform(1, 300), rng.random() > 0.05,
                1_700_000_000 + rng.uniform(0, 20), rng.choice(["/predict", "/predict_batch"]))
               for _ in range(3000)]
    single = VersionRecorder()
    master = VersionRecorder()
    workers = [VersionRecorder(), VersionRecorder()]
    for i, (version, ms, ok, ts, endpoint) in enumerate(records):
        single.add(version, ms, ok, ts, endpoint)
        workers[i % 2].add(version, ms, ok, ts, endpoint)
        if i % 700 == 0:  # periodic reports drain the worker
            master.merge(workers[i % 2].drain())
    for w in workers:
        master.merge(w.drain())
    assert master.summary() == single.summary()
    assert master.endpoint_summary() == single.endpoint_summary()
    assert master.overall_summary() == single.overall_summary()
    assert workers[0].summary() == {} and workers[0].overall_summary() is None  # drained
    assert master.series(0.95, 5) == single.series(0.95, 5)
    assert master.overall() == single.overall()
    assert sum(r["requests"] for r in master.overall()) == 3000
    exact = sorted(r[1] for r in records)
    assert within_bound(master.overall_summary()["p95_ms"], exact[2850 - 1])


def test_overall_fills_empty_seconds():
    rec = VersionRecorder()
    rec.add("v", 10, True, 100.2)
    rec.add("v", 30, False, 103.9)
    rows = rec.overall(window_s=1)
    assert [r["t"] for r in rows] == [100, 101, 102, 103]
    assert [r["requests"] for r in rows] == [1, 0, 0, 1]
    assert rows[1]["p95"] is None and rows[3]["failures"] == 1
    assert rows[3]["p95"] == pytest.approx(30, rel=2**-10)
