"""`skserve batch run|invoke|list|status|logs|queue|merge`.

Human messages go to stderr; listings (`list`, `status`, `logs`), the Job name `invoke`
prints and `--json` output go to stdout. Exit codes: 0 done, 2 bad arguments
or environment (missing model, input, cluster), 3 the job ran and failed (error threshold).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ..console import print_table, set_thread_env
from ..console import say as _say
from ..extras import KUBE, SERVE, require


def _emit(args: argparse.Namespace, doc: Any) -> None:
    if getattr(args, "json", False):
        print(json.dumps(doc, default=str))


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def cmd_run(args: argparse.Namespace) -> int:
    require("skserve batch run", *SERVE)
    set_thread_env()  # before scikit-learn loads
    from .run import EXIT_THRESHOLD, RunOptions, ThresholdExceeded, run_job

    index = args.instance_index
    if index is None:
        index = _env_int("JOB_COMPLETION_INDEX", 0)
    opts = RunOptions(
        inputs=args.input, output=args.output, model=args.model,
        mini_batch_size=args.mini_batch_size,
        max_concurrency_per_instance=args.max_concurrency_per_instance,
        instance_count=args.instance_count, instance_index=index,
        output_action=args.output_action, output_file_name=args.output_file_name,
        error_threshold=args.error_threshold, max_retries=args.max_retries,
        timeout=args.timeout, id_column=args.id_column,
        progress_interval=args.progress_interval,
        progress_bar=False if args.no_progress else None,
        merge=not args.no_merge)
    try:
        result = run_job(opts, say=_say)
    except ThresholdExceeded as exc:
        _say(f"skserve batch run: job failed: {exc}")
        result_file = _result_path(opts)
        _emit(args, json.loads(result_file.read_text()) if result_file.exists() else
              {"status": "failed", "message": str(exc)})
        return EXIT_THRESHOLD
    c = result["counts"]
    d = result["durations_s"]
    rate = c["rows_scored"] / d["score"] if d["score"] > 0 else 0.0
    unreadable = (f", {c['files_unreadable']} unreadable file(s) counted as one each"
                  if c["files_unreadable"] else "")
    _say(f"{result['status']}: {c['rows_scored']:,} rows scored, {c['rows_failed']:,} failed "
         f"({c['minibatches_failed']} failed mini-batches{unreadable}) in {d['total']:.1f}s "
         f"({rate:,.0f} rows/s)")
    if result["output_file"]:
        _say(f"  output: {result['output_file']} (sha256 {result['output_sha256'][:16]}…)")
    if c["rows_failed"]:
        _say(f"  bad rows: {result['errors_file']}")
    if result.get("merged"):
        _say(f"  all shards done: merged into {Path(opts.output) / opts.output_file_name}")
    elif opts.instance_count > 1:
        _say("  other shards still running; the last one merges (or: skserve batch merge)")
    _emit(args, result)
    return 0


def _result_path(opts: Any) -> Path:
    from .plan import shard_dir_name

    root = Path(opts.output)
    if opts.instance_count > 1:
        root = root / shard_dir_name(opts.instance_index, opts.instance_count)
    return root / "logs" / "job_result.json"


def cmd_merge(args: argparse.Namespace) -> int:
    require("skserve batch merge", *SERVE)
    from .run import try_merge

    manifest = try_merge(args.output, args.output_file_name, require_all=False)
    assert manifest is not None
    _say(f"merged {len(manifest['shards'])} shard(s): {manifest.get('output_file')} "
         f"({manifest['counts'].get('rows_scored', 0):,} rows)")
    _emit(args, manifest)
    return 0


# ---------------------------------------------------------------- Kubernetes


def _kube(args: argparse.Namespace):
    require(f"skserve batch {args.batch_command}", *KUBE)
    from . import kube

    return kube.Cluster(namespace=args.namespace, release=args.release,
                        context=getattr(args, "context", None))


def cmd_invoke(args: argparse.Namespace) -> int:
    from . import jobs

    # A dry run with --template needs no cluster (nor a kubeconfig): the Job is shown as it
    # would start with nothing queued before it.
    cluster = None if args.dry_run and args.template else _kube(args)
    if args.template:
        template, max_jobs = jobs.load_template(args.template.read_text())
    else:
        template, max_jobs = cluster.batch_template()
    if args.max_concurrent_jobs is not None:
        max_jobs = args.max_concurrent_jobs
    options = jobs.InvokeOptions(
        input=args.input, instance_count=args.instance_count, model=args.model,
        mini_batch_size=args.mini_batch_size,
        max_concurrency_per_instance=args.max_concurrency_per_instance,
        output_action=args.output_action, output_file_name=args.output_file_name,
        error_threshold=args.error_threshold, max_retries=args.max_retries,
        timeout=args.timeout, id_column=args.id_column)
    existing = cluster.list_jobs() if cluster else []
    name, start = jobs.plan_invocation(template, existing, max_jobs,
                                       instance_count=args.instance_count)
    manifest = jobs.build_job(template, options, name=name, suspend=not start,
                              invoked_at=jobs.utcnow())
    if args.dry_run:
        if args.json:
            print(json.dumps(manifest, indent=2))
        else:
            import yaml

            print(yaml.safe_dump(manifest, sort_keys=False), end="")
        return 0
    cluster.create_job(manifest)
    started = cluster.run_queue(max_jobs)
    state = "started" if start else f"queued (maxConcurrentJobs={max_jobs} running)"
    _say(f"{name}: {state}; output in /data/output/{name}")
    if started:
        _say(f"  also started queued job(s): {', '.join(started)}")
    print(name if not args.json else json.dumps({"name": name, "started": start}))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    cluster = _kube(args)
    summaries = sorted(cluster.list_jobs(), key=lambda s: (s.invoked_at, s.name))
    if args.json:
        print(json.dumps([s.to_dict() for s in summaries]))
        return 0
    if not summaries:
        _say(f"no batch Jobs of release {args.release!r} in namespace {args.namespace!r}")
        return 0
    print_table(("NAME", "STATE", "DONE", "FAILED", "ACTIVE", "INVOKED"),
                [(s.name, s.state, f"{s.succeeded}/{s.completions}", s.failed, s.active,
                  _invoked_iso(s.invoked_at)) for s in summaries])
    return 0


def _invoked_iso(millis: str) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(int(millis) / 1000, UTC).isoformat(timespec="seconds")


def cmd_status(args: argparse.Namespace) -> int:
    cluster = _kube(args)
    summary, detail = cluster.job_status(args.name)
    doc = {**summary.to_dict(), **detail}
    if args.json:
        print(json.dumps(doc, default=str))
    else:
        doc["invoked_at"] = _invoked_iso(summary.invoked_at)
        print_table(("FIELD", "VALUE"), [(k, _plain(v)) for k, v in doc.items()])
    return 1 if summary.state == "Failed" else 0


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(map(str, value)) or "-"
    return "-" if value in (None, "") else str(value)


def cmd_logs(args: argparse.Namespace) -> int:
    cluster = _kube(args)
    for index, text in cluster.job_logs(args.name, tail=args.tail):
        for line in text.splitlines():
            print(f"[{index}] {line}")
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    import time

    cluster = _kube(args)
    while True:
        _, max_jobs = cluster.batch_template()
        if args.max_concurrent_jobs is not None:
            max_jobs = args.max_concurrent_jobs
        started = cluster.run_queue(max_jobs)
        for name in started:
            _say(f"started {name}")
            _emit(args, {"started": name})
        if args.once:
            return 0
        time.sleep(args.interval)


# ---------------------------------------------------------------- argparse


def _scoring_options(p: argparse.ArgumentParser, *, local: bool) -> None:
    """The Azure ML batch deployment knobs, shared by `run` and `invoke`."""
    if local:
        p.add_argument("--model", default=os.environ.get("SKSERVE_MODEL", "demand:latest"),
                       help="model tag name:version (env SKSERVE_MODEL; default demand:latest)")
    else:  # the Job's image holds its own model: keep the template's unless told otherwise
        p.add_argument("--model", default=None,
                       help="model tag name:version (default: the chart template's SKSERVE_MODEL)")
    p.add_argument("--mini-batch-size", type=int, default=10_000,
                   help="rows per mini-batch: the unit of retry, resume and progress "
                   "(default 10000)")
    p.add_argument("--max-concurrency-per-instance", type=int, default=1,
                   help="scoring processes per instance, each loading the model once "
                   "(default 1)")
    p.add_argument("--output-action", choices=("append_row", "summary_only"),
                   default="append_row", help="append_row: every row's key and prediction; "
                   "summary_only: only counts and per-file statistics in job_result")
    p.add_argument("--output-file-name", default="predictions.csv",
                   help="output file name, .csv or .parquet (default predictions.csv)")
    p.add_argument("--error-threshold", type=int, default=-1,
                   help="failed items tolerated before the job fails: bad rows, rows of "
                   "failed mini-batches, and each unreadable file as one; -1 ignores all "
                   "failures (default -1)")
    p.add_argument("--max-retries", type=int, default=3,
                   help="retries of a mini-batch whose prediction fails or times out "
                   "(default 3)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds one attempt at a mini-batch may take (default 30)")
    p.add_argument("--id-column", help="key output rows by this input column (default: "
                   "file and 0-based row number)")


def _kube_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--namespace", "-n", default=os.environ.get("SKSERVE_NAMESPACE", "default"),
                   help="namespace of the release (env SKSERVE_NAMESPACE; default default)")
    p.add_argument("--release", default=os.environ.get("SKSERVE_RELEASE", "skserve"),
                   help="helm release whose batch ConfigMap to use (default skserve)")
    p.add_argument("--context", help="kubeconfig context (default: current, or in-cluster)")
    p.add_argument("--json", action="store_true", help="machine output on stdout")


def register(subparsers: Any) -> None:
    """Add `skserve batch` and its sub-commands to the top-level parser."""
    batch = subparsers.add_parser(
        "batch", help="score files in bulk, locally or as Kubernetes Jobs",
        description="Batch scoring with the knobs of Azure ML batch deployments: locally "
        "(`run`) or as Kubernetes Jobs from the chart's batch template (`invoke`), at most "
        "maxConcurrentJobs at once with the rest queued suspended.")
    sub = batch.add_subparsers(dest="batch_command", required=True)

    run = sub.add_parser(
        "run", help="score CSV/Parquet files into an output folder (resumable)",
        description="Validate rows with the online endpoint's schema, predict in "
        "mini-batches, write <output>/<output-file-name> and <output>/logs/{job_progress.txt,"
        "job_error.txt,errors.jsonl,job_result.json}. Killed and started again with the same "
        "arguments, it resumes after the last finished mini-batch. Bad rows, malformed CSV "
        "records and unreadable files are reported in errors.jsonl, not fatal. Exit 3 when "
        "more fail than --error-threshold allows.")
    run.add_argument("--input", action="append", required=True,
                     help="a file, a folder (searched recursively) or a glob of .csv/.parquet; "
                     "repeatable")
    run.add_argument("--output", type=Path, required=True, help="output folder")
    _scoring_options(run, local=True)
    run.add_argument("--instance-count", type=int, default=1,
                     help="instances sharing the input (default 1)")
    run.add_argument("--instance-index", type=int, default=None,
                     help="this instance, 0-based (default: $JOB_COMPLETION_INDEX or 0)")
    run.add_argument("--progress-interval", type=float, default=1.0,
                     help="seconds between job_progress lines (default 1)")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress on stderr (default: a bar on a terminal, elsewhere a "
                     "progress line every 10 s); job_progress.txt is written either way")
    run.add_argument("--no-merge", action="store_true",
                     help="do not merge shards when the last one finishes")
    run.add_argument("--json", action="store_true", help="print job_result as JSON")
    run.set_defaults(func=cmd_run)

    merge = sub.add_parser(
        "merge", help="join the shards of a multi-instance run into one output",
        description="Concatenate <output>/shard-*-of-*/<file> in shard order into "
        "<output>/<file> and write <output>/manifest.json. Fails unless every shard "
        "succeeded.")
    merge.add_argument("output", type=Path, help="the output folder given to `run`")
    merge.add_argument("--output-file-name", default=None,
                       help="default: the name the shards used")
    merge.add_argument("--json", action="store_true", help="print the manifest as JSON")
    merge.set_defaults(func=cmd_merge)

    invoke = sub.add_parser(
        "invoke", help="create a batch Job on Kubernetes and print its name",
        description="Build a Job from the chart's <fullname>-batch ConfigMap (or --template) "
        "and create it, suspended when maxConcurrentJobs already run; queued Jobs start "
        "oldest first as slots free (here and in `skserve batch queue`).")
    invoke.add_argument("--input", required=True,
                        help="input path on the batch volume, relative to /data/input "
                        "(file, folder or glob)")
    _scoring_options(invoke, local=False)
    invoke.add_argument("--instance-count", type=int, default=1,
                        help="pods (Indexed Job completions) sharing the input (default 1)")
    invoke.add_argument("--template", type=Path,
                        help="read the batch ConfigMap or Job manifest from this YAML file")
    invoke.add_argument("--max-concurrent-jobs", type=int, default=None,
                        help="override the ConfigMap's maxConcurrentJobs")
    invoke.add_argument("--dry-run", action="store_true",
                        help="print the Job manifest (YAML; JSON with --json) instead of "
                        "creating it; with --template no cluster is contacted and the Job is "
                        "shown as if nothing were queued")
    _kube_options(invoke)
    invoke.set_defaults(func=cmd_invoke)

    lister = sub.add_parser("list", help="list batch Jobs and their state")
    _kube_options(lister)
    lister.set_defaults(func=cmd_list)

    status = sub.add_parser("status", help="one batch Job's state, indexes and conditions")
    status.add_argument("name")
    _kube_options(status)
    status.set_defaults(func=cmd_status)

    logs = sub.add_parser("logs", help="the logs of a batch Job's pods, prefixed by index")
    logs.add_argument("name")
    logs.add_argument("--tail", type=int, default=None, help="last N lines per pod")
    _kube_options(logs)
    logs.set_defaults(func=cmd_logs)

    queue = sub.add_parser(
        "queue", help="start queued (suspended) Jobs oldest first as slots free up",
        description="A small loop (runnable as a Deployment): list the release's batch "
        "Jobs, and unsuspend the oldest queued ones while fewer than maxConcurrentJobs run.")
    queue.add_argument("--interval", type=float, default=10.0, help="seconds between passes")
    queue.add_argument("--once", action="store_true", help="one pass, then exit")
    queue.add_argument("--max-concurrent-jobs", type=int, default=None,
                       help="override the ConfigMap's maxConcurrentJobs")
    _kube_options(queue)
    queue.set_defaults(func=cmd_queue)
