"""`make bench-serve`: skserve's online endpoints beside the servers its users would pick
instead (FastAPI, BentoML, MLServer, KServe), on the same model and the same rows, in one
run on this machine; prints a table and updates BENCHMARKS.md ("Online serving").

- The peers are installed by this script into their own virtual environments (under
  `.cache/bench-peers/`, reused while their requirements are unchanged) with the
  scikit-learn, numpy and pandas versions of skserve's own environment, and serve
  skserve's reference pipeline exported with joblib (`loadtest/peers/`).
- First every server must return, for the same rows, exactly what the pipeline returns in
  process (`pipeline.predict`); a server that does not is reported and not measured.
- Then each server (2 workers, `OMP_NUM_THREADS=1`) is started cold and loaded by Locust
  (FastHttpUser, closed loop, one row per request, pinned to core 0) for a bounded time;
  rounds interleave the servers so drift in machine load hits them alike; medians shown.
- Measured: rps, p50/p95/p99 (skserve's bounded-error histograms), failures, server CPU
  per request and per worker (from /proc, the whole process tree), RSS per worker (the
  largest process), cold start (spawn to ready), how evenly the two busiest processes
  shared the CPU and which of uvloop/httptools/pyarrow they loaded, Locust's own CPU, the
  load average.

`--against REF` adds skserve's /predict and /predict_batch as of a git ref (e.g. `main`),
run from that ref's source with this venv's packages: a change's cost, side by side
(BENCHMARKS.md is left alone then). `--only` runs some targets (by key, see `--help`).
"""

from __future__ import annotations

import argparse
import atexit
import csv
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from skserve.loadtest.harness import (
    cpu_ms_per_request,
    free_port,
    markdown_table,
    run_locust,
    sample_tree,
    start_server,
    write_benchmark_section,
)

REPO = Path(__file__).resolve().parent.parent
PEERS_DIR = REPO / "loadtest" / "peers"
BIN = Path(sys.executable).parent
CHECK_ROWS = 200
BODY_ROWS = 512
# The peers' own packages; scikit-learn, numpy and pandas are pinned to skserve's versions.
# MLServer 1.7's parallel workers crashed with uvloop 0.23 here and worked with 0.21.
PEER_PACKAGES = {
    "bentoml": ["bentoml==1.4.40", "fastapi", "uvicorn[standard]"],
    "mlserver": ["mlserver==1.7.1", "uvloop==0.21.0"],
    "kserve": ["kserve==0.16.0"],
}
SAME_AS_SKSERVE = ("scikit-learn", "numpy", "pandas")


# --------------------------------------------------------------------------- protocols


def v2_body(rows: list[dict], features: list[dict]) -> dict:
    """An Open Inference Protocol request as MLServer's pandas codec sends a table."""
    inputs = []
    for f in features:
        text = f["dtype"] in ("datetime", "category")
        tensor = {"name": f["name"], "datatype": "BYTES" if text else "FP64",
                  "shape": [len(rows)], "data": [r[f["name"]] for r in rows]}
        if text:
            tensor["parameters"] = {"content_type": "str"}
        inputs.append(tensor)
    return {"inputs": inputs}


@dataclass(frozen=True)
class Protocol:
    """How one server wants one row, and where its answer holds the prediction."""

    encode: Callable[[dict, list[dict]], Any]
    decode: Callable[[Any], float]


PROTOCOLS = {
    "row": Protocol(lambda r, f: r, lambda a: a["prediction"]),
    "list": Protocol(lambda r, f: [r], lambda a: a[0]["prediction"]),
    "bento-row": Protocol(lambda r, f: {"row": r}, float),
    "bento-rows": Protocol(lambda r, f: {"rows": [r]}, lambda a: a[0]),
    "v1": Protocol(lambda r, f: {"instances": [r]}, lambda a: a["predictions"][0]),
    "v2": Protocol(lambda r, f: v2_body([r], f), lambda a: a["outputs"][0]["data"][0]),
}


