"""`skserve up` and `skserve rollout` fail clearly when what they need is missing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import SKSERVE


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SKSERVE, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_up_without_haproxy_says_how_to_install_it(tmp_path):
    bin_dir = str(Path(SKSERVE).parent)
    out = run("up", "--slot", "blue=demand:v1", "--dir", str(tmp_path), env={"PATH": bin_dir})
    assert out.returncode == 5, out.stderr
    assert "haproxy and prometheus not found" in out.stderr
    assert "apt-get install" in out.stderr and "Traceback" not in out.stderr


def test_up_rejects_an_unknown_slot(tmp_path):
    out = run("up", "--slot", "red=demand:v1", "--dir", str(tmp_path))
    assert out.returncode == 2 and "slot must be one of" in out.stderr
    out = run("up", "--slot", "blue", "--dir", str(tmp_path))
    assert out.returncode == 2 and "SLOT=MODEL" in out.stderr


def test_rollout_without_a_stack_names_the_fix(tmp_path):
    for args in (["status"], ["start", "--to", "demand:v1"], ["abort"]):
        out = run("rollout", *args, "--local", "--dir", str(tmp_path))
        assert out.returncode == 5, out.stderr
        assert "skserve up --slot" in out.stderr and "Traceback" not in out.stderr


def test_down_with_nothing_running_is_fine(tmp_path):
    out = run("down", "--dir", str(tmp_path))
    assert out.returncode == 0 and "nothing running" in out.stderr


def test_analysis_file_replaces_the_default_checks(tmp_path):
    import argparse

    import pytest

    from skserve.errors import InvalidInput
    from skserve.rollout.cli import _templates

    path = tmp_path / "analysis.yaml"
    path.write_text(
        "- {name: success, kind: success_rate, threshold: 0.995, min_samples: 200}\n"
        "- name: cpu\n  kind: promql\n"
        "  query: sum(rate(process_cpu_seconds_total{{{canary}}}[{window}]))\n"
        "  success_condition: '< 0.8'\n  interval_s: 30\n")
    args = argparse.Namespace(no_analysis=False, analysis=path)
    got = _templates(args, None, "blue")
    assert [t["name"] for t in got] == ["success", "cpu"]
    assert got[0]["min_samples"] == 200 and got[1]["interval_s"] == 30
    path.write_text("- {name: x, kind: success_rate, threshold: 0.9, colour: red}\n")
    with pytest.raises(InvalidInput, match=r"analysis.yaml, template 1: .*unknown field"):
        _templates(args, None, "blue")
    path.write_text("name: not a list\n")
    with pytest.raises(InvalidInput, match="a list of analysis templates"):
        _templates(args, None, "blue")


def test_cluster_target_without_a_kubeconfig_is_one_clear_line(tmp_path):
    """Without --local the target is a release on a cluster: no kubeconfig is exit 5, one
    line naming what is missing."""
    env = {"KUBECONFIG": str(tmp_path / "absent"), "HOME": str(tmp_path),
           "KUBERNETES_SERVICE_HOST": ""}
    out = run("rollout", "status", "--release", "demo", env=env)
    assert out.returncode == 5, out.stderr
    assert "Kubernetes configuration" in out.stderr and "Traceback" not in out.stderr
    out = run("rollout", "controller", "--local", "--dir", str(tmp_path), env=env)
    assert out.returncode == 2 and "runs against a cluster" in out.stderr
