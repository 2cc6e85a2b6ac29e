"""The longest names the chart allows, created for real: the API server accepts every object,
and the controllers derive whole names from them (ReplicaSets, pods, an Indexed Job's pod
hostnames), on the local cluster (`make cluster-up`).

The release is 53 characters (Helm's maximum) and both slots 20 (the schema's maximum). Pods
are kept off the node (a nodeSelector no node has; the batch volume has no provisioner), so
nothing is pulled or run: what is checked is what the API server and the controllers name.
The `helm test` pod, a hook, is created with a server-side dry run. A Job one character past
the budget is refused by the same API server, so the check is not vacuous.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e import helpers as h

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CHART = h.REPO / "helm" / "skserve"
RELEASE = "demand-forecast-production-eu-west-nightly-batch-2026"
SLOTS = ("demand-2026q4-blue-a", "demand-2026q4-green1")
NO_NODE = {"skserve.io/e2e-names": "no-such-node"}
INSTANCES = 12


@pytest.fixture(scope="module")
def cluster() -> None:
    h.require_cluster()


@pytest.fixture(scope="module")
def release(cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    ns = f"skserve-names-{uuid.uuid4().hex[:6]}"
    small = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m",
                                                                      "memory": "64Mi"}}
    slot = {"enabled": True, "autoscaling": {"enabled": True, "minReplicas": 1}}
    values = {
        "slots": {"blue": {"enabled": False},
                  SLOTS[0]: {**slot, "model": "demand:v1", "modelVersion": "demand-v1"},
                  SLOTS[1]: {**slot, "model": "demand:v2", "modelVersion": "demand-v2"}},
        "slotDefaults": {"nodeSelector": NO_NODE, "resources": small,
                         "image": {"pullPolicy": "Never"}},
        "rollout": {"strategy": "canary", "router": "ingressNginx", "activeSlot": SLOTS[0],
                    "previewSlot": SLOTS[1], "weights": {"active": 90, "preview": 10}},
        "loadtest": {"enabled": True, "workers": 1, "nodeSelector": NO_NODE,
                     "master": {"resources": small}, "worker": {"resources": small}},
        "batch": {"enabled": True, "resources": small},
    }
    path = tmp_path_factory.mktemp("names") / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    h.kubectl("create", "namespace", ns)
    try:
        h.helm("install", RELEASE, str(CHART), "-n", ns, "-f", str(path), timeout=120)
        yield {"ns": ns}
    finally:
        h.helm("uninstall", RELEASE, "-n", ns, "--timeout", "60s", timeout=120, check=False)
        h.kubectl("delete", "namespace", ns, "--wait=false", timeout=60, check=False)


def _items(ns: str, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
    args = ["-n", ns, "get", kind] + (["-l", selector] if selector else [])
    return h.kjson(*args, timeout=30)["items"]


def _owned(items: list[dict[str, Any]], owner: str) -> list[dict[str, Any]]:
    return [i for i in items
            if any(r["name"] == owner for r in i["metadata"].get("ownerReferences", []))]


def test_longest_names_are_accepted_and_derived_whole(release: dict[str, Any]) -> None:
    ns = release["ns"]
    deployments = {d["metadata"]["name"] for d in _items(ns, "deployments")}
    assert len(deployments) == 3  # two slots and the load test's workers

    def derived() -> dict[str, list[dict[str, Any]]] | None:
        replicasets, pods = _items(ns, "replicasets"), _items(ns, "pods")
        out = {d: _owned(replicasets, d) for d in deployments}
        if not all(out.values()):
            return None
        for rs in [r for rss in out.values() for r in rss]:
            if not _owned(pods, rs["metadata"]["name"]):
                return None
        out["pods"] = pods
        return out

    found, _ = h.wait_for("ReplicaSets and pods of every Deployment", derived, timeout=120)
    names = []
    for deployment in deployments:
        for rs in found[deployment]:
            rs_name = rs["metadata"]["name"]
            assert rs_name == f"{deployment}-{rs['metadata']['labels']['pod-template-hash']}"
            for pod in _owned(found["pods"], rs_name):
                assert pod["metadata"]["name"].startswith(rs_name + "-")
                assert len(pod["metadata"]["name"]) == len(rs_name) + 6  # whole, not cut
                names.append(pod["metadata"]["name"])
    assert names and max(len(n) for n in names) <= 63
    (master,) = [j["metadata"]["name"] for j in _items(ns, "jobs")]
    master_pods, _ = h.wait_for("the load test master's pod",
                                lambda: _owned(_items(ns, "pods"), master), timeout=120)
    assert all(p["metadata"]["name"].startswith(master + "-")
               and len(p["metadata"]["name"]) == len(master) + 6 for p in master_pods)
    for svc in _items(ns, "services"):
        assert len(svc["metadata"]["name"]) <= 63 and svc["metadata"]["name"][0].isalpha()
    h.log(f"longest names: pod {max(names, key=len)} ({max(map(len, names))})")


def test_indexed_batch_job_gets_whole_pod_hostnames(release: dict[str, Any]) -> None:
    ns = release["ns"]
    out = h.run([h.SKSERVE, "batch", "invoke", "-n", ns, "--release", RELEASE, "--input",
                 "a.csv", "--instance-count", str(INSTANCES), "--json"], timeout=60).stdout
    name = json.loads(out)["name"]
    job = h.kjson("-n", ns, "get", "job", name)
    assert job["spec"]["completionMode"] == "Indexed"

    def all_pods() -> list[dict[str, Any]] | None:
        pods = _items(ns, "pods", f"batch.kubernetes.io/job-name={name}")
        return pods if len(pods) == INSTANCES else None

    pods, _ = h.wait_for(f"{INSTANCES} pods of {name}", all_pods, timeout=120)
    for pod in pods:
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert pod["spec"]["hostname"] == f"{name}-{index}"
        assert pod["metadata"]["name"].startswith(f"{name}-{index}-")
        assert len(pod["metadata"]["name"]) == len(name) + len(index) + 7 <= 63
    h.log(f"batch Job {name} ({len(name)}): last hostname {name}-{INSTANCES - 1}")
    listing = h.run([h.SKSERVE, "batch", "list", "-n", ns, "--release", RELEASE], timeout=60)
    header, row = listing.stdout.splitlines()
    assert header.split()[:2] == ["NAME", "STATE"] and row.split()[:2] == [name, "Running"]
    missing = h.run([h.SKSERVE, "batch", "status", "no-such-job", "-n", ns, "--release",
                     RELEASE], timeout=60, check=False)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert '"no-such-job" not found' in missing.stderr


def test_a_job_past_the_budget_is_refused_by_the_api_server(release: dict[str, Any]) -> None:
    """The negative control: the issue's case, a 62-character Indexed Job with 2 indexes."""
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j" * 62},
           "spec": {"completionMode": "Indexed", "completions": 2, "template": {"spec": {
               "restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}}
    proc = h.run([h.kubectl_bin(), "--kubeconfig", str(h.KUBECONFIG), "-n", release["ns"],
                  "create", "--dry-run=server", "-f", "-"], input=json.dumps(job), timeout=30,
                 check=False)
    assert proc.returncode != 0, proc.stdout
    assert f"invalid DNS label: {'j' * 62}-1" in proc.stderr, proc.stderr


def test_test_hook_pod_is_accepted(release: dict[str, Any]) -> None:
    hooks = h.helm("get", "hooks", RELEASE, "-n", release["ns"], timeout=60).stdout
    (pod,) = [d for d in yaml.safe_load_all(hooks) if d and d["kind"] == "Pod"]
    assert len(pod["metadata"]["name"]) <= 63
    h.kubectl("-n", release["ns"], "create", "--dry-run=server", "-f", "-",
              input=json.dumps(pod), timeout=30)

