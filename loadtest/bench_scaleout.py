"""Does scale-out share the load? (`make bench-scaleout`)

1. What a reconnect costs (this machine): `skserve serve --workers 1` (pinned to core 1),
   one client sending requests one after another over one keep-alive connection, then with
   `--max-connection-requests 1` (a new connection for every request); the server's CPU per
   request in both, rounds interleaved. The difference is one reconnect's cost; at the
   default max age a connection carries hundreds of requests per reconnect.
2. The scaling curve (the local cluster, when KUBECONFIG reaches one): the chart installed
   in a namespace of its own (one worker per pod, CPU limit one core), host Locust against
   the stable Service, the Deployment scaled 1 → 2 → 3 → 4 while the load runs (as an HPA
   would), once with connection recycling off and once with the default. Per replica count:
   rps, p95, each pod's share of the requests from the pods' own /metrics, how long after
   Ready a new pod reached half its fair share, and the machine's busy cores.

Prints the tables and replaces the `## Scale-out` section of BENCHMARKS.md (--no-write to
leave it). The cluster part cleans up after itself (namespace, release, its image in
containerd); --local-only skips it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SECTION = "Scale-out"
RELEASE, DEPLOYMENT = "skserve", "skserve-blue"
TAIL_S = 10  # load after the last stage, so no window holds Locust winding down


def tool(env: str, *candidates: Path) -> str:
    for c in (os.environ.get(env), *map(str, candidates)):
        if c and os.access(c, os.X_OK):
            return c
    found = shutil.which(Path(candidates[-1]).name)
    if not found:
        raise SystemExit(f"{env}: none of {[str(c) for c in candidates]} found")
    return found


def run(cmd: list[str], timeout: float = 600, **kw: Any) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc.stdout


def say(msg: str) -> None:
    print(f"[bench-scaleout {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ 1. reconnect cost


def reconnect_cost(model: str, out: Path, requests: int, rounds: int) -> list[dict]:
    """One client sending `requests` /predict calls one after another (so every model call
    has one row, whatever the setting), keep-alive vs a new connection for every request
    (`--max-connection-requests 1`), rounds interleaved. The server's CPU (its process tree,
    from /proc) per request, and the difference: what one reconnect costs the server."""
    import http.client
    import statistics

    from skserve import store
    from skserve.loadtest import harness
    from skserve.schema import example_row

    skserve = str(Path(sys.executable).with_name("skserve"))
    body = json.dumps(example_row(store.get_info(model).schema))
    runs: dict[int, list[dict]] = {0: [], 1: []}
    for r in range(rounds):
        for k in runs:
            argv = [skserve, "serve", "--model", model, "--port", "{port}", "--workers", "1",
                    "--max-connection-age", "0", "--max-connection-requests", str(k)]
            with harness.start_server(argv, cores=[1],
                                      log_path=out / f"server-{k}-{r}.log") as server:
                conn = http.client.HTTPConnection(f"127.0.0.1:{server.port}", timeout=30)
                for _ in range(50):  # warm-up: first calls compile and fill caches
                    conn.request("POST", "/predict", body, {"content-type": "application/json"})
                    conn.getresponse().read()
                before, latencies, closes = harness.sample_tree(server.pid), [], 0
                for _ in range(requests):
                    t0 = time.perf_counter()
                    conn.request("POST", "/predict", body, {"content-type": "application/json"})
                    resp = conn.getresponse()
                    resp.read()
                    latencies.append(time.perf_counter() - t0)
                    closes += resp.getheader("connection") == "close"
                after = harness.sample_tree(server.pid)
                conn.close()
            runs[k].append({"cpu": harness.cpu_ms_per_request(before, after, requests),
                            "p50": 1000 * statistics.median(latencies), "closes": closes})
            say(f"round {r + 1}, {'a connection per request' if k else 'keep-alive'}: "
                f"{runs[k][-1]}")
    keep, fresh = runs[0], runs[1]
    extra = [b["cpu"] - a["cpu"] for a, b in zip(keep, fresh, strict=True)]
    rows = []
    for label, k in (("keep-alive", 0), ("a new connection per request", 1)):
        rows.append({"client": label,
                     "server CPU ms/req": statistics.mean(x["cpu"] for x in runs[k]),
                     "client p50 ms": statistics.mean(x["p50"] for x in runs[k]),
                     "Connection: close answers": sum(x["closes"] for x in runs[k])})
    rows.append({"client": "one reconnect costs the server (ms CPU)",
                 "server CPU ms/req": statistics.mean(extra),
                 "rounds": " … ".join(f"{x:+.2f}" for x in (min(extra), max(extra)))})
    return rows


# ------------------------------------------------------------------ 2. scaling curve


class Cluster:
    def __init__(self, kubeconfig: Path):
        self.kubeconfig = str(kubeconfig)
        self.kubectl = tool("KUBECTL", REPO / ".cluster/bin/kubectl",
                            Path(sys.executable).with_name("kubectl"))
        self.helm = tool("HELM", REPO / ".tools/bin/helm", Path("helm"))
        self.ctr = tool("CTR", REPO / ".cluster/bin/ctr", Path("ctr"))
        self.env = {**os.environ, "KUBECONFIG": self.kubeconfig}

    def k(self, *args: str, timeout: float = 120) -> str:
        return run([self.kubectl, "--kubeconfig", self.kubeconfig, *args], timeout=timeout)

    def h(self, *args: str, timeout: float = 300) -> str:
        return run([self.helm, "--kubeconfig", self.kubeconfig, *args], timeout=timeout)


def values(model: str, tag: str) -> dict[str, Any]:
    """Small pods like the e2e values: one worker each, CPU request 50m, limit one core."""
    return {
        "slots": {"blue": {"model": model, "modelVersion": tag}},
        "slotDefaults": {
            "image": {"pullPolicy": "Never"}, "workers": 1, "replicas": 1,
            "resources": {"requests": {"cpu": "50m", "memory": "256Mi"},
                          "limits": {"cpu": "1", "memory": "768Mi"}},
            "autoscaling": {"enabled": False}, "topologySpreadConstraints": []},
        "batch": {"enabled": False}, "tests": {"enabled": False}}


def scaling_curve(cluster: Cluster, ns: str, url: str, age_s: float, out: Path, users: int,
                  stage_s: float, settle_s: float, replicas: int) -> list[dict]:
    """One load run: the Deployment starts at 1 replica and gains one every `stage_s`."""
    from skserve.loadtest.harness import run_locust
    from skserve.loadtest.report import read_history
    from skserve.loadtest.scaleout import PodCounter, rps_between

    cluster.h("upgrade", RELEASE, str(REPO / "helm/skserve"), "-n", ns, "--reuse-values",
              "--set", f"slotDefaults.connections.maxAgeSeconds={age_s:g}",
              "--set", "slotDefaults.replicas=1", "--wait", "--timeout", "300s", timeout=360)
    wait_replicas(cluster, ns, 1)
    counter = PodCounter(ns, "skserve.io/slot=blue,app.kubernetes.io/component=server",
                         cluster.kubeconfig, interval_s=2.0)
    start = time.time()
    stage = {"n": 1}

    def during() -> None:
        counter.poll()
        due = 1 + int((time.time() - start) // stage_s)
        if due > stage["n"] and due <= replicas:
            stage["n"] = due
            cluster.k("-n", ns, "scale", "deployment", DEPLOYMENT, f"--replicas={due}")

    result = run_locust(url, users=users, spawn_rate=users,
                        duration_s=stage_s * replicas + TAIL_S, cores=[0], out_dir=out,
                        html=False, while_running=during,
                        timeout_s=stage_s * replicas + TAIL_S + 120)
    counter.poll(force=True)
    history = read_history(out / "locust_stats_history.csv")
    ready_order = sorted(counter.ready_since().values())
    rows = []
    for n in range(1, replicas + 1):
        stage_start, stage_end = start + (n - 1) * stage_s, start + n * stage_s
        # From `settle_s` after the newest pod Ready early enough to leave 10 s of window
        # (on a busy machine a pod can take most of a stage to become Ready).
        early = [t for t in ready_order if t <= stage_end - settle_s - 10]
        t0 = max(stage_start, early[-1] if early else stage_start) + settle_s
        window = counter.window(t0, stage_end)
        row: dict[str, Any] = {"replicas": n, "max age s": age_s or "off"}
        if window is None:
            row["note"] = "no window"
            rows.append(row)
            continue
        shares = sorted(window.shares.values(), reverse=True)
        measured = len(shares)
        row.update({"pods measured": measured, "window s": round(window.t1 - window.t0),
                    "rps": rps_between(history, window.t0, window.t1),
                    "shares %": " / ".join(f"{100 * s:.0f}" for s in shares),
                    "min share / fair": min(shares) * measured,
                    "pods' CPU ms/req": window.cpu_ms_per_request,
                    "busy cores": window.busy_cores})
        if measured > 1 and len(ready_order) >= measured:
            row["half fair share after Ready s"] = half_share_delay(
                counter, ready_order[measured - 1], measured)
        if measured < n:
            row["note"] = f"{n - measured} pod(s) Ready too late to measure"
        rows.append(row)
    for row in rows:
        row["failures"] = result.failures
        row["Locust CPU"] = max(result.loadgen_cpu.values(), default=None)
    return rows


def half_share_delay(counter: Any, ready_t: float, n: int) -> float | None:
    """Seconds from the n-th pod's Ready to the first sample interval in which it served at
    least half of a fair share (1/n)."""
    pod = next((p for p, t in counter.ready_since().items() if t == ready_t), None)
    samples = [s for s in counter.samples if s.t >= ready_t]
    for a, b in itertools.pairwise(samples):
        if pod in a.pods and pod in b.pods:
            total = sum(b.pods[p][1] - a.pods[p][1] for p in a.pods if p in b.pods)
            if total > 0 and (b.pods[pod][1] - a.pods[pod][1]) / total >= 0.5 / n:
                return round(b.t - ready_t, 1)
    return None


def wait_replicas(cluster: Cluster, ns: str, n: int, timeout_s: float = 300) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        dep = json.loads(cluster.k("-n", ns, "get", "deployment", DEPLOYMENT, "-o", "json"))
        pods = json.loads(cluster.k("-n", ns, "get", "pods", "-l", "skserve.io/slot=blue",
                                    "-o", "json"))["items"]
        if (dep.get("status", {}).get("readyReplicas") == n and len(pods) == n):
            return
        time.sleep(2)
    raise SystemExit(f"{DEPLOYMENT} did not settle at {n} replica(s)")


def cluster_part(home: Path, model: str, out: Path, args: argparse.Namespace) -> list[dict]:
    kubeconfig = Path(os.environ.get("KUBECONFIG") or REPO / ".cluster/kubeconfig")
    cluster = Cluster(kubeconfig)
    tag = model.replace(":", "-")
    env = {**os.environ, "BENTOML_HOME": str(home)}
    say("building and importing the image")
    run(["bash", str(REPO / "hack/image/build.sh"), model], timeout=1500, env=env)
    archive = run(["bash", str(REPO / "hack/image/archive.sh"), model], env=env).split()[0]
    run([cluster.ctr, "images", "import", archive], timeout=600)
    ns = f"skserve-bench-{uuid.uuid4().hex[:6]}"
    values_file = out / "values.json"
    values_file.write_text(json.dumps(values(model, tag)))
    cluster.k("create", "namespace", ns)
    rows: list[dict] = []
    try:
        cluster.h("install", RELEASE, str(REPO / "helm/skserve"), "-n", ns, "-f",
                  str(values_file), "--wait", "--timeout", "300s", timeout=360)
        ip = json.loads(cluster.k("-n", ns, "get", "service", RELEASE, "-o", "json")
                        )["spec"]["clusterIP"]
        for age in (0.0, args.age):
            say(f"scaling 1 → {args.replicas} under load, max connection age "
                f"{age:g} s ({'off' if not age else 'recycling'})")
            rows += scaling_curve(cluster, ns, f"http://{ip}:80", age,
                                  out / f"curve-age-{age:g}", args.users, args.stage,
                                  args.settle, args.replicas)
            for row in rows[-args.replicas:]:
                say(str(row))
    finally:
        subprocess.run([cluster.helm, "--kubeconfig", cluster.kubeconfig, "uninstall", RELEASE,
                        "-n", ns, "--wait", "--timeout", "120s"], capture_output=True,
                       timeout=180, check=False)
        subprocess.run([cluster.kubectl, "--kubeconfig", cluster.kubeconfig, "delete",
                        "namespace", ns, "--wait=true", "--timeout=180s"],
                       capture_output=True, timeout=200, check=False)
        subprocess.run([cluster.ctr, "images", "rm", f"localhost/skserve:{tag}",
                        f"docker.io/localhost/skserve:{tag}"], capture_output=True,
                       timeout=120, check=False)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=32, help="Locust users (default 32)")
    parser.add_argument("--requests", type=int, default=2000,
                        help="requests per reconnect-cost run (default 2000)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of the reconnect-cost runs (default 3)")
    parser.add_argument("--stage", type=float, default=90,
                        help="seconds per replica count in the scaling curve (default 90: "
                        "a pod took up to 50 s to be Ready on a busy machine)")
    parser.add_argument("--settle", type=float, default=12,
                        help="seconds after a new pod is Ready before its stage is measured "
                        "(default 12: one max age of 10 s plus its jitter)")
    parser.add_argument("--replicas", type=int, default=4, help="up to this many (default 4)")
    parser.add_argument("--age", type=float, default=None,
                        help="--max-connection-age to compare with off (default: skserve's)")
    parser.add_argument("--local-only", action="store_true", help="skip the cluster part")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="skserve-bench-scaleout-"))
    os.environ["BENTOML_HOME"] = str(home)
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    from skserve.console import set_thread_env

    set_thread_env()
    from skserve.loadtest.harness import markdown_table, write_benchmark_section
    from skserve.recycling import DEFAULT_MAX_AGE_S

    args.age = args.age if args.age is not None else DEFAULT_MAX_AGE_S
    out = REPO / "reports" / "bench-scaleout"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    skserve = str(Path(sys.executable).with_name("skserve"))
    model = "demand:scaleout"
    say("training the reference model (one candidate per family)")
    run([skserve, "train", "--version", "scaleout", "--n-iter", "1", "--leaderboard",
         str(home / "leaderboard.json")], timeout=600)
    cost = reconnect_cost(model, out, args.requests, args.rounds)
    cost_md = markdown_table(cost, ["client", "server CPU ms/req", "client p50 ms",
                                    "Connection: close answers", "rounds"],
                             {"server CPU ms/req": ".3f", "client p50 ms": ".2f"})
    print(cost_md)
    curve_md = "Not measured (--local-only, or no cluster at KUBECONFIG)."
    if not args.local_only and (Path(os.environ.get("KUBECONFIG") or
                                     REPO / ".cluster/kubeconfig")).exists():
        curve = cluster_part(home, model, out, args)
        curve_md = markdown_table(curve, [
            "max age s", "replicas", "pods measured", "window s", "rps", "shares %",
            "min share / fair",
            "half fair share after Ready s", "pods' CPU ms/req", "busy cores", "failures",
            "Locust CPU", "note"],
            {"rps": ".0f", "min share / fair": ".2f", "pods' CPU ms/req": ".2f",
             "busy cores": ".2f", "Locust CPU": ".2f"})
        print(curve_md)
    shutil.rmtree(home, ignore_errors=True)
    if not args.no_write:
        write_benchmark_section(REPO / "BENCHMARKS.md", SECTION, SECTION_TEXT.format(
            users=args.users, requests=args.requests, rounds=args.rounds, cost=cost_md,
            stage=args.stage, settle=args.settle, replicas=args.replicas, age=args.age,
            curve=curve_md))
    return 0


SECTION_TEXT = """\
`make bench-scaleout` (loadtest/bench_scaleout.py). Why: a Service balances connections,
not requests, so replicas added under keep-alive load stayed idle (the issue's 960m / 3m
pods); `skserve serve` now ends each connection after `--max-connection-age` (default 10 s,
±10 %) with `Connection: close`, and the client reconnects to any current pod.

