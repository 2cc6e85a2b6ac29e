"""The extras split: each command runs with only its extra installed, and says which extra to
install when it is missing.

"Only its extra installed" is simulated in this one venv (which has every extra): a
`sitecustomize` on PYTHONPATH hides every top-level import whose distribution the chosen
extras do not pull in (their requirement closure, read from the installed metadata) from
the import system, in the command's process and in every Python process it starts
(BentoML's workers, Locust). The real installs are covered too: the image holds
`skserve[serve]` alone (tests/image).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from skserve.extras import PROVIDED_BY

REPO = Path(__file__).resolve().parent.parent
SKSERVE = str(Path(sys.executable).with_name("skserve"))
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _name(dist: str) -> str:
    return dist.lower().replace("_", "-").replace(".", "-")


@cache
def _imports_by_dist() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for module, dists in md.packages_distributions().items():
        for dist in dists:
            out.setdefault(_name(dist), set()).add(module)
    return out


def closure(extras: tuple[str, ...]) -> set[str]:
    """Every distribution `pip install skserve[extras]` installs (from installed metadata)."""
    seen: set[str] = set()
    todo: list[tuple[str, frozenset[str]]] = [("skserve", frozenset(extras))]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        dist, wanted = todo.pop()
        if (dist, wanted) in done:
            continue
        done.add((dist, wanted))
        seen.add(dist)
        for line in md.requires(dist) or []:
            req = Requirement(line)
            env_extras = wanted or {""}
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in env_extras):
                continue
            todo.append((_name(req.name), frozenset(req.extras)))
    return seen


def blocked_imports(extras: tuple[str, ...]) -> list[str]:
    """Top-level imports of installed distributions that `skserve[extras]` would not have."""
    allowed = closure(extras)
    keep = set().union(*(_imports_by_dist().get(d, set()) for d in allowed))
    blocked = set().union(*(m for d, m in _imports_by_dist().items() if d not in allowed))
    return sorted(blocked - keep - {"skserve", "_distutils_hack", "__editable__"}
                  - set(sys.stdlib_module_names))


# The path finder no longer finds the blocked imports: `import x` raises ModuleNotFoundError,
# `importlib.util.find_spec("x")` is None and `x` is not in sys.modules, as when x is not
# installed (a None in sys.modules would differ: BentoML probes sys.modules for FastAPI).
SITECUSTOMIZE = """\
import sys
from importlib.machinery import PathFinder

BLOCKED = {blocked!r}


