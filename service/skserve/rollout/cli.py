"""`skserve up|down` and `skserve rollout start|status|promote|abort|undo`.

Exit codes: 0 done (promoted, undone, or a command carried out), 2 bad input, 4 the rollout
failed or was aborted (rolled back), 5 something it needs (HAProxy, Prometheus, the stack,
the lease) is missing or busy.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..console import say
from ..errors import InvalidInput, RolloutFailed, Unavailable
from ..extras import SERVE, require
from . import analysis, state
from .store import Conflict, LocalStore

EPILOG = """\
examples:
  skserve up --slot blue=demand:v1                 # HAProxy + Prometheus + one server
  skserve loadtest --host http://127.0.0.1:PORT --duration 5m &
  skserve rollout start --local --to demand:v2     # canary 10 → 25 → 50 → 100
  skserve rollout start --local --to demand:v2 --strategy blueGreen --preview 1m
  skserve rollout status --local                   # live table on a terminal
  skserve rollout promote|abort|undo --local
  skserve down
"""


def _seconds(text: str) -> float:
    from ..loadtest.schedules import parse_duration

    if text.strip() in ("0", "0s"):
        return 0.0
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _weights(text: str) -> list[int]:
    try:
        return [int(w) for w in text.split(",") if w.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--steps takes e.g. 10,25,50,100, not {text!r}"
                                         ) from exc


def _slot(text: str) -> tuple[str, str]:
    slot, sep, model = text.partition("=")
    if not sep or not model:
        raise argparse.ArgumentTypeError(f"--slot takes SLOT=MODEL (e.g. blue=demand:v1), "
                                         f"not {text!r}")
    return slot, model


def register(subparsers: Any) -> None:
    """Add `up`, `down` and `rollout` to skserve's argparse subparsers."""
    up = subparsers.add_parser(
        "up", help="the local rollout stack: a server per slot, HAProxy, Prometheus",
        description="Start one `skserve serve` per slot on free 127.0.0.1 ports, HAProxy in "
        "front (weights and header routes through its runtime API) and Prometheus scraping "
        "every slot, print the URLs, and wait; Ctrl-C or `skserve down` stops every process "
        "it started. The first --slot takes all traffic. Needs Debian's haproxy and "
        "prometheus packages.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    up.add_argument("--slot", type=_slot, action="append", required=True,
                    metavar="SLOT=MODEL", help="blue=MODEL and optionally green=MODEL")
    up.add_argument("--workers", type=int, default=1, help="workers per server (default 1)")
    up.add_argument("--port", type=int, default=None, help="HAProxy's port (default: free)")
    up.add_argument("--scrape-interval", type=_seconds, default=1.0,
                    help="Prometheus scrape interval (default 1s)")
    up.add_argument("--detach", action="store_true",
                    help="return once everything is up (stop it with skserve down)")
    _dir_args(up)
    up.add_argument("--json", action="store_true", help="print the stack as JSON on stdout")
    up.set_defaults(func=cmd_up)

    down = subparsers.add_parser("down", help="stop everything `skserve up` started",
                                 description="Stop every process the local stack recorded "
                                 "(slot servers drain first), and nothing else.")
    _dir_args(down)
    down.set_defaults(func=cmd_down)

    rollout = subparsers.add_parser(
        "rollout", help="canary and blue-green rollouts that judge the model",
        description="Move a release from its live model version to a new one in the idle "
        "slot, step by step, judging the new version against the live one from Prometheus "
        "(success rate, p95 latency, prediction distribution, out-of-range inputs) and "
        "rolling back on its own. State is stored, so a killed controller resumes when "
        "started again.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = rollout.add_subparsers(dest="rollout_command", required=True)
    start = sub.add_parser("start", help="start (or resume) a rollout and run it to its end",
                           description="Start a rollout to --to, or resume the release's "
                           "unfinished one. Exit 0 promoted, 4 rolled back or aborted.")
    _target_args(start)
    start.add_argument("--to", help="the new model version (name:version in the model store)")
    start.add_argument("--strategy", choices=state.STRATEGIES, default=state.CANARY,
                       help="canary (default) or blueGreen")
    start.add_argument("--steps", type=_weights, default=[10, 25, 50, 100],
                       help="canary weights in percent (default 10,25,50,100; 100 = promote)")
    start.add_argument("--pause", type=_seconds, default=60.0,
                       help="time at each canary step (default 60s)")
    start.add_argument("--preview", type=_seconds, default=60.0,
                       help="blueGreen: time in preview before the switch (default 60s)")
    start.add_argument("--smoke", type=int, default=100,
                       help="blueGreen: smoke requests to the preview per analysis run; "
                       "the preview's checks judge these (default 100)")
    start.add_argument("--interval", type=_seconds, default=10.0,
                       help="seconds between analysis runs (default 10s)")
    start.add_argument("--keep-old", type=_seconds, default=300.0,
                       help="keep the old slot this long after promotion for an instant "
                       "undo (default 5m)")
    start.add_argument("--max-inconclusive", type=int, default=3,
                       help="inconclusive analyses after a step's pause before rolling back "
                       "(default 3)")
    checks = start.add_argument_group("analysis (defaults: all five checks)")
    checks.add_argument("--analysis", type=Path, default=None,
                        help="a YAML list of analysis templates replacing the defaults")
    checks.add_argument("--no-analysis", action="store_true",
                        help="steps advance on time alone (no judging)")
    checks.add_argument("--min-samples", type=int, default=50,
                        help="requests (or predictions) a check needs (default 50)")
    checks.add_argument("--min-success-rate", type=float, default=0.99,
                        help="non-5xx share the new version must keep (default 0.99)")
    checks.add_argument("--max-p95-ms", type=float, default=100.0,
                        help="p95 limit, applied with --max-latency-ratio (default 100)")
    checks.add_argument("--max-latency-ratio", type=float, default=2.0,
                        help="fail when p95 exceeds both --max-p95-ms and this × the live "
                        "version's p95 (default 2)")
    checks.add_argument("--max-prediction-shift", type=float, default=None,
                        help="largest quantile move of the predictions, in the target's "
                        "units (default: twice the live model's hold-out RMSE)")
    checks.add_argument("--max-psi", type=float, default=0.25,
                        help="population stability index limit (default 0.25)")
    checks.add_argument("--max-out-of-range", type=float, default=0.05,
                        help="extra out-of-range input values per row over the live "
                        "version (default 0.05)")
    checks.add_argument("--selector", default=analysis.DEFAULT_SELECTOR,
                        help="PromQL label matchers of a slot's series ({slot}, {version}; "
                        "default %(default)s)")
    start.add_argument("--lease-ttl", type=_seconds, default=15.0,
                       help="a controller that stops renewing its lease (killed) blocks "
                       "another this long (default 15s)")
    start.add_argument("--detach", action="store_true",
                       help="run the controller in the background (follow with status)")
    start.set_defaults(func=cmd_start)

    status = sub.add_parser("status", help="steps, weights, verdicts and their numbers",
                            description="A live table on a terminal (until the rollout "
                            "ends or Ctrl-C); plain text or --json otherwise.")
    _target_args(status)
    status.add_argument("--once", action="store_true", help="print once, even on a terminal")
    status.set_defaults(func=cmd_status)
    for name, what in (("promote", "skip the remaining steps (after promotion: scale the "
                                   "old slot down now)"),
                       ("abort", "new slot to weight 0 and scaled down; the rollout "
                                 "fails (exit 4)"),
                       ("undo", "back to the previous version in one step")):
        cmd = sub.add_parser(name, help=what, description=what[0].upper() + what[1:] + ".")
        _target_args(cmd)
        cmd.set_defaults(func=cmd_command, command_name=name)


def _dir_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", type=Path, default=None, help="the stack's folder (env "
                   "SKSERVE_STACK_DIR; default $BENTOML_HOME/stack)")


