"""`helm test`'s pod script, run on this machine against real `skserve serve` servers: it
must pass for a regressor and for a classifier (an imported model deploys like a trained
one), since it is what tells a user their release works."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from chart_helpers import one, render

pytestmark = pytest.mark.slow


def pod_script(base: str) -> str:
    """The rendered test pod's Python, talking to `base` instead of the release's Service."""
    pod = one(render(), "Pod", "r1-skserve-test-predict")
    (script,) = pod["spec"]["containers"][0]["args"]
    script, n = re.subn(r'^base = ".*"$', f"base = {base!r}", script, flags=re.M)
    assert n == 1, script
    return script


@pytest.mark.parametrize("which", ["server", "classifier_server"])
def test_helm_test_pod_passes_against_a_served_model(which: str, request) -> None:
    server = request.getfixturevalue(which)
    out = subprocess.run([sys.executable, "-c", pod_script(server.url)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1] == "OK", out.stdout
    answer = "'prediction':" if which == "server" else "'probabilities':"
    assert answer in out.stdout, out.stdout
