"""Per-version results: responses grouped by their `x-model-version` header.

During a canary both versions answer behind one address; grouping by the header puts the
canary's p95 and error ratio beside the stable version's. Latencies are kept as rounded
histograms (not raw lists) so Locust workers can ship them to the master cheaply and the
master can merge them exactly.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

UNKNOWN = "unknown"  # no response or no header (connection errors, other servers)


def bucket_ms(latency_ms: float) -> float:
    """Round a latency to about 2 significant digits (0.1 ms below 10 ms), like Locust."""
    if latency_ms < 10:
        return round(latency_ms, 1)
    if latency_ms < 100:
        return float(round(latency_ms))
    if latency_ms < 1000:
        return float(round(latency_ms, -1))
    return float(round(latency_ms, -2))


def percentile(hist: Counter[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1) of a histogram {latency: count}; None if empty."""
    total = sum(hist.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return value
    return max(hist)  # pragma: no cover - unreachable: seen reaches total


@dataclass
class VersionStats:
    """Counts and a latency histogram for one model version."""

    requests: int = 0
    failures: int = 0
    hist: Counter[float] = field(default_factory=Counter)

    def add(self, latency_ms: float, ok: bool, count: int = 1) -> None:
        self.requests += count
        self.failures += 0 if ok else count
        self.hist[bucket_ms(latency_ms)] += count

    def merge(self, other: VersionStats) -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.hist.update(other.hist)

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def p(self, q: float) -> float | None:
        return percentile(self.hist, q)

    def summary(self) -> dict[str, Any]:
        return {"requests": self.requests, "failures": self.failures,
                "error_ratio": self.error_ratio, "p50_ms": self.p(0.50),
                "p95_ms": self.p(0.95), "p99_ms": self.p(0.99)}

    def to_payload(self) -> dict[str, Any]:
        return {"n": self.requests, "f": self.failures,
                "h": [[v, c] for v, c in sorted(self.hist.items())]}

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> VersionStats:
        return cls(int(data["n"]), int(data["f"]),
                   Counter({float(v): int(c) for v, c in data["h"]}))


def aggregate(records: Iterable[tuple[str | None, float, bool]]) -> dict[str, dict[str, Any]]:
    """(version, latency_ms, ok) records → {version: p50/p95/p99, requests, error ratio}.

    A record without a version (no response) is grouped under "unknown".
    """
    groups: dict[str, VersionStats] = {}
    for version, latency_ms, ok in records:
        groups.setdefault(version or UNKNOWN, VersionStats()).add(latency_ms, ok)
    return {v: s.summary() for v, s in sorted(groups.items())}


class VersionRecorder:
    """Collects per-version totals and a per-second timeline; mergeable across processes.

    A Locust worker calls `drain()` on every report to the master (so nothing is counted
    twice) and the master calls `merge()` with each worker's payload.
    """

    def __init__(self) -> None:
        self.totals: dict[str, VersionStats] = {}
        self.timeline: dict[tuple[int, str], VersionStats] = {}

    def add(self, version: str | None, latency_ms: float, ok: bool, ts: float) -> None:
        """One response: its version header (None if absent), latency, success, epoch time."""
        key = version or UNKNOWN
        self.totals.setdefault(key, VersionStats()).add(latency_ms, ok)
        self.timeline.setdefault((int(ts), key), VersionStats()).add(latency_ms, ok)

    def to_payload(self) -> dict[str, Any]:
        return {"totals": {v: s.to_payload() for v, s in self.totals.items()},
                "timeline": [[sec, v, s.to_payload()]
                             for (sec, v), s in sorted(self.timeline.items())]}

    def drain(self) -> dict[str, Any]:
        """The payload so far, then start afresh."""
        payload = self.to_payload()
        self.totals, self.timeline = {}, {}
        return payload

    def merge(self, payload: dict[str, Any]) -> None:
        for version, data in payload.get("totals", {}).items():
            self.totals.setdefault(version, VersionStats()).merge(VersionStats.from_payload(data))
        for sec, version, data in payload.get("timeline", []):
            stats = self.timeline.setdefault((int(sec), version), VersionStats())
            stats.merge(VersionStats.from_payload(data))

    def summary(self) -> dict[str, dict[str, Any]]:
        """{version: p50/p95/p99, requests, failures, error ratio}, sorted by version."""
        return {v: s.summary() for v, s in sorted(self.totals.items())}

    def series(self, q: float = 0.95, window_s: int = 5) -> dict[str, list[tuple[int, float]]]:
        """Per version, (epoch second, percentile over the trailing `window_s` seconds):
        smooth enough to compare two versions on one plot."""
        by_version: dict[str, dict[int, VersionStats]] = {}
        for (sec, version), stats in self.timeline.items():
            by_version.setdefault(version, {})[sec] = stats
        out: dict[str, list[tuple[int, float]]] = {}
        for version, secs in sorted(by_version.items()):
            points = []
            for sec in sorted(secs):
                window = VersionStats()
                for s in range(sec - window_s + 1, sec + 1):
                    if s in secs:
                        window.merge(secs[s])
                value = window.p(q)
                if value is not None:
                    points.append((sec, value))
            out[version] = points
        return out

    def overall(self, window_s: int = 3) -> list[dict[str, float | None]]:
        """All versions together, one row per second from the first to the last: requests
        and failures in that second, and p50/p95/p99 over the trailing `window_s` seconds
        (a second with no responses repeats nothing: its percentiles are None)."""
        per_sec: dict[int, VersionStats] = {}
        for (sec, _version), stats in self.timeline.items():
            per_sec.setdefault(sec, VersionStats()).merge(stats)
        if not per_sec:
            return []
        rows: list[dict[str, float | None]] = []
        for sec in range(min(per_sec), max(per_sec) + 1):
            window = VersionStats()
            for s in range(sec - window_s + 1, sec + 1):
                if s in per_sec:
                    window.merge(per_sec[s])
            here = per_sec.get(sec, VersionStats())
            rows.append({"t": float(sec), "requests": float(here.requests),
                         "failures": float(here.failures), "p50": window.p(0.5),
                         "p95": window.p(0.95), "p99": window.p(0.99)})
        return rows
