"""Does scale-out share the load? Each pod's requests from its own /metrics, over time.

`PodCounter.poll()` lists a Deployment's pods (by label selector) through the Kubernetes
API and reads `bentoml_service_request_total` for the prediction routes (/predict,
/predict_batch, V2 `/v2/models/<name>/infer`) from each Ready
pod's `/metrics` at its pod IP (so the caller must reach pod IPs: on the node, or in the
cluster). It keeps samples of (epoch s, {pod: (Ready since, requests so far)}) with the
machine's CPU counters and, on the node itself, each pod's CPU from its cgroup (cgroup v1
`cpuacct.usage`, as on the local cluster); `window(t0, t1)` gives each pod's requests and
share in between, the pods' CPU per request and the machine's busy cores. Used by the e2e
HPA test and loadtest/bench_scaleout.py.
"""

from __future__ import annotations

import os
import re
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREDICT_ENDPOINTS = ("/predict", "/predict_batch")
CGROUP_CPUACCT = Path("/sys/fs/cgroup/cpuacct/kubepods")
_SAMPLE = re.compile(r'^bentoml_service_request_total\{([^}]*)\} (\S+)', re.M)
_ENDPOINT = re.compile(r'endpoint="([^"]*)"')


def is_prediction_endpoint(endpoint: str) -> bool:
    """The routes that score rows, as `skserve.edge.is_prediction` names them (not imported:
    this module runs where only the loadtest extra is installed, and edge needs pydantic)."""
    return endpoint in PREDICT_ENDPOINTS or (endpoint.startswith("/v2/models/")
                                             and endpoint.endswith("/infer"))


def requests_served(metrics: str,
                    is_counted: Callable[[str], bool] = is_prediction_endpoint) -> float:
    """Requests a pod has answered on the endpoints `is_counted` accepts (BentoML labels each
    request with its path), any status, from its /metrics text."""
    total = 0.0
    for labels, value in _SAMPLE.findall(metrics):
        found = _ENDPOINT.search(labels)
        if found and is_counted(found[1]):
            total += float(value)
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [float(x) for x in fh.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick


def pod_cpu_seconds(uid: str, root: Path = CGROUP_CPUACCT) -> float | None:
    """CPU seconds a pod has used, from its cgroup (v1, any QoS class); None when this
    machine is not its node or has another cgroup layout."""
    for qos in ("", "burstable/", "besteffort/"):
        path = root / f"{qos}pod{uid}" / "cpuacct.usage"
        try:
            return int(path.read_text()) / 1e9
        except (OSError, ValueError):
            continue
    return None


@dataclass
class Sample:
    t: float
    pods: dict[str, tuple[float | None, float, float | None]]  # pod -> (Ready since,
    # requests so far, CPU seconds so far or None)
    cpu: tuple[float, float]  # machine_cpu()


@dataclass
class Window:
    """What happened between two samples."""

    t0: float
    t1: float
    requests: dict[str, float]  # per pod Ready throughout
    busy_cores: float  # the machine's average busy cores
    pod_cpu_s: float | None = None  # the pods' CPU seconds (None: not on the node)

    @property
    def total(self) -> float:
        return sum(self.requests.values())

    @property
    def cpu_ms_per_request(self) -> float | None:
        return 1000 * self.pod_cpu_s / self.total if self.pod_cpu_s and self.total else None

    @property
    def shares(self) -> dict[str, float]:
        total = self.total
        return {p: (n / total if total else 0.0) for p, n in self.requests.items()}


@dataclass
class PodCounter:
    """Samples each Ready pod's request count at most every `interval_s` (see module doc).

    `list_pods` returns [(name, pod IP, Ready since or None, uid)]; by default it asks the
    cluster for the pods matching `selector` in `namespace`."""

    namespace: str
    selector: str
    kubeconfig: str | None = None
    port: int = 3000
    interval_s: float = 3.0
    list_pods: Callable[[], list[tuple[str, str, float | None, str]]] | None = None
    samples: list[Sample] = field(default_factory=list)
    _next: float = 0.0

    def _cluster_pods(self) -> list[tuple[str, str, float | None, str]]:
        from kubernetes import client, config

        if self.list_pods is None:
            config.load_kube_config(config_file=self.kubeconfig)
            api: Any = client.CoreV1Api()

            def pods() -> list[tuple[str, str, float | None, str]]:
                out = []
                for pod in api.list_namespaced_pod(self.namespace,
                                                   label_selector=self.selector).items:
                    ready = next((c for c in pod.status.conditions or []
                                  if c.type == "Ready" and c.status == "True"), None)
                    if pod.metadata.deletion_timestamp is None and pod.status.pod_ip:
                        since = ready.last_transition_time.timestamp() if ready else None
                        out.append((pod.metadata.name, pod.status.pod_ip, since,
                                    pod.metadata.uid))
                return out

            self.list_pods = pods
        return self.list_pods()

    def poll(self, force: bool = False) -> Sample | None:
        """Take a sample if one is due (or `force`); pods whose /metrics do not answer are
        left out of it."""
        now = time.time()
        if not force and now < self._next:
            return None
        self._next = now + self.interval_s
        counts: dict[str, tuple[float | None, float, float | None]] = {}
        for name, ip, since, uid in self._cluster_pods():
            if since is None:
                continue
            try:
                with urllib.request.urlopen(f"http://{ip}:{self.port}/metrics",
                                            timeout=5) as resp:
                    served = requests_served(resp.read().decode())
            except OSError:
                continue
            counts[name] = (since, served, pod_cpu_seconds(uid))
        sample = Sample(time.time(), counts, machine_cpu())
        self.samples.append(sample)
        return sample

    def window(self, t0: float, t1: float) -> Window | None:
        """Requests per pod between the first sample at or after `t0` and the last at or
        before `t1`, for the pods in both (a restarted pod's counter restarting counts 0)."""
        inside = [s for s in self.samples if t0 <= s.t <= t1]
        if len(inside) < 2:
            return None
        first, last = inside[0], inside[-1]
        both = [p for p in first.pods if p in last.pods]
        requests = {p: max(0.0, last.pods[p][1] - first.pods[p][1]) for p in both}
        busy = (last.cpu[0] - first.cpu[0]) / (last.t - first.t)
        cpu = [(first.pods[p][2], last.pods[p][2]) for p in both]
        pod_cpu = (sum(b - a for a, b in cpu) if cpu and all(
            a is not None and b is not None for a, b in cpu) else None)
        return Window(first.t, last.t, requests, busy, pod_cpu)

    def ready_since(self) -> dict[str, float]:
        """When each pod seen became Ready (epoch s)."""
        out: dict[str, float] = {}
        for sample in self.samples:
            for pod, (since, _, _) in sample.pods.items():
                if since is not None:
                    out.setdefault(pod, since)
        return out


def rps_between(history: Sequence[Mapping[str, Any]], t0: float, t1: float) -> float | None:
    """Mean of Locust's per-second rps rows (report.read_history) between t0 and t1."""
    rows = [r["rps"] for r in history if t0 <= r["t"] <= t1 and r["rps"] is not None]
    return sum(rows) / len(rows) if rows else None
