"""hack/install-tools.sh is idempotent (no download, no pip) when the tools are there, and
the tools are the pinned versions (helm 3 from the v34 CDK wheel, not helm 4)."""

from __future__ import annotations

import subprocess

import pytest
from chart_helpers import REPO, tool


def test_install_tools_is_idempotent_and_quick() -> None:
    if not all(tool(t) for t in ("helm", "kubectl", "kubernetes-validate", "checkov")):
        pytest.skip("tools not installed yet; this test checks the already-installed path")
    proc = subprocess.run(
        ["bash", str(REPO / "hack" / "install-tools.sh")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("already") == 3, proc.stderr
    assert "pip install" not in proc.stderr and "downloading" not in proc.stderr
    # (no timing assertion: the machines are shared; a no-op run measured ~3 s)
    assert (REPO / ".tools" / ".gitignore").read_text().strip() == "*"


def test_helm_is_3_19() -> None:
    helm = tool("helm")
    if helm is None:
        pytest.skip("helm not installed")
    out = subprocess.run(
        [str(helm), "version", "--template", "{{.Version}}"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert out.startswith("v3.19."), out


def test_kubectl_client() -> None:
    kubectl = tool("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    proc = subprocess.run(
        [str(kubectl), "version", "--client"], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0 and "v1.37.1" in proc.stdout, proc.stdout + proc.stderr
