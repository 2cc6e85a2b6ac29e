"""Helpers for the rollout suite on the local cluster (tests/e2e/test_rollouts.py).

- `train_versions()`: a live model, a good retrain and the three bad ones (tests/badmodels.py)
  in the test's model store.
- `build_images(tags)`: ONE serving image carrying every version (`SKSERVE_MODEL` picks one,
  so a rollout only changes the slot's model), the rollout controller's own image (the
  chart's default for the in-cluster controller) and the HAProxy image; all archived and
  imported into the cluster's containerd. The builds are cached (podman layers, the wheel
  and .deb caches): a second run rebuilds only the model layer.
- `HostPrometheus`: Debian's Prometheus on the host, scraping the release's pods by their IPs
  over the skserve0 bridge, with k8s/monitoring/prometheus-scrape.yaml's relabelling; it
  listens on the bridge address, so the in-cluster controller reaches it too. Debian builds
  Prometheus without Kubernetes service discovery (`kubernetes_sd_configs` is an unknown
  field to it), so a thread here lists the pods through the API server every second and
  writes them as file_sd targets carrying the `__meta_kubernetes_*` labels Kubernetes SD
  would give: the job's relabel_configs are the file's, unchanged.
- `Locust`: `skserve loadtest` in the background; failures and requests in any time window
  from its per-second stats history.
- `gateway_api_crds()`: the Gateway API CRDs from the `sigs.k8s.io/gateway-api` Go module.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.e2e import helpers as h

BRIDGE_IP = "10.244.0.1"  # the local cluster's node address (hack/cluster/lib.sh)
SERVING_TAG = "rollout-e2e"
SERVING_IMAGE = f"localhost/skserve:{SERVING_TAG}"
HAPROXY_IMAGE = "localhost/skserve-haproxy:2.6"
CONTROLLER = "controller"  # build.sh --controller: localhost/skserve-controller:<version>
GATEWAY_API = "sigs.k8s.io/gateway-api@v1.7.0"


def train_versions() -> dict[str, str]:
    """name → model tag: live, good, slow, shifted, failing (the e2e's store)."""
    from skserve import store
    from skserve.train import model_metadata, select_model
    from tests import badmodels
    from tests.conftest import small_dataset

    data = small_dataset()
    sel = select_model(data, seed=7, n_iter=1, holdout_weeks=1, cv_splits=2)
    live = store.save("demand", sel.pipeline, model_metadata(sel, data, 7),
                      {"dataset": data.name, "family": sel.winner.model}, version="live").tag
    return {"live": live, "good": badmodels.save_retrained(data, live),
            "slow": badmodels.save_slow(data, trees=600),
            "shifted": badmodels.save_shifted(data, 1.5),
            "failing": badmodels.save_failing(data)}


def build_images(tags: list[str]) -> dict[str, float]:
    """Build, archive and import the three images; seconds per step."""
    env = dict(os.environ)
    took: dict[str, float] = {}
    built = []
    for what, build, archive in (
            ("serving", ["--tag", SERVING_TAG, *tags], ["--tag", SERVING_TAG]),
            (CONTROLLER, [f"--{CONTROLLER}"], [f"--{CONTROLLER}"])):
        t0 = time.monotonic()
        built.append(h.run(["bash", "hack/image/build.sh", *build], timeout=900,
                           env=env).stdout.split()[-1])
        took[f"{what}_build_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        path = h.run(["bash", "hack/image/archive.sh", *archive], timeout=600,
                     env=env).stdout.split()[-1]
        h.run([h.ctr_bin(), "images", "import", path], timeout=600)
        took[f"{what}_archive_import_s"] = time.monotonic() - t0
    t0 = time.monotonic()
    out = h.run(["bash", "hack/image/build-haproxy.sh", "--archive"], timeout=900,
                env=env).stdout.split()
    took["haproxy_build_s"] = time.monotonic() - t0
    t0 = time.monotonic()
    h.run([h.ctr_bin(), "images", "import", out[-1]], timeout=300)
    took["haproxy_import_s"] = time.monotonic() - t0
    listed = h.run([h.ctr_bin(), "images", "ls", "-q"], timeout=60).stdout.split()
    for ref in (*built, HAPROXY_IMAGE):
        assert any(x in (ref, f"docker.io/{ref}") for x in listed), (ref, listed)
    return {k: round(v, 1) for k, v in took.items()}


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _label_name(text: str) -> str:
    """Prometheus' sanitised label name (every character outside [a-zA-Z0-9_] → _)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", text)


def pod_targets(pods: list[Any]) -> list[dict[str, Any]]:
    """file_sd target groups, one per container port of each pod with an IP, labelled the
    way Kubernetes service discovery (role: pod) labels its targets."""
    groups = []
    for pod in pods:
        if not pod.status.pod_ip or pod.metadata.deletion_timestamp:
            continue
        ready = any(c.type == "Ready" and c.status == "True"
                    for c in pod.status.conditions or [])
        meta = {"__meta_kubernetes_namespace": pod.metadata.namespace,
                "__meta_kubernetes_pod_name": pod.metadata.name,
                "__meta_kubernetes_pod_ip": pod.status.pod_ip,
                "__meta_kubernetes_pod_ready": str(ready).lower()}
        for k, v in (pod.metadata.labels or {}).items():
            meta[f"__meta_kubernetes_pod_label_{_label_name(k)}"] = v
        for k, v in (pod.metadata.annotations or {}).items():
            meta[f"__meta_kubernetes_pod_annotation_{_label_name(k)}"] = v
        for c in pod.spec.containers:
            for port in c.ports or []:
                groups.append({"targets": [f"{pod.status.pod_ip}:{port.container_port}"],
                               "labels": {**meta,
                                          "__meta_kubernetes_pod_container_name": c.name,
                                          "__meta_kubernetes_pod_container_port_name":
                                              port.name or ""}})
    return groups


class HostPrometheus:
    """Prometheus (Debian's) on the host, scraping the pods of `namespaces` every
    `scrape_s` seconds; `url` is on the bridge address, reachable from pods too."""

    def __init__(self, namespaces: list[str], scrape_s: float = 1.0):
        self.namespaces = list(namespaces)
        self.scrape_s = scrape_s
        self.root = Path(tempfile.mkdtemp(prefix="skserve-e2e-prom-"))
        self.port = free_port(BRIDGE_IP)
        self.url = f"http://{BRIDGE_IP}:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.stopping = threading.Event()
        self.discovery: threading.Thread | None = None

    def config(self) -> dict[str, Any]:
        (job,) = yaml.safe_load((h.REPO / "k8s" / "monitoring" /
                                 "prometheus-scrape.yaml").read_text())
        job["scrape_interval"] = f"{self.scrape_s:g}s"
        job.pop("kubernetes_sd_configs")
        job["file_sd_configs"] = [{"files": [str(self.root / "targets.json")]}]
        return {"global": {"scrape_interval": f"{self.scrape_s:g}s",
                           "evaluation_interval": f"{self.scrape_s:g}s"},
                "scrape_configs": [job]}

    def _discover(self) -> None:
        from kubernetes import client, config

        api = client.CoreV1Api(config.new_client_from_config(config_file=str(h.KUBECONFIG)))
        last = None
        while not self.stopping.wait(1.0):
            try:
                pods = [p for ns in self.namespaces
                        for p in api.list_namespaced_pod(ns, _request_timeout=10).items]
            except Exception:  # the API server busy for a second: keep the last targets
                continue
            text = json.dumps(pod_targets(pods), indent=1)
            if text != last:
                tmp = self.root / "targets.json.tmp"
                tmp.write_text(text)
                os.replace(tmp, self.root / "targets.json")
                last = text

    def __enter__(self) -> HostPrometheus:
        (self.root / "targets.json").write_text("[]")
        (self.root / "prometheus.yml").write_text(yaml.safe_dump(self.config()))
        self.discovery = threading.Thread(target=self._discover, daemon=True)
        self.discovery.start()
        log = (self.root / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={self.root / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.root / 'data'}",
             f"--web.listen-address={BRIDGE_IP}:{self.port}",
             "--storage.tsdb.retention.time=2h"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        h.wait_for("Prometheus ready", self._ready, timeout=60, interval=0.5)
        return self

    def _ready(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, \
            (self.root / "prometheus.log").read_text()[-2000:]
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
            return resp.status == 200

    def __exit__(self, *exc: Any) -> None:
        self.stopping.set()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def targets(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v1/targets?state=active",
                                    timeout=10) as resp:
            return json.loads(resp.read())["data"]["activeTargets"]


class Locust:
    """`skserve loadtest` against `host` in the background, until `stop()`; the per-second
    history gives requests and failures in any window. `locustfile`: e.g. one whose users
    close their connection after every request (what kube-proxy's split needs)."""

    def __init__(self, host: str, out_dir: Path, users: int = 8,
                 locustfile: Path | None = None, duration: str = "30m"):
        self.out_dir = out_dir
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        argv = [h.SKSERVE, "loadtest", "--host", host, "--users", str(users), "--duration",
                duration, "--mix", "predict=1", "--report-dir", str(out_dir)]
        if locustfile:
            argv += ["--locustfile", str(locustfile)]
        self.proc = subprocess.Popen(argv, stdout=(out_dir / "loadtest.log").open("w"),
                                     stderr=subprocess.STDOUT, env=h.cluster_env(),
                                     start_new_session=True)  # its Locust child goes too

    def history(self) -> list[tuple[float, int, int]]:
        """(epoch s, total requests, total failures) once a second so far."""
        path = next(self.out_dir.rglob("*_stats_history.csv"), None)
        if path is None:
            return []
        rows = []
        with path.open() as fh:
            for r in csv.DictReader(fh):
                if r.get("Name") == "Aggregated":
                    rows.append((float(r["Timestamp"]), int(r["Total Request Count"]),
                                 int(r["Total Failure Count"])))
        return rows

    def running(self, min_ok: int = 50, timeout: float = 60) -> None:
        """Until `min_ok` requests have succeeded, and none failed in the last second."""
        def ok() -> bool:
            rows = self.history()
            return len(rows) >= 2 and rows[-1][1] - rows[-1][2] >= min_ok and \
                rows[-1][2] == rows[-2][2]

        h.wait_for("the load test to get answers", ok, timeout=timeout, interval=1)

    def window(self, t0: float, t1: float, wait_s: float = 30) -> tuple[int, int]:
        """(requests, failures) between epoch seconds t0 and t1 (to the second), once the
        history has reached t1 (a window read early would miss its last seconds)."""
        deadline = time.monotonic() + wait_s
        rows = self.history()
        while (not rows or rows[-1][0] < t1 + 1) and time.monotonic() < deadline:
            time.sleep(0.5)
            rows = self.history()
        before = [r for r in rows if r[0] <= t0] or [(t0, 0, 0)]
        upto = [r for r in rows if r[0] <= t1 + 1] or before
        return upto[-1][1] - before[-1][1], upto[-1][2] - before[-1][2]

    def stop(self) -> None:
        """Stop `skserve loadtest` and its Locust processes (each in a session of its own)."""
        import psutil

        try:
            tree = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            tree = []
        for pid in {self.proc.pid, *(p.pid for p in tree)}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGTERM)
        for p in tree:
            with contextlib.suppress(psutil.Error):
                p.wait(20)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def gateway_api_crds() -> list[dict[str, Any]]:
    """The standard-channel CRDs of the Gateway API release, read from the module zip the Go
    module proxy serves (it carries config/crd/). Only the zip is needed: `go mod download`
    fetches it into the module cache, then may refuse to extract it (v1.7.0's go.mod asks
    for a newer Go than this machine's), and still reports where the zip is."""
    import zipfile

    go = shutil.which("go") or "/usr/local/go/bin/go"
    out = h.run([go, "mod", "download", "-json", GATEWAY_API], timeout=300, check=False,
                env={**os.environ, "GOFLAGS": "-mod=mod", "GO111MODULE": "on"})
    try:
        info = json.loads(out.stdout)
    except ValueError:
        raise RuntimeError(f"go mod download {GATEWAY_API}: {out.stderr[-2000:]}") from None
    if not info.get("Zip") or not Path(info["Zip"]).exists():
        raise RuntimeError(f"go mod download {GATEWAY_API}: {info.get('Error') or out.stderr}")
    prefix = f"{GATEWAY_API}/config/crd/standard/"
    with zipfile.ZipFile(info["Zip"]) as z:
        texts = [z.read(n).decode() for n in sorted(z.namelist())
                 if n.startswith(prefix) and n.endswith(".yaml")]
    return [d for text in texts for d in yaml.safe_load_all(text)
            if d and d.get("kind") == "CustomResourceDefinition"]


def skserve(*args: str, timeout: float = 600, check: bool = True,
            ) -> subprocess.CompletedProcess[str]:
    """The skserve CLI with the cluster's kubeconfig."""
    return h.run([h.SKSERVE, *args], timeout=timeout, check=check)


def status(ns: str, release: str) -> dict[str, Any]:
    """`rollout status --json` with every event of the rollout (the default keeps 15: a
    handover or the first step would drop out of a long rollout's list)."""
    return json.loads(skserve("rollout", "status", "-n", ns, "--release", release,
                              "--json", "--events", "0", timeout=60).stdout)
