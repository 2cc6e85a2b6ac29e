"""`make bench-serve`: skserve's online endpoint beside a FastAPI baseline and the in-process
limit, in one run on this machine; prints a table and updates BENCHMARKS.md.

Every server gets the same stored model, 2 workers and one BLAS thread per worker. Locust
(FastHttpUser, closed loop, one row per request) runs pinned to core 0 for a bounded time;
rounds interleave the servers so drift in machine load hits them alike. `--against REF`
adds skserve's /predict and /predict_batch as of a git ref (e.g. `main`), run from that
ref's source with this venv's packages: a change's cost, side by side (BENCHMARKS.md is
left alone then).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from skserve.loadtest.harness import (
    cpu_ms_per_request,
    markdown_table,
    rss_by_process,
    run_locust,
    sample_tree,
    start_server,
    write_benchmark_section,
)

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGETS = {
    # name: (server argv, Locust mix)
    "skserve /predict (micro-batched)": ([str(BIN / "skserve"), "serve", "--port", "{port}",
                                          "--workers", "2"], "predict=1"),
    "skserve /predict_batch, 1 row (micro-batched)": (
        [str(BIN / "skserve"), "serve", "--port", "{port}", "--workers", "2"],
        "predict_batch=1"),
    "FastAPI + uvicorn, 1 row": ([str(BIN / "uvicorn"), "baseline_fastapi:app", "--app-dir",
                                  str(REPO / "loadtest"), "--port", "{port}", "--workers", "2",
                                  "--no-access-log", "--log-level", "warning"], "predict=1"),
}


def proportional_mb(pid: int) -> float | None:
    """A process's PSS: its private memory plus its share of pages mapped by several
    processes (libraries, the interpreter); RSS counts shared pages in full for each."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    kb = next(int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:"))
    return kb / 1024


def in_process_limit(model: str) -> dict[str, float]:
    """CPU ms of `predict` per row: one-row DataFrames and 64-row batches, in this process."""
    from threadpoolctl import threadpool_limits

    from skserve import store
    from skserve.schema import example_row, rows_to_frame

    pipeline, info = store.load(model)
    row = example_row(info.schema)
    row = {**row, "timestamp": __import__("datetime").datetime.fromisoformat(row["timestamp"])}
    one, batch = rows_to_frame(info.schema, [row]), rows_to_frame(info.schema, [row] * 64)
    out = {}
    with threadpool_limits(1):
        for name, frame, n, rows in (("one row", one, 300, 1), ("64-row batch", batch, 100, 64)):
            pipeline.predict(frame)
            start = time.process_time()
            for _ in range(n):
                pipeline.predict(frame)
            out[name] = (time.process_time() - start) * 1000 / (n * rows)
    return out


def source_at(ref: str, into: Path) -> Path:
    """The repository's `service/` folder as of `ref` (git archive), for PYTHONPATH."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "service"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "service"


def bench_one(name: str, argv: list[str], mix: str, env: dict, users: int, duration: float,
              out: Path) -> dict:
    with start_server(argv, env=env, log_path=out / "server.log") as server:
        cold = server.cold_start_s
        before = sample_tree(server.pid)
        result = run_locust(server.url, users=users, duration_s=duration, cores=[0], mix=mix,
                            batch_rows=1, out_dir=out, html=False)
        after = sample_tree(server.pid)
        # The largest process is a worker holding the model (the supervisor holds none).
        rss = rss_by_process(after)
        worker = max(rss, key=lambda pid: rss[pid][1])
        pss = proportional_mb(worker)
    cpu_ms = cpu_ms_per_request(before, after, result.requests)
    return {"server": name, "rps": result.rps, "p50 ms": result.p50_ms, "p95 ms": result.p95_ms,
            "p99 ms": result.p99_ms, "failures": result.failures,
            "server CPU ms/req": cpu_ms, "RSS MB/worker": rss[worker][1], "PSS MB/worker": pss,
            "cold start s": cold, "loadgen saturated": result.loadgen_saturated}


def targets(row: dict) -> str:
    """The issue's targets for single-row traffic through batching, met or not."""
    checks = [
        ("server CPU per request ≤ 0.5× the FastAPI baseline", row["CPU vs FastAPI"], 0.5),
        ("cold start to /readyz ≤ 5 s", row["cold start s"], 5.0),
        ("RSS per worker ≤ 250 MB", row["RSS MB/worker"], 250.0),
    ]
    lines = ["| target | measured | met |", "| --- | --- | --- |"]
    for name, value, bound in checks:
        lines.append(f"| {name} | {value:.2f} | {'yes' if value <= bound else 'no'} |")
    return "\n".join(lines)


