"""The Locust `LoadTestShape` for skserve: one class, the shape picked by `--skserve-shape`.

Locust allows one shape class per locustfile, so a single class dispatches to the pure
schedules in `skserve.loadtest.schedules`. It reads Locust's own `-u` (peak users), `-r`
(spawn rate) and `-t` (duration; else the shape's default) — `use_common_options` — and
returns None at the end of the duration, which ends the run.

A distributed master first drains: at the end of the duration it sets 0 users and waits
until the workers' users have finished their last requests (up to Locust's stop timeout)
and one more worker report has carried them to the master. Without that, Locust's master
quits half a second after telling the workers to, and whatever they measured since their
last report (every 3 s) is lost from its stats and from the SLO gate's histograms.
"""

from __future__ import annotations

from locust import LoadTestShape
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner

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
        assert self.runner is not None
        if self._spec is None:
            self._spec = spec_from_options(self.runner.environment.parsed_options)
        t = self.get_run_time()
        step = schedule(self._spec, t)
        if step is None and isinstance(self.runner, MasterRunner):
            drain_s = (self.runner.environment.stop_timeout or 0) + WORKER_REPORT_INTERVAL + 1
            if t < self._spec.duration_s + drain_s:
                return 0, max(self._spec.spawn_rate, float(self._spec.users))
        return step