def _target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--local", action="store_true", required=True,
                   help="the local stack of `skserve up` (the Kubernetes edge comes later)")
    p.add_argument("--release", default=None, help="release name (default: the stack's)")
    _dir_args(p)
    p.add_argument("--json", action="store_true", help="machine output on stdout")


# --- up / down -------------------------------------------------------------------------------

def cmd_up(args: argparse.Namespace) -> int:
    require("skserve up", *SERVE)
    from . import stack

    root = stack.stack_dir(args.dir)
    models = dict(args.slot)
    if len(models) != len(args.slot):
        raise InvalidInput("each --slot may be given once")
    doc = stack.up(models, root, workers=args.workers, port=args.port,
                   scrape_interval_s=args.scrape_interval)
    say(stack.describe(doc))
    if args.json:
        print(json.dumps({k: doc[k] for k in ("url", "prometheus_url", "slots", "release")}))
    if args.detach:
        say(f"detached; stop with: skserve down --dir {root}")
        return 0
    say("Ctrl-C stops everything")
    stopping = []

    def handler(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stopping:
        time.sleep(0.5)
    say(f"stopping {stack.down(root)} process(es)")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from . import stack

    root = stack.stack_dir(args.dir)
    n = stack.down(root)
    say(f"stopped {n} process(es) of the stack in {root}" if n else
        f"nothing running in {root}")
    return 0


# --- rollout ---------------------------------------------------------------------------------

class Local:
    """The local edges for one release: the stack, its store, router and Prometheus."""

    def __init__(self, args: argparse.Namespace, need_stack: bool = True):
        from . import stack

        self.root = stack.stack_dir(args.dir)
        found = stack.Stack(self.root)
        self.stack = found.require() if need_stack else found.read()
        if not self.stack:
            found.require()  # raises, saying how to start one
        self.release = args.release or self.stack.get("release", "local")
        self.store = LocalStore(self.root / "rollouts")

    def controller(self, smoke_rows=(), selector: str = analysis.DEFAULT_SELECTOR,
                   on_event=None):
        require("skserve rollout --local", *SERVE)  # the slots' servers, httpx for Prometheus
        from . import stack
        from .controller import Controller
        from .prometheus import Prometheus

        return Controller(self.release, self.store, stack.router_for(self.stack),
                          stack.LocalSlots(self.root), Prometheus(self.stack["prometheus_url"]),
                          smoke_rows=smoke_rows, selector=selector, on_event=on_event,
                          min_window_s=3 * self.stack.get("scrape_interval_s", 10.0))


def _templates(args: argparse.Namespace, stable_tag: str) -> list[dict[str, Any]]:
    if args.no_analysis:
        return []
    if args.analysis:
        import yaml

        try:
            docs = yaml.safe_load(args.analysis.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInput(f"{args.analysis}: {exc}") from exc
        if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
            raise InvalidInput(f"{args.analysis}: expected a list of analysis templates")
        out = []
        for i, doc in enumerate(docs):
            try:
                out.append(analysis.MetricTemplate.from_dict(doc).to_dict())
            except (InvalidInput, TypeError) as exc:
                raise InvalidInput(f"{args.analysis}, template {i + 1}: {exc}") from None
        return out
    shift = args.max_prediction_shift
    if shift is None:
        from .. import store

        rmse = (store.get_info(stable_tag).metadata.get("metrics") or {}).get("rmse")
        if not rmse:
            raise InvalidInput(f"{stable_tag} has no hold-out RMSE in its metadata: pass "
                               "--max-prediction-shift in the target's units")
        shift = 2 * float(rmse)
    interval = args.interval
    templates = analysis.default_templates(shift, interval, args.min_samples)
    overrides = {"success-rate": args.min_success_rate, "latency-p95": args.max_p95_ms,
                 "prediction-psi": args.max_psi, "out-of-range": args.max_out_of_range}
    out = []
    for t in templates:
        d = t.to_dict()
        d["threshold"] = overrides.get(t.name, d["threshold"])
        if t.name == "latency-p95":
            d["vs_stable"] = args.max_latency_ratio
        out.append(analysis.MetricTemplate.from_dict(d).to_dict())
    return out


def _smoke_rows(tag: str) -> list[bytes]:
    from .. import store
    from ..loadtest.sampling import RowPool

    features = [f.__dict__ for f in store.get_info(tag).schema.features]
    return RowPool.from_schema(features, seed=0, size=256).encoded


def _new_spec(args: argparse.Namespace, local: Local) -> state.RolloutSpec:
    from .. import store
    from .stack import router_for

    weights = router_for(local.stack).get_weights()
    serving = {s: e["model"] for s, e in local.stack["slots"].items()}
    stable_slot = max((s for s in weights if s in serving), key=lambda s: weights[s],
                      default=None)
    if stable_slot is None:
        raise Unavailable("no slot of the stack is serving: skserve up --slot blue=MODEL")
    canary_slot = next(s for s in weights if s != stable_slot)
    canary = store.get_info(args.to).tag
    if canary == serving[stable_slot]:
        raise InvalidInput(f"{canary} already serves in slot {stable_slot}")
    if args.strategy == state.CANARY:
        steps = state.canary_steps(args.steps, args.pause, not args.no_analysis)
    else:
        steps = state.blue_green_steps(args.preview, args.smoke, not args.no_analysis)
    return state.RolloutSpec(
        release=local.release, strategy=args.strategy, stable_slot=stable_slot,
        stable_version=serving[stable_slot], canary_slot=canary_slot, canary_version=canary,
        steps=steps, interval_s=args.interval, max_inconclusive=args.max_inconclusive,
        keep_old_s=args.keep_old, analysis=tuple(_templates(args, serving[stable_slot])))


def cmd_start(args: argparse.Namespace) -> int:
    local = Local(args)
    record = local.store.read(local.release)
    active = record is not None and not state.RolloutState.from_dict(record.doc["state"]).done
    if active:
        spec = state.RolloutSpec.from_dict(record.doc["spec"])
        if args.to and args.to not in (spec.canary_version, spec.canary_version.split(":")[0]):
            from .. import store

            if store.get_info(args.to).tag != spec.canary_version:
                raise InvalidInput(f"release {local.release!r} is still rolling out "
                                   f"{spec.canary_version}: finish, promote or abort it first")
        _wait_for_lease(local, args.lease_ttl)
        say(f"resuming the rollout of {local.release} to {spec.canary_version}")
    else:
        if not args.to:
            raise InvalidInput("--to MODEL is required to start a rollout")
        spec = _new_spec(args, local)
        doc = {"spec": spec.to_dict(), "state": state.RolloutState().to_dict(),
               "command": None, "smoke_selector": args.selector}
        try:
            local.store.write(local.release, doc, record.version if record else None)
        except Conflict:
            raise Unavailable("another rollout was started at the same time") from None
        say(f"rollout of {local.release}: {spec.stable_version} (slot {spec.stable_slot}) → "
            f"{spec.canary_version} (slot {spec.canary_slot}), {spec.strategy}, "
            f"{len(spec.steps)} step(s)")
    if args.detach:
        return _detach(args, local)
    return _run(local, spec, json_out=args.json, lease_ttl_s=args.lease_ttl)


def _wait_for_lease(local: Local, ttl_s: float) -> None:
    """A controller killed with kill -9 leaves its lease until it expires; a live one keeps
    renewing it, and then this is an error."""
    holder = local.store.lease_holder(local.release)
    if holder is None:
        return
    say(f"waiting up to {ttl_s + 2:g}s for the lease of controller {holder} (stopped or "
        "killed?) to expire")
    deadline = time.monotonic() + ttl_s + 2
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if local.store.lease_holder(local.release) is None:
            return
    raise Unavailable(f"a controller ({local.store.lease_holder(local.release)}) is running "
                      "this rollout: follow it with skserve rollout status --local")


def _detach(args: argparse.Namespace, local: Local) -> int:
    from .stack import spawn

    argv = [sys.executable, "-m", "skserve.cli", "rollout", "start", "--local",
            "--dir", str(local.root), "--release", local.release,
            "--lease-ttl", f"{args.lease_ttl:g}s"]
    proc = spawn(argv, local.root / "logs" / f"rollout-{local.release}.log")
    say(f"controller running in the background (pid {proc['pid']}); follow it with: "
        f"skserve rollout status --local --dir {local.root}")
    return 0


def _run(local: Local, spec: state.RolloutSpec, json_out: bool = False,
         lease_ttl_s: float = 15.0) -> int:
    record = local.store.read(local.release)
    selector = (record.doc.get("smoke_selector") if record else None) or \
        analysis.DEFAULT_SELECTOR
    rows = _smoke_rows(spec.stable_version)

    def show(event: dict[str, Any]) -> None:
        say(f"{time.strftime('%H:%M:%S', time.localtime(event['at']))} {event['reason']}: "
            f"{event['message']}")

    controller = local.controller(rows, selector, on_event=show)
    controller.lease_ttl_s = lease_ttl_s
    final = controller.run()
    if json_out:
        print(json.dumps({"release": local.release, "phase": final.phase,
                          "message": final.message, "weights": final.weights}))
    if final.failed:
        raise RolloutFailed(f"{final.phase}: {final.message}")
    say(f"{final.phase}: {final.message}")
    return 0


def cmd_command(args: argparse.Namespace) -> int:
    local = Local(args)
    name = args.command_name
    for _ in range(50):
        record = local.store.read(local.release)
        if record is None:
            raise InvalidInput(f"release {local.release!r} has no rollout to {name}")
        doc = {**record.doc, "command": {"name": name, "at": time.time()}}
        try:
            local.store.write(local.release, doc, record.version)
            break
        except Conflict:
            time.sleep(0.05)
    else:
        raise Unavailable("the rollout document kept changing; try again")
    spec = state.RolloutSpec.from_dict(record.doc["spec"])
    holder = local.store.lease_holder(local.release)
    if holder is None:  # no controller running: carry the command out here
        say(f"{name}: no controller is running; carrying it out")
        return _run(local, spec, json_out=args.json)
    say(f"{name}: sent to the running controller ({holder}); waiting")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        rec = local.store.read(local.release)
        st = state.RolloutState.from_dict(rec.doc["state"])
        if rec.doc.get("command") is None and (name == "promote" or st.done):
            break
        time.sleep(0.5)
    else:
        raise Unavailable(f"the controller did not carry out {name} within 600 s")
    if args.json:
        print(json.dumps({"release": local.release, "phase": st.phase, "message": st.message}))
    if st.failed:
        raise RolloutFailed(f"{st.phase}: {st.message}")
    say(f"{st.phase}: {st.message}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .status import document, live, plain

    local = Local(args, need_stack=False)  # the record outlives `skserve down`
    doc = document(local.store, local.release)
    if args.json:
        print(json.dumps(doc, default=str))
    elif sys.stdout.isatty() and not args.once:
        live(lambda: document(local.store, local.release))
    else:
        try:
            print(plain(doc), flush=True)
        except BrokenPipeError:  # `status | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
