"""How fast a bad canary is rolled back, and how much traffic it got first (`make bench-rollout`).

On the local stack (`skserve up`: a server per slot, HAProxy, Prometheus) with `skserve
loadtest` sending traffic through HAProxy, one canary per bad model of tests/badmodels.py
(and a good retrain as the control), each with the same short steps. Per rollout: the
seconds from the first step's weights to the end of the rollback (weights back, canary
scaled down), the requests that reached the new version (its own request counter in
Prometheus, warm-up included) and the check that decided. Prints a table and replaces the
`## Rollouts` section of BENCHMARKS.md.

`--from-e2e reports/e2e/rollouts.json` instead renders what the cluster's rollout suite
(`make e2e`, tests/e2e/test_rollouts.py) measured, per router, into `## Rollouts on the
local cluster` (the cluster run is too long to repeat here just for a table); `--before
JSON "LABEL"` adds an earlier run's report below it, for a before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SECTION = "Rollouts"
CLUSTER_SECTION = "Rollouts on the local cluster"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8, help="Locust users (default 8)")
    parser.add_argument("--pause", default="10s", help="time per canary step (default 10s)")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    parser.add_argument("--from-e2e", type=Path, metavar="JSON",
                        help="render the cluster suite's reports/e2e/rollouts.json instead "
                        "of running the local stack")
    parser.add_argument("--before", nargs=2, metavar=("JSON", "LABEL"),
                        help="with --from-e2e: an earlier run's rollouts.json and what it "
                        "was (e.g. a commit), rendered below for comparison")
    args = parser.parse_args()
    if args.from_e2e:
        before = (Path(args.before[0]), args.before[1]) if args.before else None
        return from_e2e(args.from_e2e, write=not args.no_write, before=before)
    home = Path(tempfile.mkdtemp(prefix="skserve-bench-rollout-"))
    os.environ["BENTOML_HOME"] = str(home)
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    from skserve.console import set_thread_env

    set_thread_env()
    from skserve.loadtest.harness import markdown_table, write_benchmark_section

    versions = train(home)
    skserve = str(Path(sys.executable).with_name("skserve"))
    root = home / "stack"
    up = subprocess.run([skserve, "up", "--slot", f"blue={versions['live']}", "--dir",
                         str(root), "--detach", "--json"], capture_output=True, text=True)
    if up.returncode:
        print(up.stderr, file=sys.stderr)
        return up.returncode
    stack = json.loads(up.stdout)
    load = subprocess.Popen([skserve, "loadtest", "--host", stack["url"], "--users",
                             str(args.users), "--duration", "10m", "--mix", "predict=1",
                             "--report-dir", str(home / "loadtest")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # its Locust child goes with it
    rows = []
    try:
        time.sleep(5)
        # the failing version twice: the pre-traffic check rolls it back before any step;
        # with that check off, the live success-rate check does
        for name, more in (("failing", ()), ("failing", ("--pre-traffic", "0")),
                           ("slow", ()), ("shifted", ()), ("good", ())):
            rows.append(run_one(skserve, root, stack, name, versions[name], args.pause,
                                *more))
            print(rows[-1], file=sys.stderr)
    finally:
        os.killpg(load.pid, signal.SIGTERM)
        load.wait(60)
        subprocess.run([skserve, "down", "--dir", str(root)], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    columns = ["version", "outcome", "first step → end s", "requests to it", "decided by"]
    table = markdown_table(rows, columns, {"first step → end s": ".1f"})
    print(table)
    if not args.no_write:
        text = (f"`make bench-rollout`: `skserve up` (one `skserve serve` per slot, 1 worker; "
                f"HAProxy; Prometheus scraping every 1 s) with `skserve loadtest` ({args.users} "
                f"users, /predict) through HAProxy; canary steps 20 → 50 → 100 %, "
                f"{args.pause} each, analysis every 2 s, default checks (the pre-traffic check "
                f"first).\n\n{table}\n\n"
                "- *first step → end*: from the event that set the first step's weights to "
                "the rollout's last event (weights back, canary scaled down, router at rest); "
                "for the good version, to the end of promotion; empty when the pre-traffic "
                "check rolled it back before any step.\n"
                "- *requests to it*: the new version's own request counter (Prometheus), "
                "including the 20 warm-up and 50 pre-traffic requests sent before its first "
                "step (HAProxy retries a smoke request that failed on the slot its version "
                "header picks, so a failing version counts more). HAProxy "
                "retries a failed prediction once on the other slot, so few of the failing "
                "version's errors reach clients.")
        write_benchmark_section(REPO / "BENCHMARKS.md", SECTION, text)
        print(f"wrote the {SECTION!r} section of BENCHMARKS.md", file=sys.stderr)
    return 0


E2E_COLUMNS = ["router", "version", "outcome", "decided by", "first verdict s",
               "first step → end s", "requests to it", "client requests (failed)",
               "failed while exposed"]


def _first_verdict_s(r: dict) -> float | None:
    """Seconds from the first step's weights to its first analysis verdict (the timeline's
    zero is that step; None when no step started or no timeline was recorded)."""
    if r.get("first_step_to_rollback_s") is None:
        return None
    return next((at for reason, at in r.get("timeline") or []
                 if reason.startswith("Analysis")), None)


def e2e_table(path: Path) -> str | None:
    """The rollouts of one rollouts.json as a markdown table; None (said why) if unreadable
    or empty."""
    from skserve.loadtest.harness import markdown_table

    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        print(f"{path}: {exc} (run `make e2e` first)", file=sys.stderr)
        return None
    rows = []
    for r in report.get("rollouts", []):
        exposed = r.get("while_exposed") or {}
        rows.append({"router": r["router"], "version": r["version"], "outcome": r["outcome"],
                     "decided by": ", ".join(r.get("decided_by") or []) or "all checks passed",
                     "first verdict s": _first_verdict_s(r),
                     "first step → end s": r.get("first_step_to_rollback_s"),
                     "requests to it": r.get("requests_to_bad_version"),
                     "client requests (failed)": f"{r['requests']} ({r['failures']})",
                     "failed while exposed": (
                         None if not exposed else "no step: never exposed"
                         if r.get("first_step_to_rollback_s") is None
                         else f"{exposed['failures']} of {exposed['requests']}")})
    if not rows:
        print(f"{path}: no rollouts recorded", file=sys.stderr)
        return None
    return markdown_table(rows, E2E_COLUMNS, {"first step → end s": ".1f",
                                              "first verdict s": ".1f"})


def from_e2e(path: Path, write: bool, before: tuple[Path, str] | None = None) -> int:
    """The cluster suite's measured rollouts as a table (and BENCHMARKS.md section), with
    an earlier run's below it when `before` = (its rollouts.json, what it was)."""
    from skserve.loadtest.harness import write_benchmark_section

    table = e2e_table(path)
    if table is None:
        return 2
    print(table)
    earlier = ""
    if before is not None:
        old = e2e_table(before[0])
        if old is None:
            return 2
        earlier = f"\n\nBefore ({before[1]}):\n\n{old}"
    if write:
        text = ("`make e2e` (tests/e2e/test_rollouts.py), then `python loadtest/bench_rollout.py "
                "--from-e2e reports/e2e/rollouts.json`: the chart on the local single-node "
                "cluster (both slots 1 worker per pod; the `service` router splits by pods, 1 "
                "of 4 for the canary; the in-cluster HAProxy by weight, 10 %), the controller "
                "in the cluster, Prometheus scraping every 1 s, Locust (8 users, /predict) "
                "through the stable Service; the pre-traffic check (50 smoke requests to the "
                "new slot alone), then canary step then 100 %, 20 s, analysis every "
                f"2 s.\n\n{table}{earlier}\n\n"
                "- *failing (live check only)*: the failing version again with "
                "`--pre-traffic 0`: the live success-rate check rolls it back.\n"
                "- *first verdict*: from the event that set the first step's weights to the "
                "first analysis verdict (the first run is due after one interval, 2 s).\n"
                "- *first step → end*: from the event that set the first step's weights to the "
                "rollout's last event (weights back, canary scaled down); empty when the "
                "pre-traffic check rolled it back before any step.\n"
                "- *requests to it*: the new version's own request counter (Prometheus), "
                "warm-up and pre-traffic smoke requests included.\n"
                "- *client requests (failed)*: Locust's, from `rollout start` to 3 s after the "
                "rollout's last event; *failed while exposed*: from the first step to the same "
                "end (the `service` router has no retry: a quarter of the pods answer from the "
                "failing version; HAProxy retries on the live slot).\n"
                "- *good*: the acting controller pod is deleted mid-step (a standby resumes) "
                "and `helm upgrade` runs mid-step; *live (blueGreen)*: run from this machine "
                "through the API server, a switch back to the first version.")
        write_benchmark_section(REPO / "BENCHMARKS.md", CLUSTER_SECTION, text)
        print(f"wrote the {CLUSTER_SECTION!r} section of BENCHMARKS.md", file=sys.stderr)
    return 0


