"""Per-version results: responses grouped by their `x-model-version` header.

During a canary both versions answer behind one address; grouping by the header puts the
canary's p95 and error ratio beside the stable version's. Latencies go into the bounded-
error histograms of `latency.py` (not raw lists): whole-run totals per version and per
endpoint in HdrHistograms, a per-second timeline in sparse ones. Locust workers ship them
to the master, which merges them exactly, so the SLO gate decides on the same numbers a
single process would have recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .latency import QUANTILES, Histogram, LatencyHistogram, SparseHistogram

K = TypeVar("K")
UNKNOWN = "unknown"  # no response or no header (connection errors, other servers)


@dataclass
class VersionStats:
    """Counts and a latency histogram for one group of responses (a version, an endpoint,
    one second of one version)."""

    requests: int = 0
    failures: int = 0
    hist: Histogram = field(default_factory=LatencyHistogram)

    def add(self, latency_ms: float, ok: bool, count: int = 1) -> None:
        self.requests += count
        self.failures += 0 if ok else count
        self.hist.record(latency_ms, count)

    def merge(self, other: VersionStats) -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.hist.merge(other.hist)

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def summary(self) -> dict[str, Any]:
        """requests, failures, error_ratio and p50_ms/p95_ms/p99_ms (None when empty)."""
        ps = self.hist.quantiles(QUANTILES)
        return {"requests": self.requests, "failures": self.failures,
                "error_ratio": self.error_ratio,
                **{f"p{round(q * 100)}_ms": ps[q] for q in QUANTILES}}

    def to_payload(self) -> dict[str, Any]:
        return {"n": self.requests, "f": self.failures, "h": self.hist.to_payload()}

    @classmethod
    def from_payload(cls, data: dict[str, Any],
                     kind: Callable[[Any], Histogram] = LatencyHistogram.from_payload
                     ) -> VersionStats:
        return cls(int(data["n"]), int(data["f"]), kind(data["h"]))


def _sparse() -> VersionStats:
    return VersionStats(hist=SparseHistogram())


def _group(groups: dict[K, VersionStats], key: K, new: Callable[[], VersionStats]
           ) -> VersionStats:
    """groups[key], created on first use (not `setdefault`, which would build an
    HdrHistogram, ~190 KB, on every call)."""
    stats = groups.get(key)
    if stats is None:
        stats = groups[key] = new()
    return stats


def aggregate(records: Iterable[tuple[str | None, float, bool]]) -> dict[str, dict[str, Any]]:
    """(version, latency_ms, ok) records → {version: p50/p95/p99, requests, error ratio}.

    A record without a version (no response) is grouped under "unknown".
    """
    groups: dict[str, VersionStats] = {}
    for version, latency_ms, ok in records:
        _group(groups, version or UNKNOWN, VersionStats).add(latency_ms, ok)
    return {v: s.summary() for v, s in sorted(groups.items())}


class VersionRecorder:
    """Collects totals per version and per endpoint and a per-second timeline per version;
    mergeable across processes.

    A Locust worker calls `drain()` on every report to the master (so nothing is counted
    twice) and the master calls `merge()` with each worker's payload.
    """

    def __init__(self) -> None:
        self.totals: dict[str, VersionStats] = {}
        self.endpoints: dict[str, VersionStats] = {}
        self.timeline: dict[tuple[int, str], VersionStats] = {}

    def add(self, version: str | None, latency_ms: float, ok: bool, ts: float,
            endpoint: str | None = None) -> None:
        """One response: its version header (None if absent), latency, success, epoch time
        and, if known, the endpoint (Locust's request name)."""
        key = version or UNKNOWN
        _group(self.totals, key, VersionStats).add(latency_ms, ok)
        if endpoint is not None:
            _group(self.endpoints, endpoint, VersionStats).add(latency_ms, ok)
        _group(self.timeline, (int(ts), key), _sparse).add(latency_ms, ok)

    def to_payload(self) -> dict[str, Any]:
        return {"totals": {v: s.to_payload() for v, s in self.totals.items()},
                "endpoints": {e: s.to_payload() for e, s in self.endpoints.items()},
                "timeline": [[sec, v, s.to_payload()]
                             for (sec, v), s in sorted(self.timeline.items())]}

    def drain(self) -> dict[str, Any]:
        """The payload so far, then start afresh."""
        payload = self.to_payload()
        self.totals, self.endpoints, self.timeline = {}, {}, {}
        return payload

    def merge(self, payload: dict[str, Any]) -> None:
        for mine, theirs in ((self.totals, payload.get("totals", {})),
                             (self.endpoints, payload.get("endpoints", {}))):
            for key, data in theirs.items():
                _group(mine, key, VersionStats).merge(VersionStats.from_payload(data))
        for sec, version, data in payload.get("timeline", []):
            _group(self.timeline, (int(sec), version), _sparse).merge(
                VersionStats.from_payload(data, SparseHistogram.from_payload))

    def summary(self) -> dict[str, dict[str, Any]]:
        """{version: p50/p95/p99, requests, failures, error ratio}, sorted by version."""
        return {v: s.summary() for v, s in sorted(self.totals.items())}

    def endpoint_summary(self) -> dict[str, dict[str, Any]]:
        """The same per endpoint (request name), sorted by name."""
        return {e: s.summary() for e, s in sorted(self.endpoints.items())}

    def overall_summary(self) -> dict[str, Any] | None:
        """The same for every response of the run; None if nothing was recorded."""
        if not self.totals:
            return None
        total = VersionStats()
        for stats in self.totals.values():
            total.merge(stats)
        return total.summary()

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
                value = _window(secs, sec, window_s).hist.quantiles((q,))[q]
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
            _group(per_sec, sec, _sparse).merge(stats)
        if not per_sec:
            return []
        rows: list[dict[str, float | None]] = []
        for sec in range(min(per_sec), max(per_sec) + 1):
            ps = _window(per_sec, sec, window_s).hist.quantiles(QUANTILES)
            here = per_sec.get(sec, _sparse())
            rows.append({"t": float(sec), "requests": float(here.requests),
                         "failures": float(here.failures), "p50": ps[0.5], "p95": ps[0.95],
                         "p99": ps[0.99]})
        return rows


def _window(secs: dict[int, VersionStats], sec: int, window_s: int) -> VersionStats:
    """The seconds (sec - window_s, sec] merged."""
    window = _sparse()
    for s in range(sec - window_s + 1, sec + 1):
        if s in secs:
            window.merge(secs[s])
    return window
