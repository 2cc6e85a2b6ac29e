"""Load shape schedules: elapsed seconds → (users, spawn rate), or None when the run ends.

Pure functions so every shape is tested without Locust; `skserve.loadtest.shapes` wraps
them in a Locust `LoadTestShape`. Every shape ends at its duration: nothing runs unbounded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import InvalidInput

SHAPES = ("steady", "ramp", "spike", "step", "soak")
# The longest run any shape accepts (a soak test of a day is long enough to see a leak).
MAX_DURATION_S = 24 * 3600.0
DEFAULT_DURATION_S = {"steady": 60.0, "ramp": 60.0, "spike": 60.0, "step": 120.0,
                      "soak": 1800.0}
# spike: the baseline is this fraction of the peak, and the peak lasts the middle fifth.
SPIKE_BASE_FRACTION = 0.2
SPIKE_START, SPIKE_END = 0.4, 0.6
# ramp: climb during this fraction of the run, then hold the peak.
RAMP_FRACTION = 0.8

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*"
                       r"(?:(\d+(?:\.\d+)?)s?)?\s*$")


def parse_duration(text: str | float | int) -> float:
    """Seconds from `90`, `90s`, `2m`, `1h30m`, `1m30s`; raises ValueError on anything else."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if not text.strip() or match is None or not any(match.groups()):
            raise InvalidInput(f"bad duration {text!r}: use e.g. 30s, 2m, 1h30m or seconds")
        h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = h * 3600 + m * 60 + s
    if not 0 < seconds <= MAX_DURATION_S:
        raise InvalidInput(f"duration must be more than 0 s and at most {MAX_DURATION_S:.0f} s, "
                         f"got {seconds:g} s")
    return seconds


@dataclass(frozen=True)
class ShapeSpec:
    """One configured shape: its name, peak users, spawn rate, length and (step) stairs."""

    name: str
    users: int
    spawn_rate: float
    duration_s: float
    steps: int = 4

    def __post_init__(self) -> None:
        if self.name not in SHAPES:
            raise InvalidInput(f"unknown shape {self.name!r}; choose one of {', '.join(SHAPES)}")
        if self.users < 1:
            raise InvalidInput(f"users must be at least 1, got {self.users}")
        if self.spawn_rate <= 0:
            raise InvalidInput(f"spawn rate must be positive, got {self.spawn_rate}")
        if not 0 < self.duration_s <= MAX_DURATION_S:
            raise InvalidInput(f"duration must be in (0, {MAX_DURATION_S:.0f}] s, "
                             f"got {self.duration_s}")
        if self.steps < 1:
            raise InvalidInput(f"steps must be at least 1, got {self.steps}")


def schedule(spec: ShapeSpec, t: float) -> tuple[int, float] | None:
    """The target (users, spawn rate) at `t` seconds into the run; None once it is over.

    - steady / soak: the peak from the start (reached at the spawn rate), held to the end;
      soak differs only in its long default duration.
    - ramp: from 1 user up to the peak over the first 80 % of the run, then held.
    - spike: a fifth of the peak, the full peak in the middle fifth of the run (spawned as
      fast as Locust can), then back to the baseline: does latency recover?
    - step: `steps` equal stairs up to the peak, each held for duration/steps seconds, so
      an autoscaler has time to react to every stair.
    """
    if t < 0:
        t = 0.0
    if t >= spec.duration_s:
        return None
    n, rate, d = spec.users, spec.spawn_rate, spec.duration_s
    if spec.name in ("steady", "soak"):
        return n, rate
    if spec.name == "ramp":
        climb = RAMP_FRACTION * d
        users = max(1, math.ceil(n * min(1.0, t / climb)))
        return users, max(rate, n / climb)
    if spec.name == "spike":
        base = max(1, math.floor(n * SPIKE_BASE_FRACTION))
        if SPIKE_START * d <= t < SPIKE_END * d:
            return n, max(rate, float(n))
        return base, max(rate, float(n))
    # step
    stair = min(spec.steps - 1, int(t // (d / spec.steps)))
    return max(1, math.ceil(n * (stair + 1) / spec.steps)), rate


def peak_users(spec: ShapeSpec) -> int:
    """The most users the shape ever asks for (what workers and the report must plan for)."""
    return spec.users
