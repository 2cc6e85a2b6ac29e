"""Small helpers for the stack tests: bounded commands, bounded waits, the cluster's tools.

Everything here talks to the local cluster made by `make cluster-up` through its own
binaries (.cluster/bin/kubectl, .cluster/bin/ctr) and the project's helm (.tools/bin/helm).
Every call has a timeout; every wait has a deadline and says what it waited for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
KUBECONFIG = Path(os.environ.get("SKSERVE_KUBECONFIG", REPO / ".cluster" / "kubeconfig"))
REPORT_DIR = REPO / "reports" / "e2e"
VENV_BIN = Path(sys.executable).parent
SKSERVE = str(VENV_BIN / "skserve")

T = TypeVar("T")


def _tool(env: str, *candidates: Path | str) -> str:
    for c in (os.environ.get(env), *candidates):
        if c and os.access(str(c), os.X_OK):
            return str(c)
    found = shutil.which(Path(str(candidates[-1])).name)
    if not found:
        raise FileNotFoundError(f"{env}: none of {candidates} is executable")
    return found


def kubectl_bin() -> str:
    return _tool("KUBECTL", REPO / ".cluster" / "bin" / "kubectl", VENV_BIN / "kubectl")


def helm_bin() -> str:
    return _tool("HELM", REPO / ".tools" / "bin" / "helm", "helm")


def ctr_bin() -> str:
    return _tool("CTR", REPO / ".cluster" / "bin" / "ctr")


def cluster_env() -> dict[str, str]:
    env = dict(os.environ)
    env["KUBECONFIG"] = str(KUBECONFIG)
    return env


def require_cluster() -> None:
    """Skip when the local cluster's kubeconfig is absent (fail in CI, which sets
    SKSERVE_E2E_REQUIRE_CLUSTER after `make cluster-up`); else wait for its API server."""
    import pytest

    if not KUBECONFIG.exists():
        message = f"{KUBECONFIG} is absent: start the local cluster with `make cluster-up`"
        if os.environ.get("SKSERVE_E2E_REQUIRE_CLUSTER"):
            pytest.fail(message)
        pytest.skip(message)
    kubectl("get", "--raw", "/readyz", timeout=30)


def log(msg: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd: Sequence[str], *, timeout: float, check: bool = True, input: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command with a deadline; on failure raise with its stdout/stderr tail."""
    proc = subprocess.run(list(cmd), input=input, capture_output=True, text=True,
                          timeout=timeout, env=env or cluster_env(), cwd=REPO)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}\n"
                           f"stdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}")
    return proc


def kubectl(*args: str, timeout: float = 60, check: bool = True,
            input: str | None = None) -> str:
    return run([kubectl_bin(), "--kubeconfig", str(KUBECONFIG), *args], timeout=timeout,
               check=check, input=input).stdout


def kjson(*args: str, timeout: float = 60) -> dict[str, Any]:
    return json.loads(kubectl(*args, "-o", "json", timeout=timeout))


def helm(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([helm_bin(), "--kubeconfig", str(KUBECONFIG), *args], timeout=timeout,
               check=check)


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float,
             interval: float = 2.0) -> tuple[T, float]:
    """Call `probe` until it returns something truthy; (that value, seconds taken).
    Probe exceptions count as "not yet" (the last one is quoted on timeout)."""
    start = time.monotonic()
    last_exc: BaseException | None = None
    while True:
        try:
            value = probe()
            if value:
                return value, time.monotonic() - start
        except Exception as exc:
            last_exc = exc
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}"
                               + (f" (last error: {last_exc})" if last_exc else ""))
        time.sleep(interval)


