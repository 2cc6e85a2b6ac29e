"""`skserve loadtest`: headless Locust with SLO gates, per-version results and a report.

Exit codes (skserve.errors): 0 every SLO held (or none was set); 2 bad flags or input, found
before anything started; 3 the test ran and broke an SLO (JobFailed; each broken one is
printed); 5 Locust or the target failed (Unavailable: no rows from GET /metadata, Locust
crashed, wrote no stats or overran). The report is written whenever Locust produced stats.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ..console import say as _say
from ..errors import InputNotFound, InvalidInput, JobFailed, Unavailable
from ..extras import KUBE, LOADTEST, require
from .schedules import DEFAULT_DURATION_S, SHAPES, parse_duration

EPILOG = """\
examples:
  skserve loadtest --host http://127.0.0.1:3000 --shape ramp --users 32 --duration 60s \\
      --slo-p95-ms 100 --slo-max-failure-ratio 0.01
  skserve loadtest --shape step --users 64 --duration 5m --deployment skserve-blue \\
      --namespace skserve          # plus a replicas-over-time plot (HPA)
  skserve loadtest --workers auto --mix predict=0.5,predict_batch=0.5 --batch-rows 64

shapes: steady (peak held), ramp (1 → peak over 80 % of the run), spike (a fifth of the
peak, the peak in the middle fifth), step (--steps stairs, for an HPA), soak (long steady).

percentiles: the gates decide on the nearest-rank percentile of every latency Locust
measured (failed requests included), from an HdrHistogram with 3 significant digits: never
below the exact value, at most 0.1 % + 1 µs above it. Locust's own report rounds to 2
significant digits (1002–1049 ms all count as 1000 ms); the gates do not use it.

The report folder gets summary.md and report.html, latency/throughput/versions(/replicas)
PNGs, versions.json (the histograms), and Locust's own CSV and HTML.

exit codes: 0 every SLO held (or none was set); 2 bad flags or input; 3 the test ran and
an SLO broke; 5 Locust or the target failed (nothing to measure).
"""


def _env_float(name: str) -> float | None:
    value = os.environ.get(name, "").strip()
    return float(value) if value else None


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _workers(text: str) -> int:
    if text == "auto":
        return os.cpu_count() or 1
    try:
        n = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--workers takes a number or 'auto', not {text!r}"
                                         ) from exc
    if n < 0:
        raise argparse.ArgumentTypeError("--workers must not be negative")
    return n


def _cores(text: str) -> list[int]:
    try:
        return [int(c) for c in text.split(",") if c.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--cores takes e.g. 0 or 0,1, not {text!r}") from exc


def register(subparsers: Any) -> None:
    """Add the `loadtest` subcommand to skserve's argparse subparsers."""
    p = subparsers.add_parser(
        "loadtest", help="Locust load test with SLO gates, per-version latency and plots",
        description="Run headless Locust against a skserve deployment: users post rows "
        "sampled from the model's feature schema (GET /metadata) or a sample file to "
        "/predict and /predict_batch, following a bounded load shape. Results are grouped "
        "by the x-model-version header, so a canary shows beside the stable version. The "
        "run exits non-zero when an SLO is broken and says which.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=os.environ.get("SKSERVE_LOADTEST_HOST",
                                                    "http://127.0.0.1:3000"),
                   help="base URL of the service (env SKSERVE_LOADTEST_HOST; "
                   "default http://127.0.0.1:3000)")
    load = p.add_argument_group("load")
    load.add_argument("--shape", choices=SHAPES, default="steady", help="load shape "
                      "(default steady)")
    load.add_argument("--users", type=int, default=10, help="peak concurrent users (default 10)")
    load.add_argument("--spawn-rate", type=float, default=None,
                      help="users started per second (default: all peak users in 1 s; ramp "
                      "and spike raise it as they need)")
    load.add_argument("--duration", type=_duration, default=None,
                      help="how long, e.g. 30s, 2m, 1h (default: "
                      + ", ".join(f"{k} {v:g}s" for k, v in DEFAULT_DURATION_S.items()) + ")")
    load.add_argument("--steps", type=int, default=4, help="stairs of the step shape (default 4)")
    load.add_argument("--mix", default="predict=0.8,predict_batch=0.2",
                      help="endpoint weights (default predict=0.8,predict_batch=0.2)")
    load.add_argument("--batch-rows", type=int, default=16,
                      help="rows per /predict_batch request (default 16)")
    load.add_argument("--think-time-ms", type=float, default=0.0,
                      help="mean pause between a user's requests (default 0: closed loop)")
    load.add_argument("--sample-file", type=Path, default=None,
                      help="CSV/Parquet of rows to send instead of sampling the schema")
    load.add_argument("--seed", type=int, default=0, help="row sampling seed (default 0)")
    slo = p.add_argument_group("SLO gate (a flag overrides its environment variable)")
    slo.add_argument("--slo-p95-ms", type=float, default=None,
                     help="fail if p95 exceeds this (env SKSERVE_SLO_P95_MS)")
    slo.add_argument("--slo-p99-ms", type=float, default=None,
                     help="fail if p99 exceeds this (env SKSERVE_SLO_P99_MS)")
    slo.add_argument("--slo-max-failure-ratio", type=float, default=None,
                     help="fail if failures/requests exceeds this, e.g. 0.01 "
                     "(env SKSERVE_SLO_MAX_FAILURE_RATIO)")
    slo.add_argument("--slo-per-version", action="store_true",
                     help="also hold every model version to the SLO (a slow canary fails "
                     "the run even if the total passes)")
    dist = p.add_argument_group("load generator")
    dist.add_argument("--workers", type=_workers, default=0,
                      help="N: a Locust master and N worker processes here ('auto': one per "
                      "core); 0 (default): one process")
    dist.add_argument("--cores", type=_cores, default=None,
                      help="pin Locust to these cores with taskset, e.g. 0 or 0,1")
    dist.add_argument("--locustfile", type=Path, default=None,
                      help="another locustfile (default: skserve's own)")
    dist.add_argument("--role", choices=("local", "master", "worker"), default="local",
                      help="local (default); master/worker: one side of a distributed run "
                      "across machines or pods (the chart's loadtest.enabled)")
    dist.add_argument("--expect-workers", type=int, default=1,
                      help="--role master: workers to wait for (default 1)")
    dist.add_argument("--master-host", default="127.0.0.1",
                      help="--role worker: the master's address; --role master: the address "
                      "to bind (use 0.0.0.0 in a pod)")
    dist.add_argument("--master-port", type=int, default=5557, help="default 5557")
    out = p.add_argument_group("report")
    out.add_argument("--report-dir", type=Path, default=None,
                     help="where the report goes (default reports/loadtest/<timestamp>)")
    out.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                     help="kubeconfig for the replicas plot (env KUBECONFIG)")
    out.add_argument("--namespace", default="default", help="namespace of --deployment")
    out.add_argument("--deployment", default=None,
                     help="a Deployment whose replicas to plot over time (e.g. the HPA's)")
    out.add_argument("--verbose", action="store_true",
                     help="show Locust's live stats table (default when stderr is a terminal)")
    out.add_argument("--json", action="store_true",
                     help="print the result, verdicts and report path as JSON on stdout")
    p.set_defaults(func=cmd_loadtest)


