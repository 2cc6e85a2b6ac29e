"""Keep-alive connections with a bounded life, so replicas added under load get their share.

A Kubernetes Service (kube-proxy) balances connections, not requests: clients that keep
their connections open send everything to the pods that existed when they connected, and
the replicas an HPA adds stay idle (seen on the local cluster: 1 → 4 replicas under Locust,
the first pod at ~960m CPU, the three new ones at 3m, throughput flat). So the server ends
each connection after `max_age_s` seconds or `max_requests` requests, whichever comes
first: the response that crosses the bound says `Connection: close` (the way the drain
does), the client opens a new connection, and kube-proxy places it on any current pod.
After about one `max_age_s` every long-lived connection has been placed afresh.

The same bounds exist elsewhere: gRPC's MAX_CONNECTION_AGE (with the same ±10 % jitter, so
connections opened together do not all reconnect together), Envoy's max_connection_duration,
nginx's keepalive_time and keepalive_requests. Nothing is lost: the close is announced on a
complete response, before the client sends its next request on that connection (unlike an
idle timeout, which can close under a request already on its way).

A connection is known by its peer address (host, port), the only per-connection identity
an ASGI app sees; a connection the client closed on its own is forgotten once it has been
silent for `FORGET_AFTER_S` (longer than uvicorn's 5 s keep-alive timeout, after which the
server has closed it anyway). Every close is counted in
`skserve_connections_recycled_total{model_version, reason="max_age"|"max_requests"}`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping

from .errors import InvalidInput

FORGET_AFTER_S = 60.0
JITTER = 0.1  # each connection's age limit is max_age_s × U(1 - JITTER, 1 + JITTER)
# Defaults (SKSERVE_MAX_CONNECTION_AGE, SKSERVE_MAX_CONNECTION_REQUESTS; 0 = unbounded),
# from `make bench-scaleout` (BENCHMARKS.md, "Scale-out"): a reconnect cost the server
# 0.26 ms of CPU on average, within the noise (rounds from -0.8 to +1.0 ms), so a connection
# carrying 10 requests/s or more pays under 1 % at 10 s (100+ requests per reconnect, about
# 1.4 ms of CPU each); and a new replica served half its fair share 4-10 s after Ready and
# every pod at least 0.89 of a fair share (never anything, without recycling). 10 s moves
# the load within the HPA's 15 s sync period, before its next decision; shorter ages spread
# faster for more reconnects. The age bound alone spreads the load whatever the request
# rate, so the request bound is off.
DEFAULT_MAX_AGE_S = 10.0
DEFAULT_MAX_REQUESTS = 0
AGE_ENV, REQUESTS_ENV = "SKSERVE_MAX_CONNECTION_AGE", "SKSERVE_MAX_CONNECTION_REQUESTS"


class ConnectionRecycler:
    """Decides, request by request, when a keep-alive connection should be closed.

    `max_age_s` ≤ 0 and `max_requests` ≤ 0 each mean unbounded; both unbounded turns the
    recycler off (`enabled` is False). `count(reason)` is called for each close (the
    Prometheus counter in the server); `clock` and `uniform` are injectable for tests."""

    def __init__(self, max_age_s: float, max_requests: int, *,
                 count: Callable[[str], None] = lambda reason: None,
                 clock: Callable[[], float] = time.monotonic,
                 uniform: Callable[[float, float], float] = random.uniform):
        self.max_age_s = max_age_s if max_age_s > 0 else None
        self.max_requests = max_requests if max_requests > 0 else None
        self.count, self.clock, self.uniform = count, clock, uniform
        # peer -> [deadline (clock s) or None, requests so far, last request (clock s)]
        self.connections: dict[tuple[str, int], list] = {}
        self.next_sweep = clock() + FORGET_AFTER_S

    @property
    def enabled(self) -> bool:
        return self.max_age_s is not None or self.max_requests is not None

    def should_close(self, peer: tuple[str, int] | None) -> bool:
        """Count one request from `peer` (ASGI's scope["client"]); True when its response
        must close the connection. A request without a peer (a unix socket) never is."""
        if peer is None or not self.enabled:
            return False
        now = self.clock()
        if now >= self.next_sweep:
            self._forget_silent(now)
        state = self.connections.get(peer)
        if state is None:
            deadline = (now + self.max_age_s * self.uniform(1 - JITTER, 1 + JITTER)
                        if self.max_age_s is not None else None)
            state = self.connections[peer] = [deadline, 0, now]
        state[1] += 1
        state[2] = now
        if state[0] is not None and now >= state[0]:
            reason = "max_age"
        elif self.max_requests is not None and state[1] >= self.max_requests:
            reason = "max_requests"
        else:
            return False
        del self.connections[peer]
        self.count(reason)
        return True

    def _forget_silent(self, now: float) -> None:
        cutoff = now - FORGET_AFTER_S
        for peer in [p for p, s in self.connections.items() if s[2] < cutoff]:
            del self.connections[peer]
        self.next_sweep = now + FORGET_AFTER_S


def from_env(env: Mapping[str, str], model_version: str) -> ConnectionRecycler:
    """The recycler `SKSERVE_MAX_CONNECTION_AGE` (seconds) and
    `SKSERVE_MAX_CONNECTION_REQUESTS` ask for, counting its closes in Prometheus; a bad
    value is InvalidInput naming it."""
    return ConnectionRecycler(_bound(env, AGE_ENV, float, DEFAULT_MAX_AGE_S),
                              int(_bound(env, REQUESTS_ENV, int, DEFAULT_MAX_REQUESTS)),
                              count=_counter(model_version))


def _counter(model_version: str) -> Callable[[str], None]:
    """Counts closes by reason. The metric is made at the first close, so in a worker
    (where BentoML has set up prometheus_client's multiprocess mode), with both reasons."""
    made: list = []

    def count(reason: str) -> None:
        if not made:
            from prometheus_client import Counter

            counter = Counter("skserve_connections_recycled",
                              "Keep-alive connections closed at the end of their bounded life.",
                              ["model_version", "reason"])
            made.extend(counter.labels(model_version, r) for r in ("max_age", "max_requests"))
        made[0 if reason == "max_age" else 1].inc()

    return count


def _bound(env: Mapping[str, str], name: str, kind: type, default: float) -> float:
    raw = env.get(name) or ""
    try:
        value = kind(raw) if raw else default
    except ValueError:
        raise InvalidInput(f"{name}={raw!r}: not a number") from None
    if value < 0 or value != value:  # NaN
        raise InvalidInput(f"{name}={raw!r}: must be 0 (unbounded) or more")
    return value
