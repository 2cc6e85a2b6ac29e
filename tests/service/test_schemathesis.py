"""Property-based fuzzing of the running service from its own OpenAPI (schemathesis)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_no_server_errors_and_bad_input_rejected(server):
    """Every generated request gets a non-5xx answer, and schema-violating ones a 4xx."""
    st = str(Path(sys.executable).with_name("schemathesis"))
    result = subprocess.run(
        [st, "run", f"{server.url}/docs.json", "--checks",
         "not_a_server_error,negative_data_rejection", "--max-examples", "100",
         "--include-path-regex", "^/predict", "--seed", "1", "--max-time", "60"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "passed" in result.stdout
