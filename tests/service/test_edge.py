"""The HTTP edge: body limit, list cap, worker memory, logs, server faults.

Against a real `skserve serve` (the session server, or one of its own where a test needs a
different model or settings); the pure parts (the list cap, the default limit, the log
format) in-process or in a subprocess. Oversized bodies are sent with `http.client` piece by
piece without waiting for an answer, as a client that ignores the server would.
"""

from __future__ import annotations

import http.client
import json
import os
import pty
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import AfterValidator, ValidationError, create_model

from skserve import store
from skserve.edge import RowsValidator, default_max_body_bytes
from skserve.schema import example_row
from tests.conftest import small_dataset, start_server, stop_server
from tests.service.test_http import call, metric, post, rows_for

MiB = 2**20
PIECE = 64 * 1024
# A worker's peak RSS may grow this much while oversized bodies are refused (allocator
# noise, the odd lazy import). Before the limit, each worker peaked ~410 MiB higher.
MEMORY_MARGIN_MIB = 32


def send_body(url: str, path: str, body: bytes, *, chunked: bool = False,
              expect: bool = False) -> tuple[int, dict[str, str], dict, int]:
    """POST `body` in 64 KiB pieces (chunked, or after a Content-Length) without waiting
    for an answer; with `expect`, send only the headers and `Expect: 100-continue`.
    Returns (status, headers, JSON answer, bytes of body sent before the server stopped
    reading)."""
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=60)
    conn.putrequest("POST", path)
    conn.putheader("content-type", "application/json")
    if chunked:
        conn.putheader("transfer-encoding", "chunked")
    else:
        conn.putheader("content-length", str(len(body)))
    if expect:
        conn.putheader("expect", "100-continue")
    conn.endheaders()
    sent = 0
    if not expect:
        try:
            for start in range(0, len(body), PIECE):
                piece = body[start:start + PIECE]
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: read its answer below
    resp = conn.getresponse()
    answer = json.loads(resp.read())
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, answer, sent


def max_body_bytes(server) -> int:
    return json.loads(call(server.url + "/metadata")[2])["max_body_bytes"]


def padded_row(schema, size: int) -> bytes:
    """A valid row, padded with spaces to exactly `size` bytes of JSON."""
    row = json.dumps(example_row(schema)).encode()
    return row[:-1] + b" " * (size - len(row)) + b"}"


# --------------------------------------------------------------------------- body limit


def test_default_limit_fits_the_largest_legitimate_batch(server, trained_model):
    """The derived limit holds the row cap of rows with the longest values, pretty-printed;
    a valid row padded with 5 MB of spaces (the issue's case) is refused."""
    info = store.get_info(trained_model)
    limit = max_body_bytes(server)
    assert limit == default_max_body_bytes(info.schema, 1000)
    rows = [{**r, "timestamp": r["timestamp"] + ".123456+10:00"} for r in rows_for(info, 1000)]
    body = json.dumps(rows, indent=4).encode()
    assert len(body) <= limit
    status, _, answer = call(server.url + "/predict_batch", body)
    assert status == 200 and len(json.loads(answer)) == 1000
    status, _, answer, _ = send_body(server.url, "/predict", padded_row(info.schema, 5_000_000))
    assert status == 413, answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_the_limit_is_exact(server, trained_model, chunked):
    """A body of exactly the limit is served; one byte more is 413."""
    schema = store.get_info(trained_model).schema
    limit = max_body_bytes(server)
    assert send_body(server.url, "/predict", padded_row(schema, limit), chunked=chunked)[0] == 200
    status, _, answer, _ = send_body(server.url, "/predict", padded_row(schema, limit + 1),
                                     chunked=chunked)
    assert status == 413 and answer["detail"][0]["ctx"] == {"max_body_bytes": limit}


@pytest.mark.parametrize(("chunked", "expect"), [(False, False), (False, True), (True, False)],
                         ids=["content-length", "expect-100-continue", "chunked"])