def ensure_model(env: dict) -> str:
    subprocess.run([str(BIN / "skserve"), "train", "--if-missing"], env=env, check=True)
    return env.get("SKSERVE_MODEL", "demand:latest")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "bench-serve")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    parser.add_argument("--against", metavar="REF",
                        help="also run /predict and /predict_batch from this git ref's source "
                             "(e.g. main), side by side; BENCHMARKS.md is not written")
    args = parser.parse_args()

    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "BENTOML_DO_NOT_TRACK": "true"}
    model = ensure_model(env)
    env["SKSERVE_MODEL"] = model
    targets_env = {name: (argv, mix, env) for name, (argv, mix) in TARGETS.items()}
    scratch = tempfile.TemporaryDirectory(prefix="skserve-bench-ref-")
    if args.against:
        source = source_at(args.against, Path(scratch.name))
        ref_env = {**env, "PYTHONPATH": str(source)}
        ref_argv = [sys.executable, "-m", "skserve.cli", "serve", "--port", "{port}",
                    "--workers", "2"]
        targets_env = {f"skserve /predict @ {args.against}": (ref_argv, "predict=1", ref_env),
                       f"skserve /predict_batch, 1 row @ {args.against}": (
                           ref_argv, "predict_batch=1", ref_env), **targets_env}
    runs: dict[str, list[dict]] = {name: [] for name in targets_env}
    for rnd in range(args.rounds):
        for i, (name, (argv, mix, target_env)) in enumerate(targets_env.items()):
            print(f"round {rnd + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
            runs[name].append(bench_one(name, argv, mix, target_env, args.users, args.duration,
                                        args.out / f"r{rnd}-{i}"))
    scratch.cleanup()
    rows = [{k: (statistics.median(r[k] for r in rs) if isinstance(rs[0][k], float) else
                 rs[0][k]) for k in rs[0]} for rs in runs.values()]
    baseline = next(r for r in rows if r["server"].startswith("FastAPI"))
    for row in rows:
        row["CPU vs FastAPI"] = row["server CPU ms/req"] / baseline["server CPU ms/req"]
        row["rps vs FastAPI"] = row["rps"] / baseline["rps"]
    limit = in_process_limit(model)
    columns = ["server", "rps", "rps vs FastAPI", "p50 ms", "p95 ms", "p99 ms", "failures",
               "server CPU ms/req", "CPU vs FastAPI", "RSS MB/worker", "PSS MB/worker",
               "cold start s",
               "loadgen saturated"]
    formats = {c: ".2f" for c in columns
               if c not in ("server", "failures", "loadgen saturated")}
    formats.update({"rps": ".0f", "p50 ms": ".0f", "p95 ms": ".0f", "p99 ms": ".0f",
                    "RSS MB/worker": ".0f", "PSS MB/worker": ".0f", "cold start s": ".1f"})
    table = markdown_table(rows, columns, formats)
    body = (f"{args.users} users, {args.duration:g} s per run, {args.rounds} interleaved "
            f"round(s), medians shown; Locust pinned to core 0, servers with 2 workers.\n\n"
            f"{table}\n\nIn-process limit (`predict`, CPU ms per row): one-row DataFrame "
            f"{limit['one row']:.2f}, 64-row batch {limit['64-row batch']:.3f}.\n\n"
            f"{targets(next(r for r in rows if r['server'] in TARGETS))}\n")
    print(body)
    if not args.no_write and not args.against:
        write_benchmark_section(REPO / "BENCHMARKS.md", "Online serving", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
