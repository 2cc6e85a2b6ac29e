"""A real HTTP server whose latencies are known: ground truth for the SLO gate's tests.

It speaks just enough of skserve's API for `skserve loadtest` (`GET /metadata`, `/readyz`,
`POST /predict` and `/predict_batch`) and answers every request after a delay drawn
uniformly from its version's range, with that version in `x-model-version`. It keeps its
own record of every request it handled: the version, the status, and the time between
reading the request and writing the answer, measured with its own clock. A client's
latency for a request can only be longer than that (it also spans the network and both
ends' parsing), so the record bounds from below what Locust measures.

Run it by hand to look at reports:
    python tests/loadtest/delayserver.py stable=20:40 canary=60:90 --fail 0.1
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

METADATA = {"features": [{"name": "x", "dtype": "float", "min": 0.0, "max": 1.0,
                          "categories": None}]}


@dataclass(frozen=True)
class Handled:
    """One request as the server saw it."""

    version: str
    status: int
    ms: float  # request read → response written, by the server's clock


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops connections beyond it: a 1 s SYN retry


@dataclass
class DelayServer:
    """`versions` maps a version to its (low, high) delay in ms; requests go to the versions
    in turn. `fail_ratio` of the requests get a 503 (after their delay). Use as a context
    manager; `url` is `http://127.0.0.1:<free port>`."""

    versions: Mapping[str, tuple[float, float]]
    fail_ratio: float = 0.0
    seed: int = 0
    records: list[Handled] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._turn = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Locust's FastHttpUser expects
            disable_nagle_algorithm = True  # else headers and body wait on a delayed ACK

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes, version: str = "") -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                if version:
                    self.send_header("x-model-version", version)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/metadata":
                    self._send(200, json.dumps(METADATA).encode())
                elif self.path in ("/readyz", "/livez"):
                    self._send(200, b"{}")
                else:
                    self._send(404, b'{"detail": "not found"}')

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                start = time.perf_counter()
                version, delay_ms, fail = server._draw()
                time.sleep(delay_ms / 1000)
                status = 503 if fail else 200
                body = b'{"detail": "overloaded"}' if fail else json.dumps(
                    {"prediction": 1.0, "model_version": version}).encode()
                self._send(status, body, version)
                elapsed = (time.perf_counter() - start) * 1000
                with server._lock:
                    server.records.append(Handled(version, status, elapsed))

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _draw(self) -> tuple[str, float, bool]:
        with self._lock:
            names = list(self.versions)
            version = names[self._turn % len(names)]
            self._turn += 1
            low, high = self.versions[version]
            return version, self._rng.uniform(low, high), self._rng.random() < self.fail_ratio

    def __enter__(self) -> DelayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def handled(self, version: str | None = None) -> list[float]:
        """The server-side milliseconds of every request (of one version), sorted."""
        with self._lock:
            return sorted(r.ms for r in self.records if version in (None, r.version))


def _version(text: str) -> tuple[str, tuple[float, float]]:
    name, _, span = text.partition("=")
    low, _, high = span.partition(":")
    return name, (float(low), float(high or low))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="+", type=_version, help="name=low_ms:high_ms")
    parser.add_argument("--fail", type=float, default=0.0, help="share of 503 answers")
    args = parser.parse_args()
    with DelayServer(dict(args.versions), args.fail) as srv:
        print(srv.url, flush=True)
        threading.Event().wait()