def _run_worker(args: argparse.Namespace) -> int:
    """A worker process only: no report, no gate (the master has them)."""
    from .harness import BUNDLED_LOCUSTFILE, locust_command

    argv = locust_command(args.locustfile or BUNDLED_LOCUSTFILE, args.host, users=args.users,
                          duration_s=args.duration or 60, spawn_rate=args.spawn_rate,
                          shape=args.shape, mix=args.mix, batch_rows=args.batch_rows,
                          csv_prefix=None, html=None, seed=args.seed,
                          sample_file=args.sample_file, versions_out=None,
                          think_ms=args.think_time_ms, role="worker",
                          master_host=args.master_host, master_port=args.master_port)
    return subprocess.call(argv)


def cmd_loadtest(args: argparse.Namespace) -> int:
    require("skserve loadtest", *LOADTEST)
    if args.deployment:
        require("skserve loadtest --deployment", *KUBE)
    from .harness import run_locust
    from .replicas import ReplicaWatcher
    from .report import render_plots, summary_markdown, write_html
    from .sampling import parse_mix, rows_from_file
    from .slo import Slo, broken, evaluate

    parse_mix(args.mix)  # fail early on a bad mix, before any process starts
    if args.users < 1:
        raise InvalidInput("--users must be at least 1")
    if args.batch_rows < 1:
        raise InvalidInput("--batch-rows must be at least 1")
    if args.sample_file is not None:  # a bad file is the user's mistake, not Locust's
        if not args.sample_file.is_file():
            raise InputNotFound(f"--sample-file {args.sample_file}: no such file")
        rows_from_file(args.sample_file)
    if args.role == "worker":
        return _run_worker(args)
    slo = Slo.from_env(p95_ms=args.slo_p95_ms, p99_ms=args.slo_p99_ms,
                       max_failure_ratio=args.slo_max_failure_ratio)
    duration = args.duration or DEFAULT_DURATION_S[args.shape]
    report_dir = args.report_dir or Path("reports/loadtest") / datetime.now().strftime(
        "%Y%m%d-%H%M%S")
    report_dir.mkdir(parents=True, exist_ok=True)
    watcher = (ReplicaWatcher(report_dir / "replicas.csv", args.deployment, args.namespace,
                              args.kubeconfig) if args.deployment else None)
    quiet = not (args.verbose or sys.stderr.isatty())
    started = time.monotonic()
    last_note = [started]

    def tick() -> None:
        if watcher is not None:
            watcher.poll()
        now = time.monotonic()
        if quiet and now - last_note[0] >= 10:
            last_note[0] = now
            elapsed = now - started  # start-up and the stop count too: it may pass duration
            _say(f"  … {elapsed:.0f}/{duration:.0f} s" if elapsed <= duration else
                 f"  … {elapsed:.0f} s: the {duration:.0f} s are over; stopping the users")

    procs = ("1 process" if args.workers == 0 and args.role == "local" else
             f"master + {args.expect_workers if args.role == 'master' else args.workers} "
             "workers")
    _say(f"load test: {args.shape}, {args.users} users, {duration:g} s, {args.mix}, "
         f"{procs} → {args.host}\n  report: {report_dir}")
    result = run_locust(
        args.host, users=args.users, duration_s=duration, out_dir=report_dir,
        spawn_rate=args.spawn_rate, shape=args.shape, mix=args.mix, batch_rows=args.batch_rows,
        workers=args.workers if args.role == "local" else 0, cores=args.cores,
        locustfile=args.locustfile, seed=args.seed, sample_file=args.sample_file,
        steps=args.steps, think_ms=args.think_time_ms, quiet=quiet, while_running=tick,
        external_workers=args.expect_workers if args.role == "master" else 0,
        master_bind_host=args.master_host, master_port=args.master_port)
    verdicts = evaluate(slo, requests=result.requests, failures=result.failures,
                        p95_ms=result.p95_ms, p99_ms=result.p99_ms)
    if args.slo_per_version:
        for version, s in result.versions.items():
            verdicts += evaluate(slo, requests=s["requests"], failures=s["failures"],
                                 p95_ms=s["p95_ms"], p99_ms=s["p99_ms"], scope=version)
    plots = render_plots(report_dir, slo, result.failures_by_error, args.deployment or "")
    result_doc = {"requests": result.requests, "failures": result.failures,
                  "failure_ratio": result.failure_ratio, "rps": result.rps,
                  "p50_ms": result.p50_ms, "p95_ms": result.p95_ms, "p99_ms": result.p99_ms,
                  "percentile_method": result.percentile_method,
                  "locust_rounded": result.locust_percentiles}
    config = {"shape": args.shape, "users": args.users, "duration": f"{duration:g} s",
              "mix": args.mix, "batch rows": args.batch_rows, "load generator": procs}
    summary = summary_markdown(host=args.host, config=config, result=result_doc,
                               verdicts=verdicts, versions=result.versions,
                               endpoints=result.endpoints, failures=result.failures_by_error,
                               loadgen_cpu=result.loadgen_cpu, plots=plots,
                               saturated=result.loadgen_saturated)
    (report_dir / "summary.md").write_text(summary)
    write_html(report_dir / "report.html", summary)
    ok = not broken(verdicts)
    _print_human(result, verdicts, report_dir)
    if args.json:
        print(json.dumps({"passed": ok and result.exit_code == 0, "result": result_doc,
                          "versions": result.versions, "endpoints": result.endpoints,
                          "verdicts": [v.__dict__ for v in verdicts],
                          "loadgen_cpu": result.loadgen_cpu,
                          "loadgen_saturated": result.loadgen_saturated,
                          "report_dir": str(report_dir),
                          "plots": [str(p) for p in plots],
                          "locust_exit_code": result.exit_code}))
    if result.exit_code != 0:
        log = result.log_path.read_text(errors="replace") if result.log_path else ""
        errors = [line for line in log.splitlines() if "/ERROR/" in line][-5:]
        raise Unavailable(f"Locust exited with code {result.exit_code}"
                          + ("".join(f"\n  {e}" for e in errors) or " (see its output above)"))
    if not ok:
        raise JobFailed("SLO broken: " + "; ".join(v.detail for v in broken(verdicts)))
    return 0


def _print_human(result: Any, verdicts: list, report_dir: Path) -> None:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:g}"

    _say(f"{result.requests} requests, {result.failures} failed ({result.failure_ratio:.2%}), "
         f"{result.rps:.1f} req/s, p50 {ms(result.p50_ms)} ms, p95 {ms(result.p95_ms)} ms, "
         f"p99 {ms(result.p99_ms)} ms")
    for version, s in result.versions.items():
        _say(f"  {version:24} {s['requests']:>7} req  {s['error_ratio']:7.2%} err  "
             f"p50 {ms(s['p50_ms'])}  p95 {ms(s['p95_ms'])}  p99 {ms(s['p99_ms'])} ms")
    if result.loadgen_saturated:
        _say("warning: a Locust process used ≥ 90 % of a core "
             f"({result.loadgen_cpu}); the load generator may have capped the rate — "
             "use more --workers")
    for verdict in verdicts:
        _say(f"SLO {verdict}")
    if verdicts:
        _say("SLO: PASS" if all(v.ok for v in verdicts) else "SLO: FAIL")
    _say(f"report: {report_dir / 'summary.md'} (and report.html beside it)")