def train(home: Path) -> dict[str, str]:
    from skserve import store
    from skserve.train import model_metadata, select_model
    from tests import badmodels
    from tests.conftest import small_dataset

    data = small_dataset()
    selection = select_model(data, seed=7, n_iter=1, holdout_weeks=1, cv_splits=2)
    live = store.save("demand", selection.pipeline, model_metadata(selection, data, 7),
                      {"dataset": data.name, "family": selection.winner.model},
                      version="live").tag
    return {"live": live, "good": badmodels.save_retrained(data, live),
            "failing": badmodels.save_failing(data), "slow": badmodels.save_slow(data),
            "shifted": badmodels.save_shifted(data, 1.5)}


def run_one(skserve: str, root: Path, stack: dict, name: str, tag: str, pause: str,
            *more: str) -> dict:
    from skserve.rollout.prometheus import Prometheus
    from skserve.rollout.store import LocalStore

    store = LocalStore(root / "rollouts")
    before = len(store.events("local"))
    proc = subprocess.run([skserve, "rollout", "start", "--local", "--dir", str(root), "--to",
                           tag, "--steps", "20,50,100", "--pause", pause, "--interval", "2s",
                           "--keep-old", "0s", *more], capture_output=True, text=True)
    events = store.events("local")[before:]
    first = next((e["at"] for e in events if e["reason"] == "StepStarted"), None)
    doc = store.read("local").doc
    failed = [c["name"] for a in doc["state"]["analyses"] if a["verdict"] == "fail"
              for c in a["checks"] if c["verdict"] == "fail"]
    canary = doc["spec"]["canary_slot"]
    promql = (f'sum(max_over_time(bentoml_service_request_total{{slot="{canary}",'
              f'model_version="{tag}",endpoint=~"/predict|/predict_batch"}}[15m]))')
    requests = Prometheus(stack["prometheus_url"]).results({"n": promql})["n"]
    return {"version": f"{name} ({tag}{', ' if more else ''}{' '.join(more)})",
            "outcome": doc["state"]["phase"] + f" (exit {proc.returncode})",
            "first step → end s": None if first is None else events[-1]["at"] - first,
            "requests to it": int(requests or 0), "decided by": ", ".join(failed) or
            "all checks passed"}


if __name__ == "__main__":
    sys.exit(main())
