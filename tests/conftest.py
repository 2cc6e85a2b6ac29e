"""Shared fixtures: a throwaway model store, a small trained model and a real `skserve serve`.

BENTOML_HOME is set here, at import, before anything imports bentoml, so no test touches the
user's real model store. It lives in one folder per session (`session_dir`), with the servers'
logs: removed when the session passes, kept (and named) when it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

SESSION_DIR = Path(tempfile.mkdtemp(prefix="skserve-test-"))
os.environ["BENTOML_HOME"] = str(SESSION_DIR / "bentoml")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parent.parent
SKSERVE = str(Path(sys.executable).with_name("skserve"))
SMALL_ROWS = 48 * 7 * 8  # eight weeks of half-hours


def session_dir(prefix: str) -> Path:
    """A new folder inside this session's folder (see the module docstring)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=SESSION_DIR))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        shutil.rmtree(SESSION_DIR, ignore_errors=True)
    else:
        print(f"\ntest store and server logs kept in {SESSION_DIR}", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> float:
    """Poll `url` until it answers 200; returns the seconds it took. Fails if proc dies."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout}s")


WORKER_STARTED = "Service skserve initialized"  # BentoML's line, once per worker


def wait_workers(log: Path, workers: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until every worker has logged that it started: /readyz answers as soon as one worker
    does, and a slower worker's start-up lines would otherwise land amid a test's."""
    deadline = time.monotonic() + timeout
    while log.read_text().count(WORKER_STARTED) < workers:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} while workers started")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{workers} worker(s) not started after {timeout}s")
        time.sleep(0.1)


def small_dataset():
    """Eight weeks of the real demand data: enough for every family, fast to fit."""
    from dataclasses import replace

    from skserve.data import frame_sha256, load_reference

    full = load_reference()
    frame = full.frame.iloc[:SMALL_ROWS].reset_index(drop=True)
    return replace(full, frame=frame, sha256=frame_sha256(frame))


@pytest.fixture(scope="session")
def trained_model() -> str:
    """A small model in the test store, trained the way `skserve train` does; its tag."""
    from skserve import store
    from skserve.train import model_metadata, select_model

    dataset = small_dataset()
    selection = select_model(dataset, seed=7, n_iter=1, holdout_weeks=1, cv_splits=2)
    info = store.save("demand", selection.pipeline, model_metadata(selection, dataset, 7),
                      {"dataset": dataset.name, "family": selection.winner.model},
                      version="test")
    return info.tag


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    model: str
    cold_start_s: float
    log: Path  # the server's stderr: its log lines


def start_server(model: str, workers: int = 1, extra_env: dict | None = None,
                 args: Sequence[str] = ()) -> Server:
    """`skserve serve` on a free port; its logs go to a file (a pipe nobody reads would fill
    up and block the server)."""
    port = free_port()
    env = {**os.environ, **(extra_env or {})}
    log = session_dir("server-") / "server.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [SKSERVE, "serve", "--model", model, "--port", str(port), "--workers", str(workers),
             *args],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        cold = wait_ready(url + "/readyz", proc)
        wait_workers(log, workers, proc)
    except Exception:
        proc.kill()
        raise RuntimeError(f"server failed: {log.read_text()[-3000:]}") from None
    return Server(url, proc, model, cold, log)


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()


@pytest.fixture(scope="session")
def server(trained_model: str) -> Iterator[Server]:
    """A real `skserve serve` (BentoML, 2 workers) on a free 127.0.0.1 port."""
    srv = start_server(trained_model, workers=2)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def classifier_model() -> str:
    """A real classifier stored by `skserve import` (tests/classifiers.py: Titanic, text
    labels, predict_proba, an input example from the sample); its tag."""
    from tests.classifiers import import_titanic

    return import_titanic()


@pytest.fixture(scope="session")
def classifier_server(classifier_model: str) -> Iterator[Server]:
    """A real `skserve serve` of the classifier (1 worker) on a free 127.0.0.1 port."""
    srv = start_server(classifier_model, workers=1)
    yield srv
    stop_server(srv)
