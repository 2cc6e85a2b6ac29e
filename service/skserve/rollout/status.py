"""`skserve rollout status`: steps, weights, verdicts and the numbers behind them.

`document()` gathers what the store has (JSON-ready); `plain()` renders it as text lines;
`live()` keeps a rich table on the terminal until the rollout ends or Ctrl-C.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .state import FAILURES, PRE_TRAFFIC_STEP, UNDONE, RolloutSpec, RolloutState
from .store import StateStore


def document(store: StateStore, release: str, events: int = 15) -> dict[str, Any]:
    """The release's rollout record, lease holder and its latest `events` events (0: all of
    this rollout's)."""
    record = store.read(release)
    if record is None:
        return {"release": release, "rollout": None}
    since = record.doc["state"].get("started_at") or 0.0  # this rollout's events only
    mine = [e for e in store.events(release) if e.get("at", 0) >= since]
    return {"release": release, "version": record.version, "spec": record.doc["spec"],
            "state": record.doc["state"], "command": record.doc.get("command"),
            "controller": store.lease_holder(release), "events": mine[-events:] if events else mine}


def _steps(spec: RolloutSpec, st: RolloutState) -> list[tuple[str, str, str, str]]:
    """(step, weight, pause, status) rows: the pre-traffic check first (when asked), the
    promotion last."""
    rows = []
    if spec.pre_traffic:
        runs = [a for a in st.analyses if a.get("step") == PRE_TRAFFIC_STEP]
        status = f"[{runs[-1]['verdict']}]" if runs else \
            "" if st.phase in ("Pending", "Progressing") else "skipped"
        rows.append(("0", "pre-traffic (0%)", f"{spec.pre_traffic} requests", status))
    for i, step in enumerate(spec.steps):
        runs = [a for a in st.analyses if a.get("step") == i]
        verdict = runs[-1]["verdict"] if runs else ""
        if step.analysis and not runs and (i < st.step or st.phase in ("Promoted",
                                                                        "Succeeded")):
            where = "skipped"  # promoted by an operator before it ran
        elif i < st.step or st.phase in ("Promoted", "Succeeded"):
            where = "done"
        elif i == st.step and st.phase == "Progressing":
            where = "current"
        elif i == st.step and st.phase in ("Ending", *FAILURES, UNDONE):
            # no weights set yet: rolled back before it (the pre-traffic check, an abort)
            where = "rolled back here" if st.step_started_at is not None else "not reached"
        else:
            where = "" if st.phase in ("Pending", "Progressing") else "skipped"
        label = "preview (smoke)" if step.smoke else f"{step.weight}%"
        rows.append((str(i + 1), label, f"{step.pause_s:g}s",
                     " ".join(x for x in (where, verdict and f"[{verdict}, {len(runs)} run(s)]")
                              if x)))
    promoted = st.phase in ("Promoted", "Succeeded")
    rows.append(("→", "100%", f"keep old {spec.keep_old_s:g}s", "done" if promoted else ""))
    return rows


def _checks(st: RolloutState) -> list[tuple[str, str, str, str, str]]:
    if not st.analyses:
        return []
    last = st.analyses[-1]
    out = []
    for c in last.get("checks", []):
        value = "" if c.get("value") is None else f"{c['value']:.4g}"
        threshold = "" if c.get("threshold") is None else f"{c['threshold']:.4g}"
        out.append((c["name"], c["verdict"], value, threshold, c.get("detail", "")))
    return out


def _weights(st: RolloutState, effective: dict[str, int] | None) -> str:
    """The weights the router was told, and what the data plane does when that differs (a
    replica-ratio split, an HPA that added stable pods)."""
    told = ", ".join(f"{s} {w}%" for s, w in st.weights.items()) or "unchanged"
    if effective and any(effective.get(s, 0) != w for s, w in st.weights.items()):
        told += " (effective now: " + ", ".join(f"{s} {w}%" for s, w in
                                                 sorted(effective.items())) + ")"
    return told


def plain(doc: dict[str, Any]) -> str:
    if doc.get("spec") is None:
        effective = doc.get("effective_weights")
        now = ", ".join(f"{s} {w}%" for s, w in sorted(effective.items())) if effective else ""
        return f"release {doc['release']}: no rollout yet" + (f"; traffic {now}" if now else "")
    spec, st = RolloutSpec.from_dict(doc["spec"]), RolloutState.from_dict(doc["state"])
    weights = _weights(st, doc.get("effective_weights"))
    lines = [f"release {doc['release']}: {spec.strategy} {spec.stable_version} "
             f"(slot {spec.stable_slot}) → {spec.canary_version} (slot {spec.canary_slot})",
             f"phase {st.phase}; weights {weights}; controller "
             f"{doc.get('controller') or 'not running'}",
             f"  {st.message}", "steps:"]
    lines += [f"  {n:>2} {w:>16} {p:>16}  {s}" for n, w, p, s in _steps(spec, st)]
    checks = _checks(st)
    if checks:
        lines.append(f"latest analysis (window {st.analyses[-1].get('window', '?')}):")
        lines += [f"  {name:<17} {verdict:<12} {detail}" for name, verdict, _, _, detail
                  in checks]
    if doc.get("events"):
        lines.append("events:")
        lines += [f"  {time.strftime('%H:%M:%S', time.localtime(e['at']))} {e['type']:<7} "
                  f"{e['reason']}: {e['message']}" for e in doc["events"][-8:]]
    return "\n".join(lines)


def _table(doc: dict[str, Any]) -> Any:
    from rich.console import Group
    from rich.table import Table

    if doc.get("spec") is None:
        return f"release {doc['release']}: no rollout yet"
    spec, st = RolloutSpec.from_dict(doc["spec"]), RolloutState.from_dict(doc["state"])
    head = Table.grid(padding=(0, 2))
    head.add_row("release", doc["release"], "phase", f"[bold]{st.phase}[/]")
    head.add_row("from", f"{spec.stable_version} ({spec.stable_slot})", "to",
                 f"{spec.canary_version} ({spec.canary_slot})")
    head.add_row("weights", _weights(st, doc.get("effective_weights")),
                 "controller", doc.get("controller") or "not running")
    head.add_row("", st.message)
    steps = Table(title="steps")
    for col in ("#", "weight", "pause", "status"):
        steps.add_column(col)
    for row in _steps(spec, st):
        steps.add_row(*row)
    checks = Table(title="latest analysis")
    for col in ("check", "verdict", "value", "threshold", "numbers"):
        checks.add_column(col)
    for name, verdict, value, threshold, detail in _checks(st):
        style = {"fail": "red", "pass": "green"}.get(verdict, "yellow")
        checks.add_row(name, f"[{style}]{verdict}[/]", value, threshold, detail)
    events = Table(title="events")
    for col in ("time", "type", "reason", "message"):
        events.add_column(col)
    for e in doc.get("events", [])[-8:]:
        events.add_row(time.strftime("%H:%M:%S", time.localtime(e["at"])), e["type"],
                       e["reason"], e["message"])
    return Group(head, steps, checks, events)


def live(fetch: Callable[[], dict[str, Any]], refresh_s: float = 1.0) -> None:
    """Redraw until the rollout is over (or there is none) or Ctrl-C."""
    from rich.live import Live

    doc = fetch()
    with Live(_table(doc), refresh_per_second=4, screen=False) as view:
        try:
            while doc.get("state") and not RolloutState.from_dict(doc["state"]).done:
                time.sleep(refresh_s)
                doc = fetch()
                view.update(_table(doc))
        except KeyboardInterrupt:
            pass