What a reconnect costs: `skserve serve --workers 1` pinned to core 1, one client sending
{requests} requests one after another (one row per model call either way), over one
keep-alive connection or with a new connection for every request
(`--max-connection-requests 1`); {rounds} interleaved rounds, means ("rounds": the
smallest and largest difference of one round). A reconnect's cost is the difference; when
the rounds straddle 0 it is within this machine's noise. At the default max age a
connection carrying r requests/s pays one reconnect per {age:g}·r requests.

{cost}

The scaling curve on the local cluster. One worker per pod (CPU limit one core), {users}
Locust users (closed loop, host, pinned to core 0) against the stable Service, the
Deployment scaled up one pod every {stage:g} s while the load runs (as an HPA would); each
replica count is measured from {settle:g} s after its newest Ready pod to the end of its
stage. Shares are each pod's requests from its own `/metrics` ("min share / fair": the
smallest share × pods, 1 = even); "half fair share after Ready": seconds from the newest
pod's Ready until it served at least half of 1/pods; "pods' CPU ms/req": the pods' own CPU
(their cgroups) per request; "busy cores": the whole machine. Once with recycling off, once
with a {age:g} s max age.

What this machine can show: it has 2 cores, shared with other engineers' builds and tests
(see "busy cores"), and Locust takes part of one. One pod is capped at one core by its
limit, so more pods can add at most the second core; and the same users spread over more
single-worker pods make each worker's micro-batcher merge fewer requests per model call, so
CPU per request rises. The shares, and how soon a new pod gets its share, are what this
curve measures reliably here; rps by replica count needs a core per pod to mean much.

{curve}
"""


if __name__ == "__main__":
    sys.exit(main())
