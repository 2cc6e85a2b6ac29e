"""Property-based fuzzing of the running service from its own OpenAPI (schemathesis), for a
regressor and a classifier: /predict, /predict_batch and the V2 infer routes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_no_server_errors_and_bad_input_rejected(request, kind):
    """Every generated request gets a non-5xx answer, and schema-violating ones a 4xx."""
    server = request.getfixturevalue("server" if kind == "regressor" else "classifier_server")
    st = str(Path(sys.executable).with_name("schemathesis"))
    result = subprocess.run(
        [st, "run", f"{server.url}/docs.json", "--checks",
         "not_a_server_error,negative_data_rejection", "--max-examples", "100",
         "--include-path-regex", "^/(predict|v2/models/[^/]+/infer)", "--seed", "1",
         "--max-time", "45"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "passed" in result.stdout