# --------------------------------------------------------------------------- targets


@dataclass
class Target:
    """One server and mode: how to start it, where it is ready, what it is sent."""

    key: str
    name: str
    argv: list[str]
    path: str
    protocol: str
    ready: str = "/readyz"
    peer: str | None = None  # the peers' venv it runs in; None: skserve's
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    setup: Callable[[Path, int], None] | None = None  # (scratch dir, port) before start


def mlserver_settings(batching: bool) -> Callable[[Path, int], None]:
    """Writes MLServer's settings.json and the model's model-settings.json."""

    def setup(root: Path, port: int) -> None:
        model = root / "demand"
        model.mkdir(parents=True, exist_ok=True)
        (root / "settings.json").write_text(json.dumps({
            "host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
            "metrics_port": free_port(), "parallel_workers": 2, "debug": False}))
        settings: dict[str, Any] = {"name": "demand",
                                    "implementation": "mlserver_runtime.PipelineRuntime"}
        if batching:
            settings.update(max_batch_size=64, max_batch_time=0.01)
        (model / "model-settings.json").write_text(json.dumps(settings))

    return setup


def targets(peers: Path) -> list[Target]:
    skserve = [str(BIN / "skserve"), "serve", "--port", "{port}", "--workers", "2"]
    bento = ["{venv}/bin/bentoml", "serve", "bentoml_service:Peer", "--host", "127.0.0.1",
             "--port", "{port}"]
    mlserver = ["{venv}/bin/mlserver", "start", "{scratch}"]
    return [
        Target("predict", "skserve /predict", skserve, "/predict", "row"),
        Target("predict-batch", "skserve /predict_batch, 1 row", skserve, "/predict_batch",
               "list"),
        Target("fastapi", "FastAPI + uvicorn", [
            "{venv}/bin/uvicorn", "fastapi_app:app", "--port", "{port}", "--workers", "2",
            "--no-access-log", "--log-level", "warning"], "/predict", "row", peer="bentoml",
            cwd=PEERS_DIR),
        Target("bentoml", "BentoML single-row API", bento, "/predict", "bento-row",
               peer="bentoml", cwd=PEERS_DIR),
        Target("bentoml-batch", "BentoML batchable API (64 rows / 1000 ms)", bento,
               "/predict_batchable", "bento-rows", peer="bentoml", cwd=PEERS_DIR),
        Target("mlserver-batch", "MLServer, adaptive batching (64 rows / 10 ms)", mlserver,
               "/v2/models/demand/infer", "v2", "/v2/models/demand/ready", peer="mlserver",
               setup=mlserver_settings(True)),
        Target("mlserver", "MLServer, no batching", mlserver, "/v2/models/demand/infer", "v2",
               "/v2/models/demand/ready", peer="mlserver", setup=mlserver_settings(False)),
        Target("kserve", "KServe ModelServer (V1)", [
            "{venv}/bin/python", "kserve_server.py", "--http_port", "{port}", "--workers", "2",
            "--enable_grpc", "false", "--enable_latency_logging", "false"],
            "/v1/models/demand:predict", "v1", "/v1/models/demand", peer="kserve",
            cwd=PEERS_DIR),
    ]


# --------------------------------------------------------------------------- peers' venvs


def peer_venv(name: str, root: Path) -> Path:
    """The peer's virtual environment, created (or reinstalled when its requirements
    changed) with `PEER_PACKAGES[name]` and skserve's scikit-learn/numpy/pandas."""
    venv = root / name
    wanted = [*PEER_PACKAGES[name], *(f"{d}=={version(d)}" for d in SAME_AS_SKSERVE)]
    stamp = venv / "skserve-requirements.txt"
    if stamp.exists() and stamp.read_text().split() == wanted:
        return venv
    print(f"installing {name} into {venv} ({' '.join(wanted)})", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *wanted], check=True)
    stamp.write_text("\n".join(wanted))
    return venv


