"""Watch a Deployment's replica count during a load test (for the HPA plot).

Only the Kubernetes API is read (AppsV1 `read_namespaced_deployment`), at most every
`interval_s`; an API error is reported once and the test goes on without the plot.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ReplicaWatcher:
    """Appends (epoch t, desired, ready) rows to a CSV each time `poll()` is due."""

    def __init__(self, path: Path, deployment: str, namespace: str = "default",
                 kubeconfig: str | None = None, interval_s: float = 2.0,
                 read: Callable[[], tuple[int, int]] | None = None):
        """`read` returns (desired, ready); by default it asks the cluster. Tests pass
        their own, as there is no cluster in the unit tests."""
        self.path, self.deployment, self.namespace = path, deployment, namespace
        self.kubeconfig, self.interval_s = kubeconfig, interval_s
        self._read = read
        self._next = 0.0
        self._failed = False
        self.rows: list[tuple[float, int, int]] = []

    def _read_cluster(self) -> tuple[int, int]:
        from kubernetes import client, config

        if self._read is None:
            config.load_kube_config(config_file=self.kubeconfig)
            api: Any = client.AppsV1Api()

            def read() -> tuple[int, int]:
                dep = api.read_namespaced_deployment(self.deployment, self.namespace)
                desired = dep.spec.replicas if dep.spec.replicas is not None else 0
                return int(desired), int(dep.status.ready_replicas or 0)

            self._read = read
        return self._read()

    def poll(self) -> None:
        """Record one sample if `interval_s` has passed since the last one."""
        now = time.time()
        if self._failed or now < self._next:
            return
        self._next = now + self.interval_s
        try:
            desired, ready = self._read() if self._read is not None else self._read_cluster()
        except Exception as exc:  # any API/config error: warn once, keep load testing
            self._failed = True
            print(f"skserve loadtest: not watching replicas of {self.namespace}/"
                  f"{self.deployment}: {exc}", file=sys.stderr)
            return
        self.rows.append((now, desired, ready))
        new = not self.path.exists()
        with open(self.path, "a", newline="") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(["t", "desired", "ready"])
            writer.writerow([f"{now:.3f}", desired, ready])
