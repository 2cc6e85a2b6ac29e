"""Prometheus' HTTP API, the I/O edge of the analysis: run the PromQL `analysis.queries`
builds and hand the numbers to `analysis.measure`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from ..errors import Unavailable


class Prometheus:
    """Instant queries against `url` (e.g. http://127.0.0.1:9090), over one keep-alive
    client (safe to share between threads: the controller runs an analysis' templates at
    once)."""

    def __init__(self, url: str, timeout_s: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.client = httpx.Client(timeout=timeout_s)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result vector of an instant query; Unavailable if Prometheus fails."""
        try:
            resp = self.client.get(f"{self.url}/api/v1/query", params={"query": promql})
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable(f"Prometheus at {self.url}: {exc}") from exc
        if body.get("status") != "success":
            raise Unavailable(f"Prometheus rejected {promql!r}: {body.get('error')}")
        return body["data"]["result"]

    def results(self, queries: Mapping[str, str]) -> dict[str, Any]:
        """name → a float (None when the vector is empty), for names ending in `buckets` a
        list of (le, value) pairs, for names ending in `classes` a mapping class → value."""
        out: dict[str, Any] = {}
        for name, promql in queries.items():
            vector = self.query(promql)
            if name.endswith("buckets"):
                out[name] = [(float(s["metric"]["le"]), float(s["value"][1])) for s in vector]
            elif name.endswith("classes"):
                out[name] = {s["metric"].get("class", ""): float(s["value"][1]) for s in vector}
            else:
                out[name] = float(vector[0]["value"][1]) if vector else None
        return out
