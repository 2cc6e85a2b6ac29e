"""The load of `make bench-serve`: every server gets the same rows, one per request, each
in its own protocol's body (prepared by bench_serve.py: `$SKSERVE_BENCH_BODIES` is a JSON
file `{"path": "/predict", "bodies": ["...", ...]}`). Importing skserve's users module
gives the run skserve's options, its bounded-error latency histograms and its final totals,
as for any `skserve loadtest`; only the user class differs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from locust import FastHttpUser, constant, task

import skserve.loadtest.users  # noqa: F401  (options, histograms, final stats)

SPEC = json.loads(Path(os.environ["SKSERVE_BENCH_BODIES"]).read_text())
HEADERS = {"content-type": "application/json"}


class BenchUser(FastHttpUser):
    """Closed loop: the next request as soon as the answer is in."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.bodies = [b.encode() for b in SPEC["bodies"]]
        self.at = id(self) % len(self.bodies)  # users start at different rows

    @task
    def call(self) -> None:
        self.at = (self.at + 1) % len(self.bodies)
        self.client.post(SPEC["path"], data=self.bodies[self.at], headers=HEADERS)
