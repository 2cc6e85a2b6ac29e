"""Latency histograms with a stated error: the numbers the SLO gate decides on.

Locust keeps response times rounded to two significant digits (1002–1049 ms all count as
1000 ms), so its p95 can sit on the wrong side of an SLO. skserve records every latency
Locust measures (client side: from sending the request to reading the whole response, in
ms, failed requests included, as Locust counts them) in an HdrHistogram:

- values are recorded in whole microseconds, rounded up, from 1 µs to 1 h (longer ones
  are recorded as 1 h; Locust's own network timeout is far shorter);
- 3 significant decimal digits: a bucket is at most 1/1024 of its value wide;
- a percentile is the nearest-rank one (the smallest recorded latency with at least q of
  all requests at or below it), reported as the upper end of its bucket.

So a reported percentile is never below the exact percentile of the recorded latencies
and at most 1/1024 (< 0.1 %) + 1 µs above it (`ERROR_BOUND`): a gate on it never passes a
run whose exact percentile is over the SLO, and fails one only within 0.1 % under it.

Histograms merge exactly (bucket counts add up), so Locust workers ship theirs to the
master in HdrHistogram's standard compressed encoding and the master's result is the
same as one process would have recorded. The many per-second histograms of a run's
timeline (plots) are kept sparse, `{bucket: count}`, with the same buckets and bound.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol

from hdrh.histogram import HdrHistogram

LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3
RELATIVE_ERROR = 2.0 ** -10  # a bucket's width / its lowest value, for 3 digits
ERROR_BOUND = ("nearest-rank percentile of every client-side latency, from an HdrHistogram "
               "(3 significant digits): never below the exact value, at most 0.1 % + 1 µs "
               "above it")
QUANTILES = (0.5, 0.95, 0.99)
_BUCKETS = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)  # only asked which bucket a value is in


def to_us(latency_ms: float) -> int:
    """Whole microseconds, rounded up and clamped to the histogram's range."""
    return min(HIGHEST_US, max(LOWEST_US, math.ceil(latency_ms * 1000 - 1e-6)))


def bucket_us(latency_ms: float) -> int:
    """The upper end (µs) of the HdrHistogram bucket a latency falls in."""
    return int(_BUCKETS.get_highest_equivalent_value(to_us(latency_ms)))


def nearest_rank(pairs: Iterable[tuple[int, int]], total: int,
                 qs: Sequence[float] = QUANTILES) -> dict[float, float | None]:
    """{q: ms} from ascending (bucket upper end µs, count) pairs holding `total` values.

    The rank of q is ceil(q · total), computed in integers (q to the millionth) so 0.95 of
    100 is rank 95, not 96 through float error."""
    if total <= 0:
        return dict.fromkeys(qs)
    ranks = sorted((max(1, -(-round(q * 1_000_000) * total // 1_000_000)), q) for q in qs)
    out: dict[float, float | None] = {}
    seen, i = 0, 0
    for value_us, count in pairs:
        seen += count
        while i < len(ranks) and seen >= ranks[i][0]:
            out[ranks[i][1]] = value_us / 1000
            i += 1
        if i == len(ranks):
            break
    return {q: out.get(q) for q in qs}


class Histogram(Protocol):
    """What per-version stats need from a latency histogram."""

    count: int

    def record(self, latency_ms: float, count: int = 1) -> None: ...
    def merge(self, other: Histogram) -> None: ...
    def quantiles(self, qs: Sequence[float] = QUANTILES) -> dict[float, float | None]: ...
    def to_payload(self) -> object: ...


class LatencyHistogram:
    """One HdrHistogram: a run's (or a version's, an endpoint's) latencies. ~190 KB each,
    so one per group, not one per second (see `SparseHistogram`)."""

    def __init__(self, hdr: HdrHistogram | None = None) -> None:
        self.hdr = hdr if hdr is not None else HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)

    @property
    def count(self) -> int:
        return int(self.hdr.get_total_count())

    def record(self, latency_ms: float, count: int = 1) -> None:
        self.hdr.record_value(to_us(latency_ms), count)

    def merge(self, other: Histogram) -> None:
        self.hdr.add(other.hdr)  # type: ignore[attr-defined]

    def quantiles(self, qs: Sequence[float] = QUANTILES) -> dict[float, float | None]:
        pairs = ((int(self.hdr.get_highest_equivalent_value(i.value_iterated_to)),
                  int(i.count_at_value_iterated_to)) for i in self.hdr.get_recorded_iterator())
        return nearest_rank(pairs, self.count, qs)

    def to_payload(self) -> str:
        """HdrHistogram's standard compressed base64 encoding (any HdrHistogram library
        decodes it)."""
        return self.hdr.encode().decode("ascii")

    @classmethod
    def from_payload(cls, data: object) -> LatencyHistogram:
        if not isinstance(data, str):
            raise ValueError("a latency histogram payload is an encoded HdrHistogram string")
        return cls(HdrHistogram.decode(data))


class SparseHistogram:
    """HdrHistogram's buckets in a Counter: small enough for one per second of a run."""

    def __init__(self, counts: Counter[int] | None = None) -> None:
        self.counts: Counter[int] = counts if counts is not None else Counter()

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def record(self, latency_ms: float, count: int = 1) -> None:
        self.counts[bucket_us(latency_ms)] += count

    def merge(self, other: Histogram) -> None:
        self.counts.update(other.counts)  # type: ignore[attr-defined]

    def quantiles(self, qs: Sequence[float] = QUANTILES) -> dict[float, float | None]:
        return nearest_rank(sorted(self.counts.items()), self.count, qs)

    def to_payload(self) -> list[list[int]]:
        return [[v, c] for v, c in sorted(self.counts.items())]

    @classmethod
    def from_payload(cls, data: object) -> SparseHistogram:
        return cls(Counter({int(v): int(c) for v, c in data}))  # type: ignore[attr-defined]
