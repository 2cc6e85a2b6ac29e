"""Smoke tests for the local cluster made by `make cluster-up` (hack/cluster/up.sh).

They need the cluster running (kubeconfig at .cluster/kubeconfig) and are skipped otherwise
(or fail, when SKSERVE_E2E_REQUIRE_CLUSTER is set, as CI should after make cluster-up).
They use only the locally built image localhost/skserve/busybox:local (imagePullPolicy: Never).
Run: pytest -m e2e tests/e2e/test_cluster.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
KUBECONFIG = Path(os.environ.get("SKSERVE_KUBECONFIG", REPO / ".cluster" / "kubeconfig"))
IMAGE = "localhost/skserve/busybox:local"


def _kubectl_binary() -> str:
    for candidate in (os.environ.get("KUBECTL"), str(REPO / ".cluster" / "bin" / "kubectl")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("kubectl")
    if not found:
        pytest.skip("kubectl not found (run make cluster-up)")
    return found


def kubectl(*args: str, input: str | None = None, check: bool = True, timeout: int = 120) -> str:
    cmd = [_kubectl_binary(), "--kubeconfig", str(KUBECONFIG), *args]
    proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def kubectl_json(*args: str) -> dict:
    return json.loads(kubectl(*args, "-o", "json"))


def eventually(fn, timeout: float, interval: float = 2.0, what: str = "condition"):
    """Call fn until it returns a truthy value (its errors are retried), up to timeout."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except (AssertionError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: {last}")


def _no_cluster(reason: str) -> None:
    # CI sets SKSERVE_E2E_REQUIRE_CLUSTER=1 after make cluster-up: a missing cluster must fail
    if os.environ.get("SKSERVE_E2E_REQUIRE_CLUSTER"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module", autouse=True)
def cluster_up():
    if not KUBECONFIG.exists():
        _no_cluster(f"no cluster: {KUBECONFIG} missing (run make cluster-up)")
    try:
        kubectl("get", "--raw", "/readyz", timeout=15)
    except (AssertionError, subprocess.TimeoutExpired) as exc:
        _no_cluster(f"cluster not reachable: {exc}")


@pytest.fixture(scope="module")
def namespace():
    name = f"e2e-cluster-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    # the namespace's default service account is made asynchronously by the controller-manager
    eventually(lambda: kubectl("-n", name, "get", "serviceaccount", "default"), 60, 1, "default SA")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def apply(manifest: dict | list, namespace: str) -> None:
    items = manifest if isinstance(manifest, list) else [manifest]
    doc = {"apiVersion": "v1", "kind": "List", "items": items}
    kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(doc))


@pytest.fixture(scope="module")
def web(namespace):
    """A 2-replica busybox httpd Deployment behind a ClusterIP Service named `web`."""
    labels = {"app": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "httpd",
                            "image": IMAGE,
                            "imagePullPolicy": "Never",
                            "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
                            "ports": [{"containerPort": 8080}],
                            "readinessProbe": {
                                "httpGet": {"path": "/", "port": 8080},
                                "periodSeconds": 2,
                            },
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "type": "ClusterIP",
            "selector": labels,
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
    }
    apply([deployment, service], namespace)
    kubectl("-n", namespace, "rollout", "status", "deployment/web", "--timeout=180s", timeout=200)
    return namespace


def test_node_ready():
    nodes = kubectl_json("get", "nodes")["items"]
    assert nodes, "no nodes registered"
    for node in nodes:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", (
            f"{node['metadata']['name']} not Ready: {ready}"
        )


def test_server_has_required_apis():
    groups = kubectl("api-versions")
    for gv in ("autoscaling/v2", "batch/v1", "apps/v1", "metrics.k8s.io/v1beta1"):
        assert gv in groups.split(), f"{gv} not served"


def test_deployment_pods_ready(web):
    pods = kubectl_json("-n", web, "get", "pods", "-l", "app=web")["items"]

    def is_ready(pod: dict) -> bool:
        conditions = pod["status"].get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    ready = [p for p in pods if is_ready(p)]
    assert len(ready) == 2, f"expected 2 ready pods, got {len(ready)}"
    for pod in ready:
        assert pod["status"].get("podIP"), "ready pod has no IP"


def test_clusterip_service_routes_to_pod(web):
    svc = kubectl_json("-n", web, "get", "service", "web")
    ip = svc["spec"]["clusterIP"]

    def fetch():
        with urllib.request.urlopen(f"http://{ip}:80/", timeout=5) as resp:  # via kube-proxy
            return resp.read().decode()

    body = eventually(fetch, 60, 2, f"http://{ip}/ through kube-proxy")
    assert "skserve-busybox" in body


def _run_job(namespace: str, name: str, script: str, completions: int, indexed: bool) -> dict:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "completions": completions,
            "parallelism": completions,
            "backoffLimit": 2,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "main",
                            "image": IMAGE,
                            "imagePullPolicy": "Never",
                            "command": ["sh", "-c", script],
                        }
                    ],
                }
            },
        },
    }
    if indexed:
        job["spec"]["completionMode"] = "Indexed"
    apply(job, namespace)
    kubectl(
        "-n",
        namespace,
        "wait",
        "--for=condition=complete",
        f"job/{name}",
        "--timeout=180s",
        timeout=200,
    )
    return kubectl_json("-n", namespace, "get", "job", name)


def test_indexed_job_completes(namespace):
    script = 'echo "index=$JOB_COMPLETION_INDEX"; test -n "$JOB_COMPLETION_INDEX"'
    job = _run_job(namespace, "indexed", script, completions=3, indexed=True)
    assert job["status"].get("succeeded") == 3
    assert job["status"].get("completedIndexes") == "0-2"
    logs = kubectl("-n", namespace, "logs", "-l", "job-name=indexed", "--tail=5")
    assert sorted(logs.split()) == ["index=0", "index=1", "index=2"]


def test_pod_reaches_service_by_dns_name(web):
    try:
        kubectl("-n", "kube-system", "get", "service", "kube-dns")
    except AssertionError:
        pytest.skip("cluster has no DNS (CoreDNS not built)")
    job = _run_job(
        web,
        "dns-client",
        # Debian's busybox-static wget segfaults, so speak HTTP with nc
        'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 5 web 80 | grep skserve-busybox',
        completions=1,
        indexed=False,
    )
    assert job["status"].get("succeeded") == 1


def test_metrics_api_returns_node_and_pod_usage(web):
    def node_metrics():
        data = json.loads(kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes"))
        return [i for i in data.get("items", []) if i.get("usage", {}).get("cpu")]

    items = eventually(node_metrics, 150, 5, "node metrics from metrics-server")
    assert items[0]["usage"]["memory"]
    top = eventually(lambda: kubectl("top", "node", "--no-headers"), 60, 5, "kubectl top node")
    assert top.strip()

    def pod_metrics():
        path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{web}/pods"
        data = json.loads(kubectl("get", "--raw", path))
        return data.get("items")

    assert eventually(pod_metrics, 150, 5, "pod metrics from metrics-server")


def test_hpa_reads_resource_metrics(web):
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    }
    apply(hpa, web)

    def current_cpu():
        status = kubectl_json("-n", web, "get", "hpa", "web").get("status", {})
        for metric in status.get("currentMetrics") or []:
            current = metric.get("resource", {}).get("current", {})
            if "averageUtilization" in current:
                return current
        return None

    current = eventually(current_cpu, 180, 5, "HPA currentMetrics from the metrics API")
    assert current["averageUtilization"] >= 0
