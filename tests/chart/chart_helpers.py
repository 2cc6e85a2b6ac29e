"""Helpers for the Helm chart tests: tool paths, a cached `helm template` renderer, the matrix.

The tools come from `hack/install-tools.sh` (helm in .tools/bin, kubectl/kubernetes-validate in
.venv/bin, checkov in .tools/checkov). Tests that need a missing tool are skipped with that
instruction; nothing here talks to a cluster.
"""

from __future__ import annotations

import copy
import functools
import itertools
import os
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "skserve"
TOOLS_BIN = REPO / ".tools" / "bin"
VENV_BIN = REPO / ".venv" / "bin"
NAMESPACE = "skserve"
RELEASE = "r1"
FULLNAME = f"{RELEASE}-skserve"

INSTALL_HINT = "run hack/install-tools.sh first"


def tool(name: str) -> Path | None:
    for d in (TOOLS_BIN, VENV_BIN):
        p = d / name
        if p.exists() and os.access(p, os.X_OK):
            return p
    return None


def required_tool(name: str) -> Path:
    """The tool's path; a skip when it is missing (a failure under CI, where `make test`
    installs every tool first and a missing one means the installer broke)."""
    p = tool(name)
    if p is None:
        message = f"{name} not found in {TOOLS_BIN} or {VENV_BIN}: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return p


@pytest.fixture(scope="session")
def helm() -> Path:
    return required_tool("helm")


@pytest.fixture(scope="session")
def checkov() -> Path:
    return required_tool("checkov")


@pytest.fixture(scope="session")
def kubernetes_validate_cli() -> Path:
    return required_tool("kubernetes-validate")


def run_helm(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(required_tool("helm")), *args], capture_output=True, text=True,
                          timeout=60)


@functools.lru_cache(maxsize=256)
def _render(sets: tuple[str, ...], values_files: tuple[str, ...], release: str = RELEASE) -> str:
    args = ["template", release, str(CHART), "--namespace", NAMESPACE]
    for f in values_files:
        args += ["-f", f]
    for s in sets:
        args += ["--set", s]
    proc = run_helm(args)
    if proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def render_text(*sets: str, values_files: tuple[str, ...] = (), release: str = RELEASE) -> str:
    return _render(tuple(sets), tuple(values_files), release)


Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=256)
def _parsed(sets: tuple[str, ...], values_files: tuple[str, ...], release: str) -> list[dict]:
    return [d for d in yaml.load_all(_render(sets, values_files, release), Loader=Loader) if d]


def render(*sets: str, values_files: tuple[str, ...] = (), release: str = RELEASE) -> list[dict]:
    """`helm template` the chart with --set flags; return the objects (test hooks included).

    Cached per arguments; each call gets its own copy, so tests may mutate what they get."""
    return copy.deepcopy(_parsed(tuple(sets), tuple(values_files), release))


def find(objs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objs: list[dict], kind: str, name: str) -> dict:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, got {len(found)}"
    return found[0]


def batch_job(objs: list[dict]) -> dict:
    """The Job manifest shipped in the batch ConfigMap (the batch CLI's template)."""
    (cm,) = [o for o in find(objs, "ConfigMap") if "job.yaml" in o.get("data", {})]
    return yaml.safe_load(cm["data"]["job.yaml"])


# The rollout settings of a two-slot release: blue live, green under test.
TWO_SLOTS = ("slots.green.enabled=true", "rollout.previewSlot=green")


def case_sets(
    strategy: str,
    router: str,
    autoscaling: bool,
    batch: bool,
    monitoring: bool,
) -> tuple[str, ...]:
    sets = [
        *TWO_SLOTS,
        f"rollout.strategy={strategy}",
        f"rollout.router={router}",
        f"slotDefaults.autoscaling.enabled={str(autoscaling).lower()}",
        f"batch.enabled={str(batch).lower()}",
        f"monitoring.serviceMonitor.enabled={str(monitoring).lower()}",
        f"monitoring.podMonitor.enabled={str(monitoring).lower()}",
        f"monitoring.prometheusRule.enabled={str(monitoring).lower()}",
    ]
    if strategy == "canary":
        sets += ["rollout.weights.active=80", "rollout.weights.preview=20"]
    if router == "gatewayAPI" and monitoring:
        sets += [
            "rollout.mirror.enabled=true",
            "rollout.mirror.slot=green",
            "rollout.mirror.percent=50",
        ]
    return tuple(sets)


MATRIX = [
    pytest.param(
        case_sets(*c),
        id="-".join(
            [
                c[0],
                c[1],
                "hpa" if c[2] else "nohpa",
                "batch" if c[3] else "nobatch",
                "mon" if c[4] else "nomon",
            ]
        ),
    )
    for c in itertools.product(
        ("blueGreen", "canary"),
        ("service", "gatewayAPI", "ingressNginx", "haproxy"),
        (True, False),
        (True, False),
        (True, False),
    )
] + [
    # the in-cluster load test (templates of the loadtest part) on top of a full canary
    pytest.param(
        (*case_sets("canary", "gatewayAPI", True, True, True), "loadtest.enabled=true"),
        id="canary-gatewayAPI-hpa-batch-mon-loadtest",
    ),
    # the rollout controller in the cluster, driving the in-cluster HAProxy
    pytest.param(
        (*case_sets("canary", "haproxy", True, True, True),
         "rolloutController.deployment.enabled=true",
         "rolloutController.deployment.prometheusUrl=http://prometheus.monitoring:9090"),
        id="canary-haproxy-hpa-batch-mon-controller",
    ),
]