class NotInstalledFinder(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        return super().find_spec(name, path, target)


sys.meta_path[:] = [NotInstalledFinder if f is PathFinder else f for f in sys.meta_path]
"""


def env_with_only(extras: tuple[str, ...], tmp_path: Path) -> dict[str, str]:
    site = tmp_path / f"only-{'-'.join(extras) or 'core'}"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(
        blocked=frozenset(blocked_imports(extras))))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}


def skserve(args: list[str], env: dict[str, str], timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SKSERVE, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_the_table_of_imports_matches_pyproject() -> None:
    """Each distribution an extra lists has one of its imports in skserve.extras' table,
    under that extra, and the table names nothing else."""
    imports = _imports_by_dist()
    listed: dict[str, str] = {}
    for extra, reqs in PYPROJECT["optional-dependencies"].items():
        if extra == "dev":
            continue
        for line in reqs:
            dist = _name(Requirement(line).name)
            if dist == "skserve":
                continue
            named = [m for m in imports[dist] if m in PROVIDED_BY]
            assert len(named) == 1, (dist, sorted(imports[dist]))
            listed[named[0]] = extra
    assert listed == PROVIDED_BY


def test_the_core_is_small() -> None:
    core = closure(())
    assert core == {"skserve", "pyyaml"}, core
    assert len(closure(("serve",))) > 20  # bentoml's tree: the simulation walks requirements


def test_the_simulation_blocks_what_an_extra_does_not_bring(tmp_path: Path) -> None:
    env = env_with_only(("kube",), tmp_path)
    probe = ("import importlib.util as u; print(u.find_spec('kubernetes') is not None, "
             "u.find_spec('pandas') is not None, u.find_spec('yaml') is not None)")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out.split() == ["True", "False", "True"]


CORE_ONLY = [
    (["serve"], "serve"),
    (["models"], "serve"),
    (["train"], "serve"),
    (["import", "m.joblib", "--name", "m"], "serve"),
    (["batch", "run", "--input", "in", "--output", "out"], "serve"),
    (["batch", "list", "-n", "ns"], "kube"),
    (["loadtest", "--host", "http://127.0.0.1:9"], "loadtest"),
    (["up", "--slot", "blue=demand:v1"], "serve"),
]


@pytest.mark.parametrize(("args", "extra"), CORE_ONLY, ids=lambda a: " ".join(a)
                         if isinstance(a, list) else a)
def test_core_only_commands_name_their_extra(args: list[str], extra: str,
                                             tmp_path: Path) -> None:
    proc = skserve(args, env_with_only((), tmp_path))
    assert proc.returncode == 5, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # one line, no traceback
    assert f"needs the '{extra}' extra" in lines[0]
    assert f"pip install 'skserve[{extra}]'" in lines[0]


def test_core_only_help_works(tmp_path: Path) -> None:
    env = env_with_only((), tmp_path)
    for args in (["--help"], ["serve", "--help"], ["batch", "invoke", "--help"],
                 ["loadtest", "--help"], ["rollout", "start", "--help"]):
        proc = skserve(args, env)
        assert proc.returncode == 0 and proc.stdout.startswith("usage: skserve"), proc.stderr


def test_serve_alone_names_the_extras_of_other_jobs(tmp_path: Path) -> None:
    env = env_with_only(("serve",), tmp_path)
    proc = skserve(["train"], env)  # the reference data
    assert proc.returncode == 5 and "needs the 'data' extra" in proc.stderr, proc.stderr
    (tmp_path / "m.skops").write_bytes(b"not read")
    proc = skserve(["import", str(tmp_path / "m.skops"), "--name", "m"], env)
    assert proc.returncode == 5 and "needs the 'train' extra" in proc.stderr, proc.stderr
    proc = skserve(["loadtest", "--host", "http://127.0.0.1:9", "--deployment", "d"], env)
    assert proc.returncode == 5 and "needs the 'loadtest' extra" in proc.stderr, proc.stderr


def test_kube_alone_reaches_the_cluster_client(tmp_path: Path) -> None:
    """With only `kube`, `batch list` gets past its imports to the Kubernetes client, which
    says what is wrong with the (absent) configuration."""
    env = {**env_with_only(("kube",), tmp_path), "KUBECONFIG": str(tmp_path / "none")}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    proc = skserve(["batch", "list", "-n", "ns"], env)
    assert proc.returncode == 5, proc.stderr
    assert "Kubernetes" in proc.stderr and "extra" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_serve_alone_serves_and_batch_scores(trained_model: str, tmp_path: Path) -> None:
    """`skserve[serve]`: a real server (its BentoML workers under the same blocker) answers
    /predict, and `batch run` scores a CSV."""
    from tests.conftest import start_server, stop_server

    env = env_with_only(("serve",), tmp_path)
    server = start_server(trained_model, workers=1, extra_env=env)
    try:
        import json
        import urllib.request

        meta = json.load(urllib.request.urlopen(server.url + "/metadata", timeout=10))
        row = {f["name"]: (f["categories"][0] if f.get("categories") else f["min"])
               for f in meta["features"]}
        request = urllib.request.Request(server.url + "/predict", json.dumps(row).encode(),
                                         {"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200 and "prediction" in json.load(resp)
    finally:
        stop_server(server)
    import pandas as pd

    pd.DataFrame([row] * 5).to_csv(tmp_path / "in.csv", index=False)
    proc = skserve(["batch", "run", "--input", str(tmp_path / "in.csv"), "--output",
                    str(tmp_path / "out"), "--model", trained_model, "--no-progress"], env)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(tmp_path / "out" / "predictions.csv")) == 5


@pytest.mark.slow
def test_loadtest_alone_runs_against_a_real_server(server, tmp_path: Path) -> None:
    """`skserve[loadtest]` (what the chart's load-test image holds): a real Locust run,
    master and one worker process, with no pandas, scikit-learn or BentoML importable."""
    env = env_with_only(("loadtest",), tmp_path)
    proc = skserve(["loadtest", "--host", server.url, "--users", "2", "--duration", "4s",
                    "--workers", "1", "--report-dir", str(tmp_path / "report")], env,
                   timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "report" / "report.html").exists()
