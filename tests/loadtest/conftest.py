"""Fixtures for the load-test tests: a real `skserve serve` started through the harness.

The model comes from the shared `trained_model` fixture (tests/conftest.py: a small model
trained the way `skserve train` does, in a throwaway BENTOML_HOME). The server is started
with `skserve.loadtest.harness.start_server`, so the harness's start/readiness/stop path is
exercised by every real run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from skserve.loadtest.harness import Server, start_server

SKSERVE = str(Path(sys.executable).with_name("skserve"))


@pytest.fixture(scope="session")
def lt_server(trained_model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`skserve serve` of the small model with 2 workers on a free 127.0.0.1 port."""
    log = tmp_path_factory.mktemp("lt-server") / "server.log"
    server = start_server([SKSERVE, "serve", "--model", trained_model, "--port", "{port}",
                           "--workers", "2"], env=dict(os.environ), log_path=log,
                          timeout_s=120)
    try:
        yield server
    finally:
        server.stop()
