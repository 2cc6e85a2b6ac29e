"""The SLO gate's pass/fail logic (pure)."""

from __future__ import annotations

import pytest

from skserve.loadtest.slo import Slo, broken, evaluate, passed


def verdicts_by_name(verdicts):
    return {v.name: v for v in verdicts}


def test_all_thresholds_met_passes():
    slo = Slo(p95_ms=100, p99_ms=200, max_failure_ratio=0.01)
    verdicts = evaluate(slo, requests=1000, failures=10, p95_ms=100, p99_ms=150)
    assert passed(verdicts)
    assert {v.name for v in verdicts} == {"requests", "p95", "p99", "failure_ratio"}


@pytest.mark.parametrize(("kwargs", "broken_name"), [
    ({"p95_ms": 101, "p99_ms": 150, "failures": 0}, "p95"),
    ({"p95_ms": 90, "p99_ms": 201, "failures": 0}, "p99"),
    ({"p95_ms": 90, "p99_ms": 150, "failures": 11}, "failure_ratio"),
])
def test_each_threshold_breaks_alone(kwargs, broken_name):
    slo = Slo(p95_ms=100, p99_ms=200, max_failure_ratio=0.01)
    verdicts = evaluate(slo, requests=1000, **kwargs)
    assert not passed(verdicts)
    assert [v.name for v in broken(verdicts)] == [broken_name]
    assert str(broken(verdicts)[0]).startswith(f"BROKEN: {broken_name}")


def test_no_requests_breaks_every_gate():
    verdicts = evaluate(Slo(p95_ms=100, max_failure_ratio=0.5), requests=0, failures=0,
                        p95_ms=None, p99_ms=None)
    assert {v.name for v in broken(verdicts)} == {"requests", "p95", "failure_ratio"}


def test_missing_percentile_is_broken():
    verdicts = evaluate(Slo(p99_ms=100), requests=5, failures=0, p95_ms=10, p99_ms=None)
    assert [v.name for v in broken(verdicts)] == ["p99"]


def test_nothing_gated_means_no_verdicts():
    assert evaluate(Slo(), requests=0, failures=0, p95_ms=None, p99_ms=None) == []


def test_only_set_thresholds_are_checked():
    verdicts = evaluate(Slo(p95_ms=50), requests=10, failures=10, p95_ms=40, p99_ms=9999)
    assert passed(verdicts)  # failures and p99 are not gated
    assert "failure_ratio" not in verdicts_by_name(verdicts)


def test_scope_is_kept_and_printed():
    (v,) = [v for v in evaluate(Slo(p95_ms=10), requests=3, failures=0, p95_ms=20,
                                p99_ms=20, scope="demand:canary") if v.name == "p95"]
    assert not v.ok and v.scope == "demand:canary"
    assert "[demand:canary]" in str(v) and "20 ms > 10 ms" in str(v)


def test_flags_override_env():
    env = {"SKSERVE_SLO_P95_MS": "100", "SKSERVE_SLO_P99_MS": "300",
           "SKSERVE_SLO_MAX_FAILURE_RATIO": "0.05"}
    slo = Slo.from_env(env, p95_ms=50.0, p99_ms=None, max_failure_ratio=None)
    assert slo == Slo(p95_ms=50.0, p99_ms=300.0, max_failure_ratio=0.05)
    assert Slo.from_env({}).empty


def test_bad_env_and_values_are_rejected():
    with pytest.raises(ValueError, match="SKSERVE_SLO_P95_MS"):
        Slo.from_env({"SKSERVE_SLO_P95_MS": "fast"})
    with pytest.raises(ValueError):
        Slo(max_failure_ratio=1.5)
    with pytest.raises(ValueError):
        Slo(p99_ms=0)
