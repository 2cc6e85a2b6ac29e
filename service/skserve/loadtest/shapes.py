"""The Locust `LoadTestShape` for skserve: one class, the shape picked by `--skserve-shape`.

Locust allows one shape class per locustfile, so a single class dispatches to the pure
schedules in `skserve.loadtest.schedules`. It reads Locust's own `-u` (peak users), `-r`
(spawn rate) and `-t` (duration; else the shape's default) — `use_common_options` — and
returns None at the end of the duration, which ends the run.
"""

from __future__ import annotations

from locust import LoadTestShape

from .schedules import DEFAULT_DURATION_S, ShapeSpec, schedule


def spec_from_options(options: object) -> ShapeSpec:
    """The ShapeSpec a Locust run's parsed options describe (defaults: steady, 1 user)."""
    name = getattr(options, "skserve_shape", None) or "steady"
    users = int(getattr(options, "num_users", None) or 1)
    rate = float(getattr(options, "spawn_rate", None) or max(1.0, users / 5))
    duration = float(getattr(options, "run_time", None) or DEFAULT_DURATION_S.get(name, 60.0))
    steps = int(getattr(options, "skserve_steps", None) or 4)
    return ShapeSpec(name, users, rate, duration, steps)


class SkserveShape(LoadTestShape):
    """steady | ramp | spike | step | soak, bounded by the run's duration."""

    use_common_options = True
    _spec: ShapeSpec | None = None

    def tick(self) -> tuple[int, float] | None:
        if self._spec is None:
            assert self.runner is not None
            self._spec = spec_from_options(self.runner.environment.parsed_options)
        return schedule(self._spec, self.get_run_time())
