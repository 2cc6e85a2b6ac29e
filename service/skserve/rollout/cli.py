"""`skserve up|down` and `skserve rollout start|status|promote|abort|undo|controller`.

Two targets with the same commands: `--local` (the stack of `skserve up`, class `Local`) and
a helm release on a cluster (the default; kube_target.Cluster). Each gives the generic code
below its store, router, slots, versions and settings.

Exit codes: 0 done (promoted, undone, or a command carried out), 2 bad input, 4 the rollout
failed or was aborted (rolled back), 5 something it needs (HAProxy, Prometheus, the stack,
the cluster, the lease) is missing or busy.
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
from ..extras import KUBE, SERVE, require
from . import analysis, routers, state
from .store import Conflict, LocalStore

EPILOG = """\
examples, one machine:
  skserve up --slot blue=demand:v1                 # HAProxy + Prometheus + one server
  skserve loadtest --host http://127.0.0.1:PORT --duration 5m &
  skserve rollout start --local --to demand:v2     # canary 10 → 25 → 50 → 100
  skserve rollout start --local --to demand:v2 --strategy blueGreen --preview 1m
  skserve rollout status --local                   # live table on a terminal
  skserve rollout promote|abort|undo --local
  skserve down

examples, a helm release on a cluster (kubeconfig, or a pod's service account):
  skserve rollout start -n prod --release demand --to demand:v2 \\
      --prometheus http://127.0.0.1:9090           # runs here (Ctrl-C: resume later)
  skserve rollout start -n prod --release demand --to demand:v2 --detach
                                                   # the chart's in-cluster controller runs it
  skserve rollout status -n prod --release demand
  skserve rollout promote|abort|undo -n prod --release demand
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
    start.add_argument("--to", help="the new model version (name:version: in the model store "
                       "locally; on a cluster the SKSERVE_MODEL its image serves)")
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
    start.add_argument("--pre-traffic", type=int, default=50, metavar="N",
                       help="pre-traffic check: N smoke requests (rows drawn from the live "
                       "model's schema) straight to the new version once it is deployed, "
                       "before any user request reaches it; one failure rolls back "
                       "(default 50; 0: off)")
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
                        help="steps advance on time alone (no judging, no pre-traffic "
                        "check)")
    checks.add_argument("--min-samples", type=int, default=50,
                        help="requests (or predictions) a check needs (default 50)")
    checks.add_argument("--min-success-rate", type=float, default=0.99,
                        help="non-5xx share the new version must keep (default 0.99)")
    checks.add_argument("--max-p95-ms", type=float, default=analysis.LATENCY_FLOOR_MS,
                        help="p95 limit, applied with --max-latency-ratio; the p95 is known "
                        "to a histogram bucket (< 10.5 %% wide) and judged on its upper end, "
                        "so one over the limit never passes (default "
                        f"{analysis.LATENCY_FLOOR_MS:g})")
    checks.add_argument("--max-latency-ratio", type=float, default=2.0,
                        help="fail when p95 exceeds both --max-p95-ms and this × the live "
                        "version's p95 (the lower end of its bucket) (default 2)")
    checks.add_argument("--max-prediction-shift", type=float, default=None,
                        help="regressors: largest move of the median prediction, in the "
                        "target's units (default: twice the live model's hold-out RMSE)")
    checks.add_argument("--max-psi", type=float, default=0.25,
                        help="population stability index limit on the predicted values "
                        "(regressors) or the predicted classes' mix (classifiers; "
                        "default 0.25)")
    checks.add_argument("--max-out-of-range", type=float, default=0.05,
                        help="extra out-of-range input values per row over the live "
                        "version (default 0.05)")
    checks.add_argument("--selector", default=analysis.DEFAULT_SELECTOR,
                        help="PromQL label matchers of a slot's series ({slot}, {version}; "
                        "default %(default)s)")
    _cluster_rollout_args(start)
    start.add_argument("--lease-ttl", type=_seconds, default=15.0,
                       help="a controller that stops renewing its lease (killed) blocks "
                       "another this long (default 15s)")
    start.add_argument("--detach", action="store_true",
                       help="locally: run the controller in the background; on a cluster: "
                       "record the rollout and leave it to the in-cluster controller "
                       "(rolloutController.deployment). Follow with status")
    start.set_defaults(func=cmd_start)

    controller = sub.add_parser(
        "controller", help="run as a release's controller: every rollout, as it comes",
        description="Wait for rollouts of the release (recorded by `skserve rollout start "
        "--detach` or by promote/abort/undo) and run each to its end, holding the "
        "release's lease while it acts: any number of controllers may run, one acts. "
        "The chart's rolloutController.deployment runs this in the cluster. Stops on "
        "SIGTERM (the lease is released at once).")
    _target_args(controller)
    _cluster_rollout_args(controller)
    controller.add_argument("--poll", type=_seconds, default=2.0,
                            help="seconds between looks at the release (default 2s)")
    controller.add_argument("--lease-ttl", type=_seconds, default=15.0,
                            help="lease duration (default 15s)")
    controller.set_defaults(func=cmd_controller)

    status = sub.add_parser("status", help="steps, weights, verdicts and their numbers",
                            description="A live table on a terminal (until the rollout "
                            "ends or Ctrl-C); plain text or --json otherwise.")
    _target_args(status)
    status.add_argument("--once", action="store_true", help="print once, even on a terminal")
    status.add_argument("--events", type=int, default=15, metavar="N",
                        help="how many of the rollout's latest events --json gives "
                        "(default 15; 0: all of them)")
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
    where = p.add_argument_group("where: a helm release on a cluster (default) or --local")
    where.add_argument("--local", action="store_true",
                       help="the local stack of `skserve up` instead of a cluster")
    where.add_argument("--release", default=None,
                       help="release name (cluster: the helm release, env SKSERVE_RELEASE, "
                       "default skserve; local: the stack's)")
    where.add_argument("-n", "--namespace", default=os.environ.get("SKSERVE_NAMESPACE"),
                       help="cluster: the release's namespace (env SKSERVE_NAMESPACE; "
                       "default: the kubeconfig context's, or the pod's own)")
    where.add_argument("--context", default=None,
                       help="cluster: kubeconfig context (default: the current one; in a "
                       "pod without --context/--kubeconfig: its service account)")
    where.add_argument("--kubeconfig", default=None,
                       help="cluster: kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    _dir_args(where)
    p.add_argument("--json", action="store_true", help="machine output on stdout")


def _cluster_rollout_args(p: argparse.ArgumentParser) -> None:
    c = p.add_argument_group("cluster (recorded with the rollout; defaults from the chart)")
    c.add_argument("--image", default=None,
                   help="image of the new version (default: <live image's repository>:"
                   "<name>-<version>, what `make image MODEL=...` builds; name an image "
                   "that carries several models to switch models only)")
    c.add_argument("--router", default=None, choices=sorted(routers.CHART_NAMES),
                   help="how traffic moves (default: the chart's rollout.router)")
    c.add_argument("--prometheus", default=os.environ.get("SKSERVE_PROMETHEUS_URL"),
                   help="Prometheus scraping the slots' pods with the chart's relabelling "
                   "(env SKSERVE_PROMETHEUS_URL; the in-cluster controller's own wins)")
    c.add_argument("--scrape-interval", type=_seconds, default=None,
                   help="that Prometheus' scrape interval: analysis windows are at least "
                   "three of them (default 15s, the chart's monitors')")
    c.add_argument("--total-replicas", type=int, default=None,
                   help="service router: pods shared out by weight in a canary (default: "
                   "the chart's rollout.serviceRouter.totalReplicas)")
    c.add_argument("--mirror-percent", type=int, default=None,
                   help="gatewayAPI: mirror this share of requests to a slot at weight 0 "
                   "(a blue-green preview judged on shadow traffic; default: the chart's)")
    c.add_argument("--haproxy-runtime", default=None,
                   help="haproxy: runtime API address host:port (default: the chart's "
                   "headless admin Service, reachable in the cluster)")


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

        self.args = args
        self.root = stack.stack_dir(args.dir)
        found = stack.Stack(self.root)
        self.stack = found.require() if need_stack else found.read()
        if not self.stack:
            found.require()  # raises, saying how to start one
        self.release = args.release or self.stack.get("release", "local")
        self.store = LocalStore(self.root / "rollouts")

    def where(self) -> str:
        return f"the local stack in {self.root}"

    def router(self, doc: dict[str, Any] | None = None) -> Any:
        from .stack import router_for

        return router_for(self.stack)

    def serving(self) -> dict[str, str]:
        return {s: e["model"] for s, e in self.stack["slots"].items()}

    def weights(self) -> dict[str, int]:
        return self.router().get_weights()

    def resolve(self, model: str) -> str:
        from .. import store

        return store.get_info(model).tag

    def stable_model(self, stable_slot: str) -> tuple[str, float | None]:
        """(task, hold-out RMSE or None) of the live version, from its stored metadata."""
        from .. import store

        meta = store.get_info(self.serving()[stable_slot]).metadata
        return meta.get("task") or "regression", (meta.get("metrics") or {}).get("rmse")

    def smoke_rows(self, spec: state.RolloutSpec) -> list[bytes]:
        from .. import store
        from ..loadtest.sampling import RowPool

        features = [f.__dict__ for f in store.get_info(spec.stable_version).schema.features]
        return RowPool.from_schema(features, seed=0, size=256).encoded

    def doc_extras(self, spec: state.RolloutSpec) -> dict[str, Any]:
        return {}

    def selector_default(self) -> str:
        return analysis.DEFAULT_SELECTOR

    def controller(self, doc: dict[str, Any], rows: Any, selector: str,
                   on_event: Any = None) -> Any:
        require("skserve rollout --local", *SERVE)  # the slots' servers, httpx for Prometheus
        from . import stack
        from .controller import Controller
        from .prometheus import Prometheus

        return Controller(self.release, self.store, stack.router_for(self.stack),
                          stack.LocalSlots(self.root), Prometheus(self.stack["prometheus_url"]),
                          smoke_rows=rows, selector=selector, on_event=on_event,
                          min_window_s=3 * self.stack.get("scrape_interval_s", 10.0))

    def live_weights(self, doc: dict[str, Any] | None) -> dict[str, int] | None:
        try:
            return self.router(doc).get_weights() if self.stack.get("haproxy") else None
        except Unavailable:
            return None

    def detach(self) -> int:
        from .stack import spawn

        argv = [sys.executable, "-m", "skserve.cli", "rollout", "start", "--local",
                "--dir", str(self.root), "--release", self.release,
                "--lease-ttl", f"{self.args.lease_ttl:g}s"]
        proc = spawn(argv, self.root / "logs" / f"rollout-{self.release}.log")
        say(f"controller running in the background (pid {proc['pid']}); follow it with: "
            f"skserve rollout status --local --dir {self.root}")
        return 0


def _target(args: argparse.Namespace, need_stack: bool = True) -> Any:
    """`Local` with --local, else the cluster release (kube_target.Cluster)."""
    if args.local:
        return Local(args, need_stack)
    require("skserve rollout on a cluster", *KUBE)
    from .kube_target import Cluster

    return Cluster(args)


def _templates(args: argparse.Namespace, target: Any, stable_slot: str) -> list[dict[str, Any]]:
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
    task, rmse = target.stable_model(stable_slot)
    if shift is None and task != "classification":
        if not rmse:
            raise InvalidInput(f"the live version in slot {stable_slot} has no hold-out RMSE "
                               "in its metadata: pass --max-prediction-shift in the target's "
                               "units")
        shift = 2 * float(rmse)
    interval = args.interval
    templates = analysis.default_templates(shift, interval, args.min_samples, task)
    overrides = {"success-rate": args.min_success_rate, "latency-p95": args.max_p95_ms,
                 "prediction-psi": args.max_psi, "class-mix": args.max_psi,
                 "out-of-range": args.max_out_of_range}
    out = []
    for t in templates:
        d = t.to_dict()
        d["threshold"] = overrides.get(t.name, d["threshold"])
        if t.name == "latency-p95":
            d["vs_stable"] = args.max_latency_ratio
        out.append(analysis.MetricTemplate.from_dict(d).to_dict())
    return out


def _new_spec(args: argparse.Namespace, target: Any) -> state.RolloutSpec:
    weights = target.weights()
    serving = target.serving()
    stable_slot = max((s for s in weights if s in serving), key=lambda s: weights[s],
                      default=None)
    if stable_slot is None:
        raise Unavailable(f"no slot of {target.where()} is serving"
                          + (": skserve up --slot blue=MODEL" if args.local else ""))
    canary_slot = next((s for s in weights if s != stable_slot), None)
    if canary_slot is None:
        raise InvalidInput(f"{target.where()} has no second slot to deploy into")
    canary = target.resolve(args.to)
    if canary == serving[stable_slot]:
        raise InvalidInput(f"{canary} already serves in slot {stable_slot}")
    if args.strategy == state.CANARY:
        steps = state.canary_steps(args.steps, args.pause, not args.no_analysis)
    else:
        steps = state.blue_green_steps(args.preview, args.smoke, not args.no_analysis)
    return state.RolloutSpec(
        release=target.release, strategy=args.strategy, stable_slot=stable_slot,
        stable_version=serving[stable_slot], canary_slot=canary_slot, canary_version=canary,
        steps=steps, interval_s=args.interval, max_inconclusive=args.max_inconclusive,
        keep_old_s=args.keep_old, analysis=tuple(_templates(args, target, stable_slot)),
        pre_traffic=0 if args.no_analysis else args.pre_traffic)


def cmd_start(args: argparse.Namespace) -> int:
    target = _target(args)
    record = target.store.read(target.release)
    active = record is not None and not state.RolloutState.from_dict(record.doc["state"]).done
    if active:
        spec = state.RolloutSpec.from_dict(record.doc["spec"])
        if args.to and args.to not in (spec.canary_version, spec.canary_version.split(":")[0]) \
                and target.resolve(args.to) != spec.canary_version:
            raise InvalidInput(f"release {target.release!r} is still rolling out "
                               f"{spec.canary_version}: finish, promote or abort it first")
        if not args.local and args.detach:
            say(f"the rollout of {target.release} to {spec.canary_version} is recorded; the "
                "in-cluster controller runs it")
            return 0
        if args.local:
            _wait_for_lease(target, args.lease_ttl)
        say(f"resuming the rollout of {target.release} to {spec.canary_version}")
    else:
        if not args.to:
            raise InvalidInput("--to MODEL is required to start a rollout")
        spec = _new_spec(args, target)
        selector = args.selector if args.selector != analysis.DEFAULT_SELECTOR or args.local \
            else target.selector_default()
        doc = {"spec": spec.to_dict(), "state": state.RolloutState().to_dict(),
               "command": None, "smoke_selector": selector, **target.doc_extras(spec)}
        try:
            target.store.write(target.release, doc, record.version if record else None)
        except Conflict:
            raise Unavailable("another rollout was started at the same time") from None
        say(f"rollout of {target.release}: {spec.stable_version} (slot {spec.stable_slot}) → "
            f"{spec.canary_version} (slot {spec.canary_slot}), {spec.strategy}, "
            f"{len(spec.steps)} step(s)")
    if args.detach:
        if args.local:
            return target.detach()
        say(f"recorded; the in-cluster controller runs it (follow with: skserve rollout "
            f"status -n {args.namespace or target.kube.namespace} --release {target.release})")
        return 0
    return _run(target, json_out=args.json, lease_ttl_s=args.lease_ttl)


def _wait_for_lease(target: Any, ttl_s: float) -> None:
    """A controller killed with kill -9 leaves its lease until it expires; a live one keeps
    renewing it, and then this is an error."""
    holder = target.store.lease_holder(target.release)
    if holder is None:
        return
    say(f"waiting up to {ttl_s + 2:g}s for the lease of controller {holder} (stopped or "
        "killed?) to expire")
    deadline = time.monotonic() + ttl_s + 2
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if target.store.lease_holder(target.release) is None:
            return
    raise Unavailable(f"a controller ({target.store.lease_holder(target.release)}) is running "
                      "this rollout: follow it with skserve rollout status"
                      + (" --local" if target.args.local else ""))


def _show(event: dict[str, Any]) -> None:
    say(f"{time.strftime('%H:%M:%S', time.localtime(event['at']))} {event['reason']}: "
        f"{event['message']}")


def _controller(target: Any, lease_ttl_s: float, on_event: Any = _show) -> Any:
    record = target.store.read(target.release)
    if record is None:
        raise InvalidInput(f"release {target.release!r} has no rollout")
    doc = record.doc
    spec = state.RolloutSpec.from_dict(doc["spec"])
    selector = doc.get("smoke_selector") or target.selector_default()
    controller = target.controller(doc, target.smoke_rows(spec), selector, on_event=on_event)
    controller.lease_ttl_s = lease_ttl_s
    return controller


def _finish(target: Any, final: state.RolloutState, json_out: bool) -> int:
    if json_out:
        print(json.dumps({"release": target.release, "phase": final.phase,
                          "message": final.message, "weights": final.weights}))
    if final.failed:
        raise RolloutFailed(f"{final.phase}: {final.message}")
    say(f"{final.phase}: {final.message}")
    return 0


def _run(target: Any, json_out: bool = False, lease_ttl_s: float = 15.0) -> int:
    """Run the controller here; on a cluster, follow the controller that holds the lease
    instead when there is one."""
    holder = None if target.args.local else target.store.lease_holder(target.release)
    if holder is not None:
        say(f"controller {holder} runs this rollout; following it")
        return _follow(target, json_out)
    try:
        final = _controller(target, lease_ttl_s).run()
    except Unavailable as exc:
        if target.args.local or "holds the lease" not in str(exc):
            raise
        say(f"{exc}: following it")  # e.g. the in-cluster controller took over
        return _follow(target, json_out)
    return _finish(target, final, json_out)


def _follow(target: Any, json_out: bool, timeout_s: float = 3600.0,
            name: str | None = None) -> int:
    """Print the rollout's new events until it is over (or, for `name` = promote, until a
    controller has taken the command)."""
    seen = {json.dumps(e, sort_keys=True, default=str)
            for e in target.store.events(target.release)}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for event in target.store.events(target.release):
            key = json.dumps(event, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                _show(event)
        rec = target.store.read(target.release)
        st = state.RolloutState.from_dict(rec.doc["state"])
        taken = rec.doc.get("command") is None
        if (name == "promote" and taken) or (taken and st.done):
            return _finish(target, st, json_out)
        time.sleep(1.0)
    raise Unavailable(f"the rollout of {target.release!r} did not end within "
                      f"{timeout_s:g} s (still running: follow it with status)")


def cmd_command(args: argparse.Namespace) -> int:
    target = _target(args)
    name = args.command_name
    for _ in range(50):
        record = target.store.read(target.release)
        if record is None:
            raise InvalidInput(f"release {target.release!r} has no rollout to {name}")
        doc = {**record.doc, "command": {"name": name, "at": time.time()}}
        try:
            target.store.write(target.release, doc, record.version)
            break
        except Conflict:
            time.sleep(0.05)
    else:
        raise Unavailable("the rollout document kept changing; try again")
    holder = target.store.lease_holder(target.release)
    if holder is None:  # no controller running: carry the command out here
        say(f"{name}: no controller is running; carrying it out")
        try:
            return _finish(target, _controller(target, 15.0).run(), args.json)
        except Unavailable as exc:
            if "holds the lease" not in str(exc):
                raise
            holder = target.store.lease_holder(target.release)  # one took it meanwhile
    say(f"{name}: sent to the running controller ({holder}); waiting")
    return _follow(target, args.json, timeout_s=600.0, name=name)


def cmd_controller(args: argparse.Namespace) -> int:
    """Run every rollout of the release as it comes, until SIGTERM."""
    if args.local:
        raise InvalidInput("`skserve rollout controller` runs against a cluster release; "
                           "locally, `skserve rollout start --local` is the controller")
    require("skserve rollout controller", *KUBE)
    from .kube_target import Cluster

    stopping: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        stopping.append(signum)
        raise SystemExit(0)  # the controller's `finally` releases the lease

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    target = Cluster(args, on_call=lambda g, r, v: say(f"rbac: {v} {g or 'core'}/{r}"))
    say(f"controller for {target.where()}: waiting for rollouts")
    idle_note = None
    while not stopping:
        record = target.store.read(target.release)
        st = state.RolloutState.from_dict(record.doc["state"]) if record else None
        command = (record.doc.get("command") or {}).get("name") if record else None
        if st is not None and (not st.done or command):
            try:
                final = _controller(target, args.lease_ttl).run()
                say(f"rollout of {target.release}: {final.phase}: {final.message}")
                idle_note = None
            except Unavailable as exc:  # another controller acts, or an edge kept failing
                if idle_note != str(exc):
                    say(f"standing by: {exc}")
                    idle_note = str(exc)
            except RolloutFailed as exc:
                say(str(exc))
        time.sleep(args.poll)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .status import document, live, plain

    target = _target(args, need_stack=False)  # locally the record outlives `skserve down`

    def fetch() -> dict[str, Any]:
        doc = document(target.store, target.release, events=max(args.events, 0))
        if doc.get("spec") is not None or not args.local:
            record = target.store.read(target.release)
            doc["effective_weights"] = target.live_weights(record.doc if record else None)
        return doc

    doc = fetch()
    if args.json:
        print(json.dumps(doc, default=str))
    elif sys.stdout.isatty() and not args.once:
        live(fetch)
    else:
        try:
            print(plain(doc), flush=True)
        except BrokenPipeError:  # `status | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
