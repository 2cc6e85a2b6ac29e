"""The HAProxy router against a real HAProxy (Debian's) with the config skserve generates.

The two backends are stdlib HTTP servers that answer with their own name: what is under
test is HAProxy's routing through the runtime API, not the model servers (those are in
test_local_rollouts.py)."""

from __future__ import annotations

import collections
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from skserve.errors import InvalidInput, Unavailable
from skserve.rollout import routers
from skserve.rollout.routers import SlotTarget
from skserve.rollout.routers import haproxy as hap
from tests.conftest import free_port

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None,
                                reason="haproxy not installed (make test installs Debian's)")


def named_server(name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else delayed ACKs cost 40 ms a request

        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            body = name.encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    root = tmp_path_factory.mktemp("haproxy")
    blue, green = named_server("blue"), named_server("green")
    addr = {s: f"127.0.0.1:{srv.server_address[1]}" for s, srv in (("blue", blue),
                                                                  ("green", green))}
    port, sock, mapfile = free_port(), root / "admin.sock", root / "versions.map"
    hap.write_empty_map(mapfile)
    (root / "haproxy.cfg").write_text(hap.render_config(
        f"127.0.0.1:{port}", {"blue": addr["blue"], "green": None}, str(sock), str(mapfile),
        {"blue": 100}, check_interval_ms=200))
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(root / "haproxy.cfg")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    router = routers.load("haproxy", socket=str(sock), version_map=str(mapfile))
    yield router, f"http://127.0.0.1:{port}", addr
    proc.terminate()
    proc.wait(10)
    blue.shutdown()
    green.shutdown()


def count(url: str, n: int, headers: dict | None = None) -> collections.Counter:
    with httpx.Client() as client:
        return collections.Counter(client.post(url + "/predict", content=b"{}",
                                               headers=headers or {}).text for _ in range(n))


def test_weights_header_routes_and_reconcile(proxy):
    router, url, addr = proxy
    router.reconcile([SlotTarget("blue", "demand:v1", addr["blue"])])
    assert router.get_weights() == {"blue": 100, "green": 0}  # green parked in maint
    assert count(url, 20) == {"blue": 20}

    router.reconcile([SlotTarget("blue", "demand:v1", addr["blue"]),
                      SlotTarget("green", "demand:v2", addr["green"])])
    router.set_weights({"blue": 75, "green": 25})
    assert router.get_weights() == {"blue": 75, "green": 25}
    split = count(url, 200)
    assert split["green"] == pytest.approx(50, abs=4)  # roundrobin: exact up to rounding

    forced = count(url, 20, {"x-model-version": "demand:v2"})
    assert forced == {"green": 20}  # the header wins over the weights
    router.set_weights({"blue": 100, "green": 0})
    assert count(url, 10, {"x-model-version": "demand:v2"}) == {"green": 10}  # even at 0
    assert count(url, 20) == {"blue": 20}

    router.reconcile([SlotTarget("blue", "demand:v1", addr["blue"])])  # green leaves
    assert count(url, 10, {"x-model-version": "demand:v2"}) == {"blue": 10}
    router.finalize("blue")
    assert router.get_weights() == {"blue": 100, "green": 0}


def test_bad_weights_and_unknown_slots_are_refused(proxy):
    router, _, _ = proxy
    with pytest.raises(InvalidInput, match="add up to 100"):
        router.set_weights({"blue": 60, "green": 60})
    with pytest.raises(InvalidInput, match="not in the HAProxy config"):
        router.set_weights({"red": 100})
    with pytest.raises(InvalidInput, match="router must be one of"):
        routers.load("traefik")


def test_an_unreachable_runtime_api_is_unavailable(tmp_path):
    router = hap.Router(socket=str(tmp_path / "nothing.sock"), version_map="/x.map")
    with pytest.raises(Unavailable, match="runtime API"):
        router.get_weights()
    with pytest.raises(Unavailable, match="runtime API"):
        hap.runtime(f"127.0.0.1:{free_port()}", "show info")