def http(method: str, url: str, body: Any = None,
         timeout: float = 10) -> tuple[int, dict[str, str], Any]:
    """One HTTP request; (status, lower-cased headers, parsed JSON body or text)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, headers, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, headers, raw = err.code, dict(err.headers), err.read()
    text = raw.decode(errors="replace")
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text
    return status, {k.lower(): v for k, v in headers.items()}, parsed


def deployment_replicas(namespace: str, name: str) -> tuple[int, int, int]:
    """(desired, ready, updated) of a Deployment."""
    dep = kjson("-n", namespace, "get", "deployment", name, timeout=20)
    spec, status = dep["spec"], dep.get("status", {})
    return (int(spec.get("replicas") or 0), int(status.get("readyReplicas") or 0),
            int(status.get("updatedReplicas") or 0))


def rollout_done(namespace: str, name: str) -> bool:
    """The Deployment's current template is fully rolled out and no old pod is left."""
    dep = kjson("-n", namespace, "get", "deployment", name, timeout=20)
    spec, status = dep["spec"], dep.get("status", {})
    want = int(spec.get("replicas") or 0)
    return (status.get("observedGeneration", 0) >= dep["metadata"]["generation"]
            and int(status.get("updatedReplicas") or 0) == want
            and int(status.get("readyReplicas") or 0) == want
            and int(status.get("replicas") or 0) == want
            and int(status.get("availableReplicas") or 0) == want)


def sample_row(metadata: dict[str, Any]) -> dict[str, Any]:
    """A valid /predict row from GET /metadata (each feature at its training minimum)."""
    row: dict[str, Any] = {}
    for f in metadata["features"]:
        if f.get("categories"):
            row[f["name"]] = f["categories"][0]
        elif f.get("min") is not None:
            row[f["name"]] = f["min"]
        else:
            row[f["name"]] = 0
    return row


def wait_deployment_ready(namespace: str, name: str, timeout: float = 300) -> None:
    """Until every replica of the Deployment is ready; on timeout, log the namespace's
    diagnostics before raising."""
    try:
        wait_for(f"{name} Ready", lambda: rollout_done(namespace, name), timeout=timeout)
    except TimeoutError:
        log(diagnostics(namespace))
        raise


def build_and_import(tag: str) -> tuple[str, dict[str, Any]]:
    """Build a model's serving image offline (hack/image), archive it and import it into the
    cluster's containerd; its reference and the seconds each step took. The model comes from
    the test store ($BENTOML_HOME, set by tests/conftest.py)."""
    name = tag.replace(":", "-")
    t0 = time.monotonic()
    run(["bash", "hack/image/build.sh", tag], timeout=900, env=dict(os.environ))
    t1 = time.monotonic()
    run(["bash", "hack/image/archive.sh", tag], timeout=600, env=dict(os.environ))
    t2 = time.monotonic()
    archive = REPO / "build" / f"skserve-{name}.oci.tar"
    assert archive.exists(), f"archive.sh wrote no {archive}"
    run([ctr_bin(), "images", "import", str(archive)], timeout=600)
    t3 = time.monotonic()
    ref = f"localhost/skserve:{name}"
    listed = run([ctr_bin(), "images", "ls", "-q"], timeout=60).stdout.split()
    assert any(x in (ref, f"docker.io/{ref}") for x in listed), (ref, listed)
    return ref, {"build_s": round(t1 - t0, 1), "archive_s": round(t2 - t1, 1),
                 "import_s": round(t3 - t2, 1), "archive_mb": round(archive.stat().st_size / 2**20)}


def diagnostics(namespace: str) -> str:
    """What to look at when something in the namespace did not come up."""
    parts = []
    for args in (("get", "all,pvc,events", "-o", "wide"),
                 ("describe", "pods"), ("logs", "-l", "app.kubernetes.io/component=server",
                                        "--tail", "30", "--all-containers")):
        out = run([kubectl_bin(), "--kubeconfig", str(KUBECONFIG), "-n", namespace, *args],
                  timeout=30, check=False)
        parts.append(f"$ kubectl {' '.join(args)}\n{out.stdout[-4000:]}{out.stderr[-1000:]}")
    return "\n".join(parts)
