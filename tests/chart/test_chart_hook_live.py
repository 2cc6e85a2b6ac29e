"""The `helm test` hook's script, taken from the rendered chart, passes against a real
`skserve serve` (the `server` fixture of tests/conftest.py: BentoML, 2 workers, a model trained
on real data). Only the Service URL is swapped for the local server's; no cluster involved."""

from __future__ import annotations

import subprocess
import sys

import pytest
from chart_helpers import FULLNAME, find, render


@pytest.mark.slow
def test_helm_test_script_against_real_server(server) -> None:
    (pod,) = find(render(), "Pod")
    (c,) = pod["spec"]["containers"]
    assert c["command"] == ["python3", "-c"]
    script = c["args"][0]
    in_cluster = f"http://{FULLNAME}:80"
    assert in_cluster in script
    proc = subprocess.run(
        [sys.executable, "-c", script.replace(in_cluster, server.url)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("OK"), proc.stdout
    assert f"x-model-version: {server.model}" in proc.stdout