def export_model(model: str, into: Path) -> tuple[Any, Any]:
    """The stored pipeline as `pipeline.joblib` and its features as `features.json`, for
    the peers (`peers/common.py`); returns (pipeline, model info)."""
    import joblib

    from skserve import store

    pipeline, info = store.load(model)
    into.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, into / "pipeline.joblib")
    (into / "features.json").write_text(json.dumps(
        [{"name": f.name, "dtype": f.dtype} for f in info.schema.features]))
    return pipeline, info


# --------------------------------------------------------------------------- checks


def sample_rows(info: Any, n: int, seed: int = 0) -> list[dict]:
    from skserve.loadtest.sampling import RowPool

    features = [f.__dict__ for f in info.schema.features]
    return RowPool.from_schema(features, seed, size=n).rows


def expected(pipeline: Any, info: Any, rows: list[dict]) -> list[float]:
    """`pipeline.predict` in this process on the rows as the service validates them."""
    from skserve.schema import rows_to_frame
    from skserve.validation import Rule

    rules = {f.name: Rule.of(f) for f in info.schema.features}
    checked = [{k: rules[k].check(v) for k, v in row.items()} for row in rows]
    return [float(v) for v in pipeline.predict(rows_to_frame(info.schema, checked))]


def post(url: str, body: Any) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(),
                                     {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


def check(url: str, target: Target, rows: list[dict], want: list[float],
          features: list[dict]) -> float:
    """The largest |served - in-process| over `rows`, sent one per request (0.0: every
    prediction identical)."""
    protocol = PROTOCOLS[target.protocol]
    worst = 0.0
    for row, value in zip(rows, want, strict=True):
        got = float(protocol.decode(post(url + target.path, protocol.encode(row, features))))
        worst = max(worst, abs(got - value) if math.isfinite(got) else math.inf)
    return worst


# --------------------------------------------------------------------------- profiles


def start_profiles(root_pid: int, seconds: float, out: Path) -> list[subprocess.Popen]:
    """py-spy (sampling only the thread that holds the GIL: where Python time goes) on
    every process of a server, for `seconds`, in py-spy's collapsed-stack format."""
    spy = str(BIN / "py-spy")
    return [subprocess.Popen([spy, "record", "--pid", str(pid), "--duration",
                              str(max(1, int(seconds))), "--rate", "200", "--gil",
                              "--nonblocking", "--format", "raw",
                              "--output", str(out / f"profile-{pid}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for pid in sample_tree(root_pid).procs]


def frame_name(frame: str) -> str:
    """`fn (path/file.py:12)` → `fn (file.py)`."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else name


def profile_summary(files: list[Path], top: int = 25) -> str:
    """Inclusive and self shares of the samples, by function, over all `files`."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for path in files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = [frame_name(f) for f in stack.split(";")]
            for name in set(frames):
                inclusive[name] = inclusive.get(name, 0) + n
            own[frames[-1]] = own.get(frames[-1], 0) + n
    if not total:
        return "no samples"
    lines = [f"{total} samples (GIL held)", "inclusive:"]
    lines += [f"  {100 * v / total:5.1f}% {k}" for k, v in
              sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]]
    lines.append("self:")
    lines += [f"  {100 * v / total:5.1f}% {k}" for k, v in
              sorted(own.items(), key=lambda kv: -kv[1])[:top]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- one run


def scrape(url: str, times: int = 20) -> dict[str, float | None]:
    """skserve's /metrics after the load, fetched `times` times: its size (KB), series
    (sample lines), the median ms to answer (what every Prometheus scrape costs a pod; the
    request-duration buckets are most of it), and the mean rows per model call over the
    server's life (`skserve_model_batch_rows` sum over count: how much the micro-batcher
    merged)."""
    took = []
    for _ in range(times):
        start = time.perf_counter()
        with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        took.append((time.perf_counter() - start) * 1000)
    lines = text.splitlines()
    totals = {"_sum": 0.0, "_count": 0.0}
    for line in lines:
        for suffix in totals:
            if line.startswith(f"skserve_model_batch_rows{suffix}"):
                totals[suffix] += float(line.rsplit(" ", 1)[1])
    return {"rows per model call": totals["_sum"] / totals["_count"] if totals["_count"]
            else None, "/metrics KB": len(text.encode()) / 1024,
            "/metrics series": sum(1 for line in lines if line and not line.startswith("#")),
            "scrape ms": statistics.median(took)}


def worker_cpu(before: Any, after: Any) -> list[tuple[int, float]]:
    """(pid, CPU seconds) of each process that used any, busiest first (a prefork server's
    workers; the supervisor shows ~0)."""
    used = [(p, after.procs[p].cpu_s - before.procs[p].cpu_s) for p in after.procs
            if p in before.procs]
    return sorted(((p, u) for p, u in used if u > 0.05), key=lambda pu: -pu[1])



NATIVE = ("uvloop", "httptools", "pyarrow")


def native_libs(pids: list[int]) -> str:
    """Which of `NATIVE` every one of `pids` has loaded, from /proc/PID/maps: what the
    workers really run, not what is installed. uvloop is the event loop and httptools the
    HTTP parser (without them: asyncio's loop and the pure-Python h11); pyarrow is RSS that
    pandas brings in whenever it is installed ("-": none of them)."""
    loaded = None
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        here = {lib for lib in NATIVE if f"/{lib}/" in maps}
        loaded = here if loaded is None else loaded & here
    return "+".join(sorted(loaded)) if loaded else "-"


def bench_one(target: Target, argv: list[str], env: dict, users: int, duration: float,
              bodies: Path, rows_csv: Path, out: Path, check_with: Callable[[str], float],
              profile: bool = False) -> dict:
    """Start `target` cold, check its predictions, load it (profiled with py-spy if
    `profile`: the summary goes to `out/profile.txt`), stop it; one table row."""
    scratch = out / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    port = free_port()
    if target.setup is not None:
        target.setup(scratch, port)
    argv = [a.replace("{scratch}", str(scratch)) for a in argv]
    with start_server(argv, port=port, env=env, cwd=target.cwd, ready_path=target.ready,
                      log_path=out / "server.log", timeout_s=180) as server:
        cold = server.cold_start_s
        worst = check_with(server.url)
        before = sample_tree(server.pid)
        spies = start_profiles(server.pid, duration - 4, out) if profile else []
        result = run_locust(server.url, users=users, duration_s=duration, cores=[0],
                            locustfile=REPO / "loadtest" / "bench_locustfile.py",
                            sample_file=rows_csv, out_dir=out, html=False,
                            env={**os.environ, "SKSERVE_BENCH_BODIES": str(bodies)})
        after = sample_tree(server.pid)
        busy = worker_cpu(before, after)[:2]
        libs = native_libs([pid for pid, _ in busy])  # while the workers are alive
        scraped = scrape(server.url) if target.peer is None else {}
        for spy in spies:
            spy.wait(timeout=60)
    if profile:
        (out / "profile.txt").write_text(profile_summary(sorted(out.glob("profile-*.txt"))))
    cpu = [used for _, used in busy]
    return {"server": target.name, "rps": result.rps, "p50 ms": result.p50_ms,
            "p95 ms": result.p95_ms, "p99 ms": result.p99_ms, "failures": result.failures,
            "server CPU ms/req": cpu_ms_per_request(before, after, result.requests),
            "rows per model call": scraped.get("rows per model call"),
            "worker CPU split": (cpu[-1] / cpu[0]) if len(cpu) == 2 and cpu[0] else 0.0,
            "loaded in workers": libs,
            "RSS MB/worker": max(p.rss_bytes for p in after.procs.values()) / 2**20,
            "cold start s": cold, "max |Δ| vs in-process": worst,
            "Locust CPU": max(result.loadgen_cpu.values(), default=0.0),
            "Locust saturated": result.loadgen_saturated,
            **{k: scraped.get(k) for k in ("/metrics KB", "/metrics series", "scrape ms")}}


# --------------------------------------------------------------------------- the report


def median_row(runs: list[dict]) -> dict:
    """One table row from a target's rounds: medians of the numbers, "any" of the flags."""
    row: dict[str, Any] = {}
    for key, first in runs[0].items():
        values = [r[key] for r in runs]
        if isinstance(first, bool):
            row[key] = any(values)
        elif isinstance(first, int | float) and None not in values:
            row[key] = statistics.median(values)
        else:
            row[key] = first
    return row


def in_process_limit(pipeline: Any, info: Any) -> dict[str, float]:
    """CPU ms of `predict` per row: one-row DataFrames and 64-row batches, in this process."""
    from threadpoolctl import threadpool_limits

    from skserve.schema import rows_to_frame
    from skserve.validation import Rule

    rules = {f.name: Rule.of(f) for f in info.schema.features}
    rows = [{k: rules[k].check(v) for k, v in r.items()} for r in sample_rows(info, 64)]
    one, batch = rows_to_frame(info.schema, rows[:1]), rows_to_frame(info.schema, rows)
    out = {}
    with threadpool_limits(1):
        for name, frame, n, size in (("one row", one, 300, 1), ("64-row batch", batch, 100, 64)):
            pipeline.predict(frame)
            start = time.process_time()
            for _ in range(n):
                pipeline.predict(frame)
            out[name] = (time.process_time() - start) * 1000 / (n * size)
    return out


def goals(rows: list[dict]) -> str:
    """The issue's targets for single-row /predict against the best peer of this run."""
    mine = next((r for r in rows if r["server"] == "skserve /predict"), None)
    peers = [r for r in rows if not r["server"].startswith("skserve")]
    if mine is None or not peers:
        return ""
    best_rps = max(r["rps"] for r in peers)
    best_cpu = min(r["server CPU ms/req"] for r in peers)
    best_p99 = min(r["p99 ms"] for r in peers)
    checks = [
        ("rps ≥ 1.2× the best peer's", mine["rps"] / best_rps, "≥", 1.2),
        ("server CPU per request ≤ 0.75× the best peer's", mine["server CPU ms/req"] / best_cpu,
         "≤", 0.75),
        ("p99 ≤ the best peer's (ratio)", mine["p99 ms"] / best_p99, "≤", 1.0),
        ("both workers busy (less busy / busier worker's CPU)", mine["worker CPU split"], "≥",
         0.5),
        ("cold start to /readyz ≤ 3 s", mine["cold start s"], "≤", 3.0),
        ("RSS per worker ≤ 200 MB", mine["RSS MB/worker"], "≤", 200.0),
    ]
    lines = ["| target | measured | met |", "| --- | --- | --- |"]
    for name, value, op, bound in checks:
        met = value >= bound if op == "≥" else value <= bound
        lines.append(f"| {name} | {value:.2f} | {'yes' if met else 'no'} |")
    return "\n".join(lines)


def source_at(ref: str, into: Path) -> Path:
    """The repository's `service/` folder as of `ref` (git archive), for PYTHONPATH."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "service"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "service"


def wait_for_quiet(max_load: float, quiet_s: float, give_up_s: float) -> str:
    """Poll the 1-minute load average until it stays below `max_load` for `quiet_s`
    (bounded by `give_up_s`); what happened, for the report."""
    start = time.monotonic()
    since: float | None = None
    while time.monotonic() - start < give_up_s:
        load = os.getloadavg()[0]
        now = time.monotonic()
        since = (since or now) if load < max_load else None
        if since is not None and now - since >= quiet_s:
            return f"quiet (1-min load < {max_load:g} for {quiet_s:g} s) after {now - start:.0f} s"
        print(f"waiting for a quiet machine: load {load:.2f}", file=sys.stderr, flush=True)
        time.sleep(15)
    return f"not quiet after {give_up_s:g} s of waiting (load {os.getloadavg()[0]:.2f}): ran anyway"


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--users", type=int, default=32, help="Locust users (default 32)")
    parser.add_argument("--duration", type=float, default=20,
                        help="seconds of load per run (default 20)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds; the table shows medians (default 2)")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "bench-serve",
                        help="Locust's files, server logs, profiles (default reports/bench-serve)")
    parser.add_argument("--peers-venv", type=Path, default=REPO / ".cache" / "bench-peers",
                        help="where the peers' virtual environments live")
    parser.add_argument("--only", default="", help="comma-separated target keys: " + ", ".join(
        t.key for t in targets(Path())))
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    parser.add_argument("--against", metavar="REF",
                        help="also run /predict and /predict_batch from this git ref's source "
                             "(e.g. main), side by side; BENCHMARKS.md is not written")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy every server's processes under load (GIL samples); "
                             "a summary per run in OUT/rN-i/profile.txt")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="LOAD",
                        help="first wait (up to 30 min) until the 1-min load average stays "
                             "below LOAD for 3 minutes")
    args = parser.parse_args()

    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "BENTOML_DO_NOT_TRACK": "true"}
    subprocess.run([str(BIN / "skserve"), "train", "--if-missing"], env=env, check=True)
    model = env.setdefault("SKSERVE_MODEL", "demand:latest")
    work = Path(tempfile.mkdtemp(prefix="skserve-bench-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # rows, bodies, peers' stores
    pipeline, info = export_model(model, work / "model")
    features = [{"name": f.name, "dtype": f.dtype} for f in info.schema.features]
    rows = sample_rows(info, BODY_ROWS)
    want = expected(pipeline, info, rows[:CHECK_ROWS])
    rows_csv = work / "rows.csv"
    with open(rows_csv, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f["name"] for f in features])
        writer.writeheader()
        writer.writerows(rows)

    chosen = [t for t in targets(work) if not args.only or t.key in args.only.split(",")]
    if args.against:
        source = source_at(args.against, work / "ref")
        ref_argv = [sys.executable, "-m", "skserve.cli", "serve", "--port", "{port}",
                    "--workers", "2"]
        chosen = [Target(f"ref-{k}", f"skserve {p} @ {args.against}", ref_argv, p, proto,
                         env={"PYTHONPATH": str(source)})
                  for k, p, proto in (("predict", "/predict", "row"),
                                      ("predict-batch", "/predict_batch", "list"))] + chosen
    plans = []
    for t in chosen:
        venv = peer_venv(t.peer, args.peers_venv) if t.peer else None
        argv = [a.replace("{venv}", str(venv)) for a in t.argv]
        target_env = {**env, **t.env}
        if t.peer:
            target_env.update(SKSERVE_BENCH_MODEL_DIR=str(work / "model"),
                              PYTHONPATH=f"{PEERS_DIR}:{REPO / 'service'}",
                              BENTOML_HOME=str(work / f"bentoml-{t.key}"))
        bodies = work / f"bodies-{t.key}.json"
        protocol = PROTOCOLS[t.protocol]
        bodies.write_text(json.dumps({"path": t.path, "bodies": [
            json.dumps(protocol.encode(r, features), separators=(",", ":")) for r in rows]}))
        plans.append((t, argv, target_env, bodies))

    quiet = wait_for_quiet(args.wait_quiet, 180, 1800) if args.wait_quiet else ""
    loads = [os.getloadavg()]
    runs: dict[str, list[dict]] = {t.name: [] for t, *_ in plans}
    for rnd in range(args.rounds):
        for i, (t, argv, target_env, bodies) in enumerate(plans):
            print(f"round {rnd + 1}/{args.rounds}: {t.name}", file=sys.stderr, flush=True)
            row = bench_one(t, argv, target_env, args.users, args.duration, bodies, rows_csv,
                            args.out / f"r{rnd}-{i}",
                            lambda url, t=t: check(url, t, rows[:CHECK_ROWS], want, features),
                            args.profile)
            runs[t.name].append(row)
            print(f"  {row['rps']:.0f} rps, p99 {row['p99 ms']:.0f} ms, "
                  f"{row['server CPU ms/req']:.2f} CPU ms/req, {row['rows per model call']} "
                  f"rows per call, split "
                  f"{row['worker CPU split']:.2f}, loaded {row['loaded in workers']}, "
                  f"max |Δ| {row['max |Δ| vs in-process']:g}",
                  file=sys.stderr, flush=True)
            loads.append(os.getloadavg())
    table_rows = [median_row(rs) for rs in runs.values()]
    peers = [r for r in table_rows if not r["server"].startswith("skserve")]
    best = max(peers, key=lambda r: r["rps"]) if peers else None
    for row in table_rows:
        row["rps vs best peer"] = row["rps"] / best["rps"] if best else None
        row["CPU vs best peer"] = (row["server CPU ms/req"] /
                                   min(p["server CPU ms/req"] for p in peers)) if best else None
    table_rows.sort(key=lambda r: -r["rps"])
    limit = in_process_limit(pipeline, info)
    columns = ["server", "rps", "rps vs best peer", "p50 ms", "p95 ms", "p99 ms", "failures",
               "server CPU ms/req", "CPU vs best peer", "rows per model call",
               "worker CPU split", "loaded in workers", "RSS MB/worker",
               "cold start s", "max |Δ| vs in-process", "Locust CPU", "Locust saturated",
               "/metrics KB", "/metrics series", "scrape ms"]
    formats = {"rps": ".0f", "rps vs best peer": ".2f", "p50 ms": ".0f", "p95 ms": ".0f",
               "p99 ms": ".0f", "server CPU ms/req": ".2f", "CPU vs best peer": ".2f",
               "rows per model call": ".1f", "worker CPU split": ".2f",
               "RSS MB/worker": ".0f", "cold start s": ".1f",
               "max |Δ| vs in-process": "g", "Locust CPU": ".2f", "/metrics KB": ".0f",
               "/metrics series": ".0f", "scrape ms": ".1f"}
    low, high = min(a[0] for a in loads), max(a[0] for a in loads)
    body = (
        f"`make bench-serve`: {args.users} users, {args.duration:g} s per run, {args.rounds} "
        f"interleaved round(s), medians shown; every server with 2 workers and "
        f"`OMP_NUM_THREADS=1`, started cold for each run; Locust (FastHttpUser, closed loop, "
        f"one row per request) pinned to core 0. Machine load (1-min average) during the "
        f"run: {low:.2f} to {high:.2f}{f'; {quiet}' if quiet else ''}.\n\n"
        f"{markdown_table(table_rows, columns, formats)}\n\n"
        "- *vs best peer*: rps over the highest peer rps; CPU over the lowest peer CPU per "
        "request.\n"
        "- *worker CPU split*: the less busy worker's CPU over the busier one's (1.00 = "
        "even; 0 = one worker did everything).\n"
        "- *loaded in workers*: which of uvloop (event loop), httptools (HTTP parser) and "
        "pyarrow (which pandas imports whenever it is installed) both busiest processes have "
        "mapped, from /proc/PID/maps.\n"
        "- *max |Δ| vs in-process*: the largest difference between a served prediction and "
        f"`pipeline.predict` in process, over {CHECK_ROWS} rows sent one per request before "
        "the load (0 = identical).\n"
        "- *Locust CPU*: cores the load generator used; *saturated* when ≥ 0.9 (then Locust, "
        "not the server, may have set the rps).\n\n"
        f"In-process floor (`predict`, CPU ms per row): one-row DataFrame "
        f"{limit['one row']:.2f}, 64-row batch {limit['64-row batch']:.3f}.\n\n"
        f"{goals(table_rows)}\n")
    print(body)
    if not args.no_write and not args.against and not args.only:
        write_benchmark_section(REPO / "BENCHMARKS.md", "Online serving", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