def test_oversized_bodies_are_refused_before_they_are_read(server, chunked, expect):
    """413 with a JSON body naming the limit and `Connection: close`; the server stops
    reading at once (64 MiB cannot sit in socket buffers), and a client that asks first
    (`Expect: 100-continue`, as curl does) never sends its body."""
    limit = max_body_bytes(server)
    body = b"[" + b" " * (64 * MiB) + b"]"
    status, headers, answer, sent = send_body(server.url, "/predict_batch", body,
                                              chunked=chunked, expect=expect)
    assert status == 413 and headers["connection"] == "close"
    assert headers["x-model-version"] == server.model
    assert f"the limit is {limit} bytes (SKSERVE_MAX_BODY_BYTES)" in answer["error"]
    (detail,) = answer["detail"]
    assert (detail["loc"], detail["type"], detail["ctx"]) == (["body"], "too_large",
                                                              {"max_body_bytes": limit})
    assert sent < len(body) // 4


def worker_pids(server) -> list[int]:
    """The BentoML workers: children of the server process (`skserve serve` execs into
    `bentoml serve`, whose arbiter starts them)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == server.proc.pid:
                pids.append(int(entry.name))
    return pids


def memory_mib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak since the last reset) of a process, in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) // 1024 for k in ("VmRSS", "VmHWM")}


def test_worker_memory_stays_flat_under_oversized_bodies(server, trained_model):
    """40 bodies of 23 MiB (the issue's 21-MiB-list case: 330,000 valid rows), two with a
    Content-Length and two chunked at a time: every one is 413 and no worker's peak RSS
    (VmHWM from /proc, reset first through clear_refs) rises by more than
    MEMORY_MARGIN_MIB. Without the limit each worker peaked ~410 MiB higher."""
    info = store.get_info(trained_model)
    body = json.dumps([example_row(info.schema)] * 330_000).encode()
    workers = worker_pids(server)
    assert len(workers) == 2
    statuses: list[int] = []

    def barrage() -> None:
        threads = [threading.Thread(target=lambda c=c: statuses.append(
            send_body(server.url, "/predict_batch", body, chunked=c)[0]))
            for c in (False, True, False, True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)

    for _ in range(3):  # warm both workers up: first requests allocate lazily
        post(server, "/predict_batch", [example_row(info.schema)] * 1000)
        barrage()
    for pid in workers:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak RSS := current RSS
    before = {pid: memory_mib(pid) for pid in workers}
    statuses.clear()
    for _ in range(10):
        barrage()
    assert statuses == [413] * 40
    for pid in workers:
        after = memory_mib(pid)
        assert after["VmHWM"] - before[pid]["VmRSS"] <= MEMORY_MARGIN_MIB, (pid, before, after)


# --------------------------------------------------------------------------- list cap


def counting_row() -> tuple[type, list[int]]:
    """A row model whose field validator counts its calls."""
    calls: list[int] = []

    def seen(value: float) -> float:
        calls.append(1)
        return value

    return create_model("Row", x=(Annotated[float, AfterValidator(seen)], ...)), calls


def test_over_long_list_is_refused_before_any_row_is_validated():
    """10,001 rows: one too_long error and not one row validated (pydantic-core alone
    validates 1,001 of them, then copies all 10,001 into its error)."""
    row, calls = counting_row()
    rows = RowsValidator(row, 1000)
    with pytest.raises(ValidationError) as err:
        rows(json.dumps([{"x": 1.5}] * 10_001))
    assert [(e["type"], e["ctx"]) for e in err.value.errors()] == [
        ("too_long", {"field_type": "List", "max_length": 1000, "actual_length": 10_001})]
    assert err.value.title == "list[Row]" and calls == []
    assert len(rows(json.dumps([{"x": 1.5}] * 1000))) == 1000 and len(calls) == 1000
    with pytest.raises(ValidationError) as err:  # not rows at all: pydantic's cap, our words
        rows(json.dumps([0] * 10_001))
    ((kind, ctx, msg),) = [(e["type"], e["ctx"], e["msg"]) for e in err.value.errors()]
    assert (kind, ctx["actual_length"]) == ("too_long", 10_001) and len(calls) == 1000
    assert msg == "10001 rows: a request takes at most 1000 (send the rest in further requests)"
    for body, kind in (("[{\"x\": 1.5", "json_invalid"), ("{}", "list_type"),
                       ("[]", "too_short")):
        with pytest.raises(ValidationError) as err:
            rows(body)
        assert err.value.errors()[0]["type"] == kind


# --------------------------------------------------------------------------- logs


def new_lines(log: Path, offset: int, count: int, timeout: float = 10) -> list[str]:
    """The log lines written after `offset`, once there are at least `count` (or timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        with log.open("rb") as f:
            f.seek(offset)
            lines = f.read().decode().splitlines()
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def hang_up_mid_body(url: str, path: str) -> None:
    """Announce 1000 bytes, send 10, close: the client's fault, a 499 (never delivered)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json"
                     "\r\ncontent-length: 1000\r\n\r\n{\"Temperat".encode())
        time.sleep(0.2)


def schema_name(tag: str) -> str:
    return tag.split(":")[0]


def test_every_client_error_is_one_json_log_line(server, trained_model):
    """A burst of bad requests of every kind: each is exactly one INFO line from
    skserve.http, valid JSON with method, path, status and the offending fields; no
    traceback anywhere."""
    schema = store.get_info(trained_model).schema
    row = example_row(schema)
    url = server.url

    def bad(path: str, change: dict) -> bytes:
        return json.dumps({**row, **change} if path == "/predict"
                          else [row, {**row, **change}]).encode()

    missing = {k: v for k, v in row.items() if k != "WorkDay"}
    infer = f"/v2/models/{schema_name(trained_model)}/infer"

    def v2(change: dict) -> bytes:
        return json.dumps({"inputs": [
            {"name": k, "datatype": "BYTES" if isinstance(v, str) else "FP64", "shape": [1],
             "data": [v]} for k, v in {**row, **change}.items()]}).encode()
    cases = [  # (send it, status, path, fields)
        (lambda: call(url + "/predict", b'{"Temperature": '), 400, "/predict", ["body"]),
        (lambda: call(url + "/predict_batch", b"\x00"), 400, "/predict_batch", ["body"]),
        (lambda: call(url + "/predict", bad("/predict", {"humidity": 5})), 400, "/predict",
         ["humidity"]),
        (lambda: call(url + "/predict", bad("/predict", {"Temperature": "warm"})), 400,
         "/predict", ["Temperature"]),
        (lambda: call(url + "/predict", bad("/predict", {"Temperature": 1e6})), 400,
         "/predict", ["Temperature"]),
        (lambda: call(url + "/predict", bad("/predict", {"WorkDay": 7})), 400, "/predict",
         ["WorkDay"]),
        (lambda: call(url + "/predict", json.dumps(missing).encode()), 400, "/predict",
         ["WorkDay"]),
        (lambda: call(url + "/predict_batch", bad("/predict_batch", {"timestamp": "soon"})),
         400, "/predict_batch", ["[1].timestamp"]),
        (lambda: call(url + "/predict_batch", json.dumps([row] * 1001).encode()), 400,
         "/predict_batch", ["body"]),
        (lambda: call(url + "/predict_batch", b"[]"), 400, "/predict_batch", ["body"]),
        (lambda: send_body(url, "/predict", b" " * (2 * MiB)), 413, "/predict", ["body"]),
        (lambda: send_body(url, "/predict_batch", b" " * (2 * MiB), chunked=True), 413,
         "/predict_batch", ["body"]),
        (lambda: call(url + "/predict", b"{}", "text/plain"), 415, "/predict",
         ["header.content-type"]),
        (lambda: call(url + "/no-such-path", b"{}"), 404, "/no-such-path", ["path"]),
        (lambda: hang_up_mid_body(url, "/predict"), 499, "/predict", ["body"]),
        (lambda: call(url + infer, v2({"Temperature": 1e6})), 400, infer,
         ["inputs.Temperature[0]"]),
        (lambda: call(url + infer, v2({"humidity": 5})), 400, infer, ["inputs.humidity"]),
        (lambda: send_body(url, infer, b" " * (2 * MiB)), 413, infer, ["body"]),
        (lambda: call(url + "/v2/models/other/infer", v2({})), 404, "/v2/models/other/infer",
         ["path.name"]),
    ]
    offset = server.log.stat().st_size
    for done, (send, status, _, _) in enumerate(cases, 1):
        answer = send()
        assert answer is None or answer[0] == status, answer
        # its line before the next request: a hang-up is noticed by the server some time
        # after the client left, and the next request may reach the other worker first
        new_lines(server.log, offset, done)
    lines = new_lines(server.log, offset, len(cases))
    assert len(lines) == len(cases), lines
    records = [json.loads(line) for line in lines]
    for record, (_, status, path, fields) in zip(records, cases, strict=True):
        assert record["level"] == "INFO" and record["logger"] == "skserve.http", record
        assert (record["method"], record["path"], record["status"]) == ("POST", path, status)
        assert record["fields"] == fields, record
        assert "exc_info" not in record
        assert record["message"].startswith(f"POST {path} {status}")
    assert "Traceback" not in "".join(lines)
    assert "warm" not in "".join(lines)  # field names, never the client's values


@pytest.fixture(scope="module")
def failing_server(trained_model):
    """`skserve serve` of tests/badmodels.py's failing model (raises on WorkDay=0 rows)
    with a 4096-byte body limit set through the environment, logs in JSON."""
    from tests.badmodels import save_failing

    tag = save_failing(small_dataset(), version="edge-failing")
    srv = start_server(tag, workers=1, extra_env={"SKSERVE_MAX_BODY_BYTES": "4096",
                                                 "SKSERVE_LOG_FORMAT": "json"})
    yield srv
    stop_server(srv)


@pytest.mark.slow
def test_a_model_that_raises_is_a_500_with_its_traceback_in_the_log(failing_server):
    """Valid input the model cannot score is a server fault: a JSON 500 that shows no
    internals, and one ERROR log line that keeps the traceback."""
    info = store.get_info(failing_server.model)
    workday, holiday = example_row(info.schema), {**example_row(info.schema), "WorkDay": 0}
    assert post(failing_server, "/predict", workday)[0] == 200
    offset = failing_server.log.stat().st_size
    for path, body in (("/predict", holiday), ("/predict_batch", [workday, holiday])):
        status, _, answer = post(failing_server, path, body)
        assert status == 500
        assert answer == {"error": "An unexpected error has occurred, please check the "
                                   "server log."}
    records = [json.loads(line) for line in new_lines(failing_server.log, offset, 2)]
    assert [(r["level"], r["message"]) for r in records] == [
        ("ERROR", "Exception on /predict [POST]"), ("ERROR", "Exception on /predict_batch [POST]")]
    for record in records:
        assert record["exc_info"].startswith("Traceback (most recent call last):")
        assert "ValueError: Found unknown categories" in record["exc_info"]


@pytest.mark.slow
def test_the_body_limit_is_configurable(failing_server):
    """SKSERVE_MAX_BODY_BYTES (what the chart value and --max-body-bytes set) replaces the
    derived default."""
    info = store.get_info(failing_server.model)
    assert max_body_bytes(failing_server) == 4096
    assert post(failing_server, "/predict_batch", [example_row(info.schema)] * 10)[0] == 200
    status, _, answer = post(failing_server, "/predict_batch", [example_row(info.schema)] * 100)
    assert status == 413 and answer["detail"][0]["ctx"] == {"max_body_bytes": 4096}


LOG_SCRIPT = """
import logging
from skserve import logs
logs.configure()
logs.log_client_error("POST", "/predict_batch", 400,
                      [{"loc": [3, "Temperature"], "type": "float_type"}])
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("bentoml.serve").exception("Exception on /predict [POST]")
"""


@pytest.mark.parametrize(("fmt", "tty", "want"), [
    ("auto", False, "json"), ("auto", True, "text"), ("json", True, "json"),
    ("text", False, "text")])
def test_log_format_follows_the_terminal_unless_set(fmt, tty, want):
    """JSON lines when stderr is not a terminal, text on a terminal; SKSERVE_LOG_FORMAT
    overrides either way. A real process, its stderr a pipe or a pseudo-terminal."""
    env = {**os.environ, "SKSERVE_LOG_FORMAT": fmt}
    if tty:
        leader, follower = pty.openpty()
        proc = subprocess.run([sys.executable, "-c", LOG_SCRIPT], env=env, stderr=follower,
                              timeout=60)
        os.close(follower)
        err = os.read(leader, 1 << 16).decode().replace("\r\n", "\n")
        os.close(leader)
    else:
        proc = subprocess.run([sys.executable, "-c", LOG_SCRIPT], env=env, stderr=subprocess.PIPE,
                              text=True, timeout=60)
        err = proc.stderr
    assert proc.returncode == 0, err
    lines = err.strip().splitlines()
    if want == "json":
        client, fault = (json.loads(line) for line in lines)
        assert client["message"] == "POST /predict_batch 400: [3].Temperature (float_type)"
        assert client["fields"] == ["[3].Temperature"] and client["status"] == 400
        assert fault["level"] == "ERROR" and "ZeroDivisionError" in fault["exc_info"]
    else:
        assert lines[0].endswith(" INFO skserve.http: POST /predict_batch 400: [3].Temperature "
                                 "(float_type)")
        assert " ERROR bentoml.serve: Exception on /predict [POST]" in lines[1]
        assert lines[2] == "Traceback (most recent call last):"


def test_a_bad_log_setting_is_one_line_naming_it():
    env = {**os.environ, "SKSERVE_LOG_FORMAT": "xml"}
    out = subprocess.run([sys.executable, "-m", "skserve.cli", "serve", "--model", "no:v1"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "SKSERVE_LOG_FORMAT='xml'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_failing_list_fails_only_its_own_request(failing_server):
    """Concurrent /predict_batch lists, one holding a row the model cannot score: the
    micro-batcher merges them into one model call and, when that call raises, re-runs each
    request alone, so only the guilty request is a 500. Rounds are repeated until a merged
    call that held the bad list is seen failing and re-run (the rows the model was called
    with exceed the rows sent) — bounded at 20 rounds."""
    info = store.get_info(failing_server.model)
    good = [{**row, "WorkDay": 1} for row in rows_for(info, 30)]  # within its 4096 bytes
    bad = [*good[:-1], {**good[-1], "WorkDay": 0}]
    version = {"model_version": info.tag}
    merged_failures = 0
    for _ in range(20):
        before = metric(failing_server, "skserve_model_batch_rows_sum", **version)
        results: dict[int, int] = {}
        bodies = [bad if i == 3 else good for i in range(8)]
        threads = [threading.Thread(target=lambda i=i, b=b, r=results: r.__setitem__(
            i, post(failing_server, "/predict_batch", b)[0])) for i, b in enumerate(bodies)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == {i: 500 if i == 3 else 200 for i in range(8)}, results
        sent = sum(len(b) for b in bodies)
        called = metric(failing_server, "skserve_model_batch_rows_sum", **version) - before
        merged_failures += called > sent
        if merged_failures:
            break
    assert merged_failures, "no merged call with the bad list in 20 rounds"
