"""The rollout loop: read the state, ask the machine, act through the edges, write the state.

Each turn takes (or renews) the release's lease (a thread keeps renewing it while an action
runs, so a long deploy never lets it lapse), reads the stored document, asks
`state.next_action` what to do, does it (router, slots, analysis), then writes the new state
with a compare-and-swap and records an event. A controller killed at any moment (kill -9)
resumes from the last written state when started again: every action is idempotent, and a
write that lost a race (an operator's `promote` landed in between) is simply re-decided.

The edges are protocols, so the same loop drives the local stack and a cluster:

- `store`: a `StateStore` (store.py);
- `router`: a `Router` (routers/);
- `slots`: deploy a version in a slot, scale a slot down, list the slots that serve, and
  say how to reach one slot alone (for warm-up and smoke requests; `http_options`, when a
  slots object has them, are the HTTP client's settings for that, e.g. the credentials of
  the API server's service proxy);
- `prometheus`: something with `results(queries) → numbers` (prometheus.py).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import RolloutFailed, Unavailable
from . import analysis
from .routers import Router, SlotTarget
from .state import (
    Analyse,
    Deploy,
    Done,
    Finalize,
    PreTraffic,
    RolloutSpec,
    RolloutState,
    ScaleDown,
    SetWeights,
    Transition,
    Wait,
    check_failures,
    next_action,
)
from .store import Conflict, StateStore


class Slots(Protocol):
    def deploy(self, slot: str, version: str) -> SlotTarget: ...
    def scale_down(self, slot: str) -> None: ...
    def targets(self) -> list[SlotTarget]: ...
    def smoke_target(self, slot: str) -> tuple[str, dict[str, str]]: ...


class Metrics(Protocol):
    def results(self, queries: dict[str, str]) -> dict[str, Any]: ...


def smoke(url: str, headers: dict[str, str], rows: Sequence[bytes], n: int,
          timeout_s: float = 10.0,
          client_options: dict[str, Any] | None = None) -> tuple[int, int, str]:
    """POST `n` rows (JSON bodies, cycled) to `url`/predict; returns (sent, failed, first
    error). A 4xx counts as failed too: smoke rows are valid by construction.
    `client_options`: more httpx.Client arguments (TLS, auth headers)."""
    import httpx

    failed, first = 0, ""
    with httpx.Client(timeout=timeout_s, **(client_options or {})) as client:
        for i in range(n):
            try:
                r = client.post(f"{url}/predict", content=rows[i % len(rows)],
                                headers={"content-type": "application/json", **headers})
                ok = r.status_code == 200
                why = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                ok, why = False, str(exc)
            if not ok:
                failed += 1
                first = first or why
    return n, failed, first


@dataclass
class Controller:
    """Drives one release's rollout to its end. `clock`/`sleep` are injectable for tests."""

    release: str
    store: StateStore
    router: Router
    slots: Slots
    metrics: Metrics
    smoke_rows: Sequence[bytes] = ()
    selector: str = analysis.DEFAULT_SELECTOR
    lease_ttl_s: float = 15.0
    tick_s: float = 1.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    on_event: Callable[[dict[str, Any]], None] | None = None
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    retries: int = 10
    scrape_timeout_s: float = 60.0
    warmup: int = 20
    min_window_s: float = 30.0  # three scrapes at Prometheus' usual 10 s
    _smoke_offset: int = 0

    def run(self, max_turns: int = 100_000) -> RolloutState:
        """Turn until the rollout is over; returns the final state. Raises Unavailable when
        another controller holds the lease or an edge keeps failing (the state is kept:
        start again to resume)."""
        verdict: dict[str, Any] | None = None
        failures = 0
        last_message = None
        stop, lost = threading.Event(), threading.Event()
        keeper: threading.Thread | None = None
        try:
            for turn in range(max_turns):
                if lost.is_set() or not self.store.acquire(self.release, self.holder,
                                                           self.lease_ttl_s):
                    holder = self.store.lease_holder(self.release)
                    raise Unavailable(f"another controller ({holder}) holds the lease on "
                                      f"release {self.release!r}")
                if keeper is None:
                    keeper = threading.Thread(target=self._keep_lease, args=(stop, lost),
                                              daemon=True)
                    keeper.start()
                record = self.store.read(self.release)
                if record is None:
                    raise Unavailable(f"release {self.release!r} has no rollout")
                doc = record.doc
                spec = RolloutSpec.from_dict(doc["spec"])
                state = RolloutState.from_dict(doc["state"])
                command = (doc.get("command") or {}).get("name")
                if turn == 0 and state.done and not command:
                    # over before this controller took a turn (a standby that saw it
                    # running a moment ago): the one that ended it has said so
                    return state
                now = self.clock()
                t = next_action(spec, state, now, verdict, command)
                verdict = None
                try:
                    result = self._do(spec, state, t)
                except Unavailable as exc:
                    failures += 1
                    self._event(t.state, "Warning", "EdgeFailed", f"{t.action.kind}: {exc}")
                    if failures > self.retries:
                        raise
                    # back off, but renew the lease well before it expires
                    self.sleep(min(2.0 * failures, 10.0, self.lease_ttl_s / 3))
                    continue
                failures = 0
                if isinstance(t.action, SetWeights):
                    # a step's pause and the old slot's keep time count from when the weights
                    # took effect: a replica split may take a minute to scale up
                    done_at = self.clock()
                    if t.state.step_started_at == now:
                        t.state.step_started_at = done_at
                    if t.state.promoted_at == now:
                        t.state.promoted_at = done_at
                new = {**doc, "state": t.state.to_dict(), "command": None}
                try:
                    self.store.write(self.release, new, record.version)
                except Conflict:
                    continue  # someone wrote in between (an operator command): decide again
                if isinstance(t.action, Analyse | PreTraffic) or \
                        (isinstance(t.action, Deploy) and result):
                    verdict = result
                    self._verdict_event(t.state, result, t.action)
                    continue
                if not isinstance(t.action, Wait) or t.message != last_message or command:
                    self._event(t.state, "Warning" if t.warning else "Normal", t.reason,
                                t.message, t.action)
                    last_message = t.message
                if isinstance(t.action, Done):
                    return t.state
                if isinstance(t.action, Wait):
                    self.sleep(max(0.0, min(t.action.until - self.clock(), self.tick_s)))
            raise Unavailable(f"rollout of {self.release!r} still running after {max_turns} "
                              "turns")
        finally:
            stop.set()
            if keeper is not None:
                keeper.join(self.lease_ttl_s)
            self.store.release_lease(self.release, self.holder)

    def _keep_lease(self, stop: threading.Event, lost: threading.Event) -> None:
        """Renew the lease every third of its time while an action runs (a deploy or a
        scale-up can take minutes): another controller must never find it expired while
        this one still acts. A renewal that fails marks it lost; the loop stops at its next
        turn. A killed process renews nothing: its lease runs out."""
        while not stop.wait(self.lease_ttl_s / 3):
            try:
                if not self.store.acquire(self.release, self.holder, self.lease_ttl_s):
                    lost.set()
                    return
            except Exception:  # the store is briefly unreachable: the next renewal retries
                continue

    def _do(self, spec: RolloutSpec, state: RolloutState, t: Transition) -> Any:
        action = t.action
        if isinstance(action, Deploy):
            try:
                self.slots.deploy(action.slot, action.version)
            except RolloutFailed as exc:  # it cannot run (crash loop, no image): roll back
                check = analysis.CheckResult("deploy", "deploy", "fail", "fail", None, None,
                                             0.0, f"deploy: {exc}")
                return analysis.judge([check], [], {}, {})
            self.router.reconcile(self.slots.targets())
            self._wait_scraped(action.slot, action.version)
            if self.smoke_rows and self.warmup:  # first calls are slow: not the model's fault
                smoke(*self.slots.smoke_target(action.slot), self._next_rows(self.warmup),
                      self.warmup, client_options=self._http_options())
        elif isinstance(action, SetWeights):
            self.router.set_weights(action.weights)
        elif isinstance(action, ScaleDown):
            # out of the router first (no header route, no health-checked server), then stop
            self.router.reconcile([s for s in self.slots.targets() if s.slot != action.slot])
            self.slots.scale_down(action.slot)
        elif isinstance(action, Finalize):
            self.router.finalize(action.active)
        elif isinstance(action, Analyse):
            return self.analyse(spec, state, action)
        elif isinstance(action, PreTraffic):
            return self.pre_traffic(action)
        return None

    def pre_traffic(self, action: PreTraffic) -> dict[str, Any]:
        """The pre-traffic check: `action.requests` smoke rows to the new slot alone (its
        own or the preview Service, the version header set), after the deploy's warm-up;
        any failure fails. No rows to send is inconclusive (never a pass)."""
        url, headers = self.slots.smoke_target(action.slot)
        sent = smoke(url, headers, self._next_rows(action.requests), action.requests,
                     client_options=self._http_options()) if self.smoke_rows else (0, 0, "")
        check = analysis.smoke_check(*sent, name="pre-traffic")
        return {**analysis.judge([check], [], {}, {}), "at": self.clock()}

    def _next_rows(self, n: int) -> list[bytes]:
        """The smoke rows from where the last smoke run stopped: the preview's predictions
        sample the whole pool, not its first rows again (the distribution checks compare
        them with the live version's real traffic)."""
        rows = list(self.smoke_rows)
        start = self._smoke_offset % len(rows)
        self._smoke_offset += n
        return rows[start:] + rows[:start]

    def _http_options(self) -> dict[str, Any]:
        return dict(getattr(self.slots, "http_options", None) or {})

    def _wait_scraped(self, slot: str, version: str) -> None:
        """Wait until Prometheus scrapes the new slot, so its counters are seen from their
        first value (increase() cannot count what happened before the first scrape)."""
        sel = analysis.selector(self.selector, slot, version)
        deadline = self.clock() + self.scrape_timeout_s
        while self.clock() < deadline:
            if (self.metrics.results({"up": f"max(up{{{sel}}})"}).get("up") or 0) >= 1:
                return
            self.sleep(0.5)
        raise Unavailable(f"Prometheus has not scraped slot {slot} ({sel}) within "
                          f"{self.scrape_timeout_s:g}s")

    def analyse(self, spec: RolloutSpec, state: RolloutState, action: Analyse) -> dict[str, Any]:
        """One analysis run: smoke (if asked), then every due template over [since, now]."""
        templates = [analysis.MetricTemplate.from_dict(d) for d in spec.analysis]
        measured: list[analysis.CheckResult] = []
        if action.smoke:
            url, headers = self.slots.smoke_target(spec.canary_slot)
            if self.smoke_rows:
                measured.append(analysis.smoke_check(*smoke(
                    url, headers, self._next_rows(action.smoke), action.smoke,
                    client_options=self._http_options())))
        now = self.clock()
        history = [a for a in state.analyses if a.get("step") == action.step]
        to_measure, reused = analysis.due(templates, history, now)
        win = analysis.window(now - action.since, self.min_window_s)
        canary = analysis.selector(self.selector, spec.canary_slot, spec.canary_version)
        stable = analysis.selector(self.selector, spec.stable_slot, spec.stable_version)

        def measure(tpl: analysis.MetricTemplate) -> analysis.CheckResult:
            try:
                results = self.metrics.results(analysis.queries(tpl, canary, stable, win))
            except Unavailable as exc:  # never a pass: inconclusive, and said why
                return analysis.CheckResult(tpl.name, tpl.kind, "inconclusive",
                                            "inconclusive", None, tpl.threshold, 0.0,
                                            f"{tpl.name}: {exc}")
            return analysis.measure(tpl, results)

        # every template at once: a run's verdict comes as fast as its slowest query, not
        # the sum of them all (the canary keeps its share of traffic until it comes)
        with ThreadPoolExecutor(max_workers=max(1, len(to_measure))) as pool:
            measured += pool.map(measure, to_measure)
        limits = {tpl.name: tpl.failure_limit for tpl in templates}
        result = analysis.judge(measured, reused, limits, check_failures(state, action.step))
        result["window"], result["at"] = win, now
        return result

    def _verdict_event(self, state: RolloutState, verdict: dict[str, Any],
                       action: Any = None) -> None:
        kind = verdict["verdict"]
        what, where = ("PreTraffic", "pre-traffic") if isinstance(action, PreTraffic) else \
            ("Analysis", f"step {state.step + 1}")
        reason = what + {"pass": "Passed", "fail": "Failed"}.get(kind, "Inconclusive")
        self._event(state, "Normal" if kind == "pass" else "Warning", reason,
                    f"{where}: {verdict['summary']}",
                    checks=[{k: c.get(k) for k in ("name", "verdict", "value", "threshold",
                                                   "samples")} for c in verdict["checks"]])

    def _event(self, state: RolloutState, kind: str, reason: str, message: str,
               action: Any = None, **extra: Any) -> None:
        event = {"at": self.clock(), "type": kind, "reason": reason, "message": message,
                 "phase": state.phase, "step": state.step, "weights": state.weights,
                 "controller": self.holder, **extra}
        if action is not None:
            event["action"] = action.kind
        self.store.event(self.release, event)
        if self.on_event:
            self.on_event(event)
