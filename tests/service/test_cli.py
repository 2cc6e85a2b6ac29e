"""The `skserve` command line: help texts, exit codes, serve's lifecycle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from skserve.schema import example_row
from tests.conftest import SKSERVE, start_server


@pytest.mark.parametrize("argv", [[], ["train"], ["serve"], ["models"], ["batch"], ["loadtest"]])
def test_help(argv):
    out = subprocess.run([SKSERVE, *argv, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "usage: skserve" in out.stdout


def test_unknown_subcommand_fails():
    out = subprocess.run([SKSERVE, "fly"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "invalid choice" in out.stderr


def test_serve_without_the_model_says_how_to_get_one():
    out = subprocess.run([SKSERVE, "serve", "--model", "nosuch:v9", "--port", "1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "'nosuch:v9' is not in the model store" in out.stderr and "skserve train" in out.stderr
    assert "skserve models" in out.stderr and "bentoml" not in out.stderr.lower()
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_serve_on_a_taken_port_is_one_line(trained_model):
    """A port another server holds is the user's to change: one line naming it, before the
    banner, never BentoML's supervisor traceback."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        out = subprocess.run([SKSERVE, "serve", "--model", trained_model, "--host",
                              "127.0.0.1", "--port", str(port)],
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert f"--host 127.0.0.1 --port {port}: cannot listen there" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["train", "--target", "y"], 2, "--target needs --data FILE"),
    (["train", "--data", "/nonexistent.csv", "--target", "y"], 2, "data file not found"),
    (["batch", "run", "--input", "/nonexistent", "--output", "/tmp/x", "--model", "no:v1"], 2,
     "is not in the model store"),
    (["serve", "--max-body-bytes", "0"], 2, "--max-body-bytes 0: must be at least 1"),
])
def test_user_errors_are_one_line_with_their_exit_code(argv, code, message):
    """Typed errors (skserve.errors) map to exit codes in one place; no traceback."""
    out = subprocess.run([SKSERVE, *argv], capture_output=True, text=True, timeout=60)
    assert out.returncode == code, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_serve_hands_limits_and_log_settings_to_the_server(monkeypatch):
    """What `skserve serve` flags become in the server's environment; no body limit set
    means the server derives it."""
    from skserve.cli import build_parser, serve_env

    for var in ("SKSERVE_MAX_BODY_BYTES", "SKSERVE_LOG_FORMAT", "SKSERVE_LOG_LEVEL"):
        monkeypatch.delenv(var, raising=False)
    env = serve_env(build_parser().parse_args(
        ["serve", "--max-body-bytes", "4096", "--log-format", "text", "--log-level", "warning"]))
    assert (env["SKSERVE_MAX_BODY_BYTES"], env["SKSERVE_LOG_FORMAT"],
            env["SKSERVE_LOG_LEVEL"]) == ("4096", "text", "WARNING")
    env = serve_env(build_parser().parse_args(["serve"]))
    assert "SKSERVE_MAX_BODY_BYTES" not in env
    assert (env["SKSERVE_LOG_FORMAT"], env["SKSERVE_LOG_LEVEL"]) == ("auto", "INFO")
    monkeypatch.setenv("SKSERVE_MAX_BODY_BYTES", "4MiB")
    with pytest.raises(SystemExit) as exit_:  # argparse: a usage error naming the option
        build_parser().parse_args(["serve"])
    assert exit_.value.code == 2


def test_models_lists_the_trained_model(trained_model):
    out = subprocess.run([SKSERVE, "models", "--json"], capture_output=True, text=True,
                         timeout=60)
    assert trained_model in [m["model"] for m in json.loads(out.stdout)]


def test_models_table_is_on_stdout_aligned_and_rounded(trained_model):
    """Like `kubectl get`: a header, one row per model, columns aligned, on stdout so that
    `skserve models | grep demand` works; the task and its main metric (RMSE for a
    regression) to 4 significant digits."""
    from skserve import store

    out = subprocess.run([SKSERVE, "models"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr == ""
    header, *rows = out.stdout.splitlines()
    assert header.split() == ["MODEL", "TASK", "FAMILY", "METRIC", "ORIGIN", "CREATED"]
    (row,) = [r for r in rows if r.startswith(trained_model + " ")]
    meta = store.get_info(trained_model).metadata
    assert row.split() == [trained_model, "regression", meta["family"],
                           f"rmse={meta['metrics']['rmse']:.4g}", "trained", meta["trained_at"]]
    assert len(row.split()[3].split("=")[1].replace(".", "").lstrip("0")) <= 4
    starts = [header.index(h) for h in ("TASK", "FAMILY", "METRIC", "ORIGIN", "CREATED")]
    for line in rows:
        assert [line[i - 2:i] == "  " and line[i] != " " for i in starts] == [True] * 5, line
    grep = subprocess.run(f"{SKSERVE} models | grep -c '^{trained_model} '", shell=True,
                          capture_output=True, text=True, timeout=60)
    assert grep.stdout.strip() == "1"


@pytest.mark.slow
def test_sigterm_lets_in_flight_requests_finish(trained_model):
    """Requests already sent when SIGTERM arrives are answered 200, then the server exits."""
    from skserve import store

    server = start_server(trained_model, workers=1)
    row = example_row(store.get_info(trained_model).schema)
    body = json.dumps([row] * 1000).encode()
    results: list[object] = []
    sent = threading.Event()

    def client() -> None:
        req = urllib.request.Request(server.url + "/predict_batch", data=body,
                                     headers={"content-type": "application/json"})
        sent.set()
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                results.append(resp.status)
        except Exception as exc:  # recorded, asserted below
            results.append(exc)

    try:
        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        sent.wait(5)
        time.sleep(0.05)
        os.kill(server.proc.pid, signal.SIGTERM)
        for t in threads:
            t.join(30)
        code = server.proc.wait(timeout=30)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    assert results == [200] * 6
    assert code == 0


@pytest.mark.slow
def test_drain_file_turns_keep_alive_off(trained_model, tmp_path):
    """Once the preStop hook creates the drain file, responses say `Connection: close`."""
    import http.client

    from skserve import store
    from tests.conftest import stop_server

    drain = tmp_path / "draining"
    server = start_server(trained_model, workers=1,
                          extra_env={"SKSERVE_DRAIN_FILE": str(drain)})
    body = json.dumps(example_row(store.get_info(trained_model).schema))
    try:
        conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
        conn.request("POST", "/predict", body, {"content-type": "application/json"})
        first = conn.getresponse()
        first.read()
        assert first.status == 200 and first.getheader("connection") != "close"
        drain.touch()
        conn.request("POST", "/predict", body, {"content-type": "application/json"})
        second = conn.getresponse()
        second.read()
        assert second.status == 200 and second.getheader("connection") == "close"
        assert second.getheader("x-model-version") == trained_model
    finally:
        stop_server(server)
