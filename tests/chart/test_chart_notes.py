"""NOTES.txt renders for the main configurations and says what is deployed.

`helm template` does not render NOTES.txt and `helm install --dry-run` needs a cluster, so the
test copies the chart and renders NOTES.txt through `tpl` inside a throwaway ConfigMap."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from chart_helpers import CHART, TWO_SLOTS, run_helm

WRAPPER = """apiVersion: v1
kind: ConfigMap
metadata:
  name: notes
data:
  notes: {{ tpl (.Files.Get "notes-under-test.txt") . | quote }}
"""


@pytest.fixture(scope="module")
def chart_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("chart") / "skserve"
    shutil.copytree(CHART, dst)
    shutil.copy(dst / "templates" / "NOTES.txt", dst / "notes-under-test.txt")
    (dst / "templates" / "zz-notes.yaml").write_text(WRAPPER)
    return dst


def notes(chart: Path, *sets: str, api_versions: tuple[str, ...] = ()) -> str:
    args = [
        "template",
        "demand",
        str(chart),
        "-n",
        "skserve",
        "--show-only",
        "templates/zz-notes.yaml",
    ]
    for s in sets:
        args += ["--set", s]
    for a in api_versions:
        args += ["--api-versions", a]
    proc = run_helm(args)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)["data"]["notes"]


def test_notes_default(chart_copy: Path) -> None:
    text = notes(chart_copy)
    assert "blue: model demand:20261123" in text
    assert "helm test demand -n skserve" in text
    assert "port-forward svc/demand-skserve 8080:80" in text
    assert "WARNING" not in text


def test_notes_canary_gateway(chart_copy: Path) -> None:
    sets = (
        *TWO_SLOTS,
        "rollout.strategy=canary",
        "rollout.router=gatewayAPI",
        "rollout.weights.active=90",
        "rollout.weights.preview=10",
    )
    text = notes(chart_copy, *sets)
    assert "weight 90%" in text and "weight 10%" in text
    assert "svc/demand-skserve-preview" in text
    assert "WARNING: rollout.router=gatewayAPI" in text
    with_crds = notes(chart_copy, *sets, api_versions=("gateway.networking.k8s.io/v1/HTTPRoute",))
    assert "WARNING" not in with_crds
