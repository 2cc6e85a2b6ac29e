"""Connections with a bounded life (skserve.recycling): the rule on its own, then real
`skserve serve` servers that close keep-alive connections by age and by request count, and
Locust (FastHttpUser, master and worker as the chart's load-test pods run it) reconnecting
through thousands of those closes without a failed request."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from skserve import store
from skserve.recycling import JITTER, ConnectionRecycler, from_env
from skserve.schema import example_row
from tests.conftest import SKSERVE, start_server, stop_server


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def recycler(age: float, requests: int, clock: Clock, closes: list[str]) -> ConnectionRecycler:
    return ConnectionRecycler(age, requests, count=closes.append, clock=clock,
                              uniform=lambda low, high: high)  # the longest jittered age


def test_a_connection_closes_at_its_age_and_a_new_one_starts_afresh() -> None:
    clock, closes = Clock(), []
    r = recycler(10, 0, clock, closes)
    peer = ("10.0.0.1", 40000)
    assert not r.should_close(peer)
    clock.now += 10 * (1 + JITTER) - 0.01
    assert not r.should_close(peer)
    clock.now += 0.02
    assert r.should_close(peer) and closes == ["max_age"]
    assert not r.should_close(peer)  # the same address again is a new connection
    assert not r.should_close(("10.0.0.2", 40000))


def test_a_connection_closes_at_its_request_count() -> None:
    clock, closes = Clock(), []
    r = recycler(0, 3, clock, closes)
    peer = ("10.0.0.1", 40000)
    assert [r.should_close(peer) for _ in range(7)] == [False, False, True,
                                                        False, False, True, False]
    assert closes == ["max_requests", "max_requests"]


def test_jitter_spreads_the_ages_and_unbounded_means_off() -> None:
    drawn = []
    r = ConnectionRecycler(10, 0, uniform=lambda lo, hi: drawn.append((lo, hi)) or lo)
    r.should_close(("h", 1))
    assert drawn == [(1 - JITTER, 1 + JITTER)]
    off = ConnectionRecycler(0, 0)
    assert not off.enabled
    assert not any(off.should_close(("h", 1)) for _ in range(10_000))
    assert off.connections == {}
    assert not ConnectionRecycler(1, 1).should_close(None)  # no peer: a unix socket


def test_silent_connections_are_forgotten() -> None:
    clock, closes = Clock(), []
    r = recycler(10, 0, clock, closes)
    for port in range(100):
        r.should_close(("h", port))
    clock.now += 61
    r.should_close(("h", 1000))
    assert list(r.connections) == [("h", 1000)]


@pytest.mark.parametrize(("env", "message"), [
    ({"SKSERVE_MAX_CONNECTION_AGE": "soon"}, "SKSERVE_MAX_CONNECTION_AGE='soon': not a number"),
    ({"SKSERVE_MAX_CONNECTION_REQUESTS": "-1"}, "must be 0 (unbounded) or more"),
    ({"SKSERVE_MAX_CONNECTION_AGE": "nan"}, "must be 0 (unbounded) or more"),
])
def test_a_bad_setting_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        from_env(env, "demand:test")


def test_a_bad_flag_is_one_line_with_exit_2() -> None:
    proc = subprocess.run([SKSERVE, "serve", "--max-connection-age", "-1"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("skserve serve: error: --max-connection-age -1.0: must be 0 "
                                   "(unbounded) or more")


# ------------------------------------------------------------------------- real servers


@pytest.fixture(scope="module")
def recycling_server(trained_model: str):
    """`skserve serve` closing connections after 5 requests or 2 s (±10 %)."""
    srv = start_server(trained_model, workers=1, extra_env={
        "SKSERVE_MAX_CONNECTION_REQUESTS": "5", "SKSERVE_MAX_CONNECTION_AGE": "2"})
    yield srv
    stop_server(srv)


def post(conn: http.client.HTTPConnection, body: str) -> tuple[str | None, int]:
    """One /predict on `conn`; (its Connection header, the client port it went out on)."""
    conn.request("POST", "/predict", body, {"content-type": "application/json"})
    port = conn.sock.getsockname()[1]
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 200
    return resp.getheader("connection"), port


def recycled(url: str) -> dict[str, float]:
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return {m[1]: float(m[2]) for m in re.finditer(
        r'^skserve_connections_recycled_total\{[^}]*reason="(\w+)"[^}]*\} (\S+)', text, re.M)}


@pytest.mark.slow
def test_the_fifth_request_closes_and_the_client_reconnects(recycling_server,
                                                            trained_model: str) -> None:
    body = json.dumps(example_row(store.get_info(trained_model).schema))
    before = recycled(recycling_server.url).get("max_requests", 0)
    conn = http.client.HTTPConnection(recycling_server.url.removeprefix("http://"), timeout=30)
    answers = [post(conn, body) for _ in range(10)]
    conn.close()
    headers = [h for h, _ in answers]
    assert headers == [None] * 4 + ["close"] + [None] * 4 + ["close"], headers
    ports = [p for _, p in answers]
    assert len(set(ports[:5])) == 1 and len(set(ports[5:])) == 1 and ports[0] != ports[5]
    assert recycled(recycling_server.url)["max_requests"] == before + 2


@pytest.mark.slow
def test_an_old_connection_is_closed_on_its_next_request(recycling_server,
                                                         trained_model: str) -> None:
    """2 s ± 10 % is at most 2.2 s; 2.5 s later (inside uvicorn's 5 s keep-alive) the next
    answer closes the connection."""
    body = json.dumps(example_row(store.get_info(trained_model).schema))
    conn = http.client.HTTPConnection(recycling_server.url.removeprefix("http://"), timeout=30)
    first, port = post(conn, body)
    time.sleep(2.5)
    second, same_port = post(conn, body)
    conn.close()
    assert (first, second) == (None, "close") and port == same_port
    assert recycled(recycling_server.url)["max_age"] >= 1


@pytest.mark.slow
def test_locust_master_and_worker_reconnect_without_a_failure(recycling_server,
                                                              tmp_path: Path) -> None:
    """`skserve loadtest` with a master and a worker process (what the chart's load-test
    pods run) against a server that closes every fifth request: hundreds of reconnects,
    zero failures (the SLO gate on failures exits 3 on the first one)."""
    before = sum(recycled(recycling_server.url).values())
    proc = subprocess.run(
        [SKSERVE, "loadtest", "--host", recycling_server.url, "--users", "4",
         "--duration", "8s", "--workers", "1", "--mix", "predict=0.8,predict_batch=0.2",
         "--slo-max-failure-ratio", "0", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    total = json.loads((tmp_path / "locust_final.json").read_text())["Aggregated"]
    assert total["failures"] == 0 and total["requests"] > 100, total
    closes = sum(recycled(recycling_server.url).values()) - before
    assert closes >= total["requests"] / 5 * 0.8, (closes, total["requests"])
