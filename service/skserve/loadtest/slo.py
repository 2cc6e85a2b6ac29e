"""The SLO gate: thresholds for p95, p99 and the failure ratio, and the verdicts on a run.

Pure: stats in, verdicts out. The CLI and the locustfile turn a broken verdict into exit
code 3 and print which one broke. The percentiles come from `latency.py`'s histograms.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InvalidInput

ENV = {"p95_ms": "SKSERVE_SLO_P95_MS", "p99_ms": "SKSERVE_SLO_P99_MS",
       "max_failure_ratio": "SKSERVE_SLO_MAX_FAILURE_RATIO"}


@dataclass(frozen=True)
class Slo:
    """Thresholds; None means "not gated"."""

    p95_ms: float | None = None
    p99_ms: float | None = None
    max_failure_ratio: float | None = None

    def __post_init__(self) -> None:
        for name in ("p95_ms", "p99_ms"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise InvalidInput(f"SLO {name} must be positive, got {value}")
        r = self.max_failure_ratio
        if r is not None and not 0 <= r <= 1:
            raise InvalidInput(f"SLO max_failure_ratio must be in [0, 1], got {r}")

    @property
    def empty(self) -> bool:
        return self.p95_ms is None and self.p99_ms is None and self.max_failure_ratio is None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: float | None) -> Slo:
        """Thresholds from `SKSERVE_SLO_*`, each overridden by a non-None keyword (a flag)."""
        env = os.environ if env is None else env
        values: dict[str, float | None] = {}
        for key, var in ENV.items():
            flag = overrides.get(key)
            if flag is not None:
                values[key] = float(flag)
            elif env.get(var, "").strip():
                try:
                    values[key] = float(env[var])
                except ValueError as exc:
                    raise InvalidInput(f"{var}={env[var]!r} is not a number") from exc
            else:
                values[key] = None
        return cls(**values)


@dataclass(frozen=True)
class Verdict:
    """One threshold checked against one observed value."""

    name: str
    threshold: float | None
    observed: float | None
    ok: bool
    scope: str = "all"

    def __str__(self) -> str:
        return f"{'ok' if self.ok else 'BROKEN'}: {self.detail}"

    @property
    def detail(self) -> str:
        """What was checked, e.g. `p95 [demand:v2] 130 ms > 100 ms`."""
        where = "" if self.scope == "all" else f" [{self.scope}]"
        if self.name == "requests":
            return f"requests{where}: {self.observed:g} completed (need at least 1)"
        unit = "" if self.name == "failure_ratio" else " ms"
        observed = "n/a" if self.observed is None else f"{self.observed:g}{unit}"
        op = "<=" if self.ok else ">"
        return f"{self.name}{where} {observed} {op} {self.threshold:g}{unit}"


def evaluate(slo: Slo, *, requests: int, failures: int, p95_ms: float | None,
             p99_ms: float | None, scope: str = "all") -> list[Verdict]:
    """Verdicts for every threshold set in `slo`; empty when nothing is gated.

    A run with no completed requests breaks any gate (a dead server must not pass), and a
    percentile that is missing counts as broken for the same reason.
    """
    if slo.empty:
        return []
    verdicts = [Verdict("requests", 1, float(requests), requests > 0, scope)]
    for name, limit, observed in (("p95", slo.p95_ms, p95_ms), ("p99", slo.p99_ms, p99_ms)):
        if limit is not None:
            ok = observed is not None and requests > 0 and observed <= limit
            verdicts.append(Verdict(name, limit, observed, ok, scope))
    if slo.max_failure_ratio is not None:
        ratio = failures / requests if requests else None
        ok = ratio is not None and ratio <= slo.max_failure_ratio
        verdicts.append(Verdict("failure_ratio", slo.max_failure_ratio, ratio, ok, scope))
    return verdicts


def passed(verdicts: list[Verdict]) -> bool:
    """True when no verdict is broken (and trivially when nothing was gated)."""
    return all(v.ok for v in verdicts)


def broken(verdicts: list[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if not v.ok]
