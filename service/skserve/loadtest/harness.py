"""The benchmark harness shared by `skserve loadtest`, `make bench-serve` and `make bench-batch`.

What a side-by-side benchmark needs, each piece usable on its own:

- `start_server(argv, ...)`: start a server command on a free port, wait for its readiness
  URL and measure the cold start; a context manager that stops the whole process group.
- `run_locust(host, users=..., duration_s=...)`: headless Locust (FastHttpUser, closed
  loop) for a bounded time, optionally pinned with `taskset` and/or as a master with N
  workers; returns rps and failures, p50/p95/p99 from skserve's bounded-error latency
  histograms (not Locust's rounded ones), per-version results and the load generator's
  own CPU use, with `loadgen_saturated` set when a Locust process
  was near 100 % of a core (then the numbers measure Locust, not the server).
- `sample_tree(pid)` / `TreeSample`: CPU seconds and RSS of a process and all its
  descendants from /proc; `cpu_ms_per_request(before, after, n)` and `rss_by_process()`.
- `write_benchmark_section(path, title, markdown)`: replace only `## title` in
  BENCHMARKS.md (append it if missing), prefixed with `machine_note()`.
- `markdown_table(rows, columns)`: the tables those sections are made of.

Quote ratios measured in one run on one machine, never absolute times across runs: these
machines are shared and noisy. Example (what bench_serve.py does, in short):

    with start_server(["skserve", "serve", "--port", "{port}"]) as server:
        before = sample_tree(server.pid)
        result = run_locust(server.url, users=32, duration_s=20, cores=[0],
                            out_dir=Path("reports/bench/skserve"))
        after = sample_tree(server.pid)
    cpu_ms = cpu_ms_per_request(before, after, result.requests)
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ..errors import InvalidInput, Unavailable

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# A gevent Locust process uses one core at most; above this share its own CPU limits the rps.
LOADGEN_SATURATION = 0.9
BUNDLED_LOCUSTFILE = Path(__file__).with_name("locustfile.py")


# --------------------------------------------------------------------------- processes


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def taskset_prefix(cores: Sequence[int] | None) -> list[str]:
    """`taskset -c 0,1` to pin a command to cores; [] when no cores are given.

    Raises RuntimeError if pinning was asked for but `taskset` is not installed (a
    benchmark that silently runs unpinned would compare different things)."""
    if not cores:
        return []
    exe = shutil.which("taskset")
    if exe is None:
        raise Unavailable("taskset not found (apt-get install util-linux) but cores were given")
    return [exe, "-c", ",".join(str(c) for c in cores)]


@dataclass
class Server:
    """A started server: its process, URL and measured cold start (spawn → ready)."""

    argv: list[str]
    url: str
    port: int
    proc: subprocess.Popen
    cold_start_s: float
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM the server's process group, SIGKILL after `timeout_s`; its exit code."""
        return stop_process(self.proc, timeout_s)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_process(proc: subprocess.Popen, timeout_s: float = 15.0) -> int | None:
    """Stop a process started in its own session, with everything it started."""
    if proc.poll() is not None:
        return proc.returncode
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=10)


def wait_ready(url: str, timeout_s: float, proc: subprocess.Popen | None = None,
               interval_s: float = 0.05) -> float:
    """Poll `url` until it answers 200; the seconds it took. Raises RuntimeError if the
    process exits first or `timeout_s` passes."""
    start = time.monotonic()
    deadline = start + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Unavailable(f"server exited with code {proc.returncode} before {url} "
                               "was ready")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(interval_s)
    raise Unavailable(f"{url} not ready after {timeout_s:g} s")


def start_server(argv: Sequence[str], *, port: int | None = None, host: str = "127.0.0.1",
                 ready_path: str = "/readyz", env: Mapping[str, str] | None = None,
                 cwd: str | Path | None = None, cores: Sequence[int] | None = None,
                 timeout_s: float = 90.0, log_path: Path | None = None) -> Server:
    """Start `argv` (with `{port}` and `{host}` substituted) and wait until
    `http://host:port{ready_path}` answers 200.

    The cold start is measured from spawning the process to the first 200, so it includes
    interpreter start, imports and model load. The process gets its own session, so
    `Server.stop()` also stops the workers it forks. Output goes to `log_path` (default:
    discarded). `cores` pins the server with taskset. Raises RuntimeError (with the log's
    tail) if it exits or is not ready within `timeout_s`; the process is stopped then.
    """
    port = port or free_port(host)
    args = [a.format(port=port, host=host) for a in argv]
    full = [*taskset_prefix(cores), *args]
    out: TextIO | int = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(log_path, "w")  # noqa: SIM115 - closed when the child inherits it
    start = time.monotonic()
    proc = subprocess.Popen(full, env=dict(env) if env is not None else None, cwd=cwd,
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    if not isinstance(out, int):
        out.close()
    url = f"http://{host}:{port}"
    try:
        wait_ready(url + ready_path, timeout_s, proc)
    except RuntimeError as exc:
        stop_process(proc, 5)
        tail = log_path.read_text(errors="replace")[-2000:] if log_path else ""
        raise Unavailable(f"{exc}\n{' '.join(full)}\n{tail}") from exc
    return Server(full, url, port, proc, time.monotonic() - start, log_path)


# --------------------------------------------------------------------------- /proc sampling


@dataclass(frozen=True)
class ProcSample:
    """One process: its name, CPU seconds (own + reaped children) and resident memory."""

    pid: int
    name: str
    cpu_s: float
    rss_bytes: int


@dataclass(frozen=True)
class TreeSample:
    """A process tree at one moment (monotonic time `t`)."""

    t: float
    procs: dict[int, ProcSample]

    @property
    def cpu_s(self) -> float:
        return sum(p.cpu_s for p in self.procs.values())

    @property
    def rss_bytes(self) -> int:
        return sum(p.rss_bytes for p in self.procs.values())


def _read_stat(pid: int) -> tuple[str, int, float, int] | None:
    """(comm, ppid, cpu seconds incl. reaped children, rss bytes) from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): ppid=4, utime=14, stime=15, cutime=16, cstime=17, rss=24
    ppid = int(fields[1])
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return comm, ppid, ticks / CLK_TCK, int(fields[21]) * PAGE_SIZE


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants (scanning /proc once)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read_stat(int(entry))
            if stat is not None:
                children.setdefault(stat[1], []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _cmdline_name(pid: int, comm: str) -> str:
    try:
        parts = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return comm
    text = " ".join(p.decode(errors="replace") for p in parts if p)
    return text[:120] or comm


def sample_tree(pid: int) -> TreeSample:
    """CPU seconds and RSS of `pid` and every descendant, now.

    CPU is utime+stime plus the reaped children's cutime+cstime of each live process, so a
    worker that exits mid-run is not lost (its time moves to its parent)."""
    procs = {}
    for p in process_tree(pid):
        stat = _read_stat(p)
        if stat is not None:
            procs[p] = ProcSample(p, _cmdline_name(p, stat[0]), stat[2], stat[3])
    return TreeSample(time.monotonic(), procs)


def cpu_ms_per_request(before: TreeSample, after: TreeSample, requests: int) -> float | None:
    """Server CPU milliseconds per request between two samples; None without requests."""
    if requests <= 0:
        return None
    return (after.cpu_s - before.cpu_s) * 1000.0 / requests


def cpu_utilisation(before: TreeSample, after: TreeSample) -> float:
    """Cores used on average between two samples (1.0 = one core fully busy)."""
    wall = after.t - before.t
    return (after.cpu_s - before.cpu_s) / wall if wall > 0 else 0.0


def rss_by_process(sample: TreeSample) -> dict[int, tuple[str, float]]:
    """{pid: (command line, RSS MiB)}: with a prefork server, one entry per worker."""
    return {p.pid: (p.name, p.rss_bytes / 2**20) for p in sample.procs.values()}


# --------------------------------------------------------------------------- Locust


LOCUST_PERCENTILES = ("Locust's own percentiles, from response times rounded to 2 "
                      "significant digits (a custom locustfile recorded no skserve histograms)")
PERCENTILES = ("p50_ms", "p95_ms", "p99_ms")


@dataclass
class LocustResult:
    """Parsed results of one headless Locust run and the loadgen's CPU.

    Counts and rps are Locust's; the percentiles (total, per endpoint, per version) are
    skserve's bounded-error ones (`latency.py`) when the locustfile uses skserve's users,
    else Locust's rounded ones: `percentile_method` says which, `locust_percentiles` keeps
    Locust's own whole-run p50/p95/p99 for comparison with its HTML report."""

    requests: int
    failures: int
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    avg_ms: float | None
    duration_s: float
    csv_prefix: Path
    html: Path | None
    exit_code: int
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures_by_error: list[dict[str, Any]] = field(default_factory=list)
    loadgen_cpu: dict[str, float] = field(default_factory=dict)  # process → cores used
    log_path: Path | None = None
    percentile_method: str = LOCUST_PERCENTILES
    locust_percentiles: dict[str, float | None] = field(default_factory=dict)

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def loadgen_saturated(self) -> bool:
        """True when a Locust process used ≥ 90 % of a core: the load generator, not the
        server, may have set the rps. Add workers (or cores) and run again."""
        return any(v >= LOADGEN_SATURATION for v in self.loadgen_cpu.values())


def _num(value: str) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v == v else None  # NaN → None


def parse_stats_csv(path: Path) -> dict[str, dict[str, Any]]:
    """Locust's `<prefix>_stats.csv` → {name: requests, failures, rps, p50/p95/p99/avg ms};
    the "Aggregated" row is the whole run. A percentile is None when nothing completed."""
    rows: dict[str, dict[str, Any]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            n = int(row["Request Count"])
            rows[row["Name"]] = {
                "type": row["Type"], "requests": n, "failures": int(row["Failure Count"]),
                "rps": _num(row["Requests/s"]) or 0.0,
                "avg_ms": _num(row["Average Response Time"]) if n else None,
                "p50_ms": _num(row["50%"]) if n else None,
                "p95_ms": _num(row["95%"]) if n else None,
                "p99_ms": _num(row["99%"]) if n else None,
                "max_ms": _num(row["Max Response Time"]) if n else None,
            }
    if "Aggregated" not in rows:
        raise InvalidInput(f"{path}: no Aggregated row (not a Locust stats CSV?)")
    return rows


def parse_failures_csv(path: Path) -> list[dict[str, Any]]:
    """Locust's `<prefix>_failures.csv` → [{method, name, error, occurrences}]."""
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [{"method": r["Method"], "name": r["Name"], "error": r["Error"],
                 "occurrences": int(r["Occurrences"])} for r in csv.DictReader(fh)]


def locust_command(locustfile: Path, host: str, *, users: int, duration_s: float,
                   spawn_rate: float | None, shape: str, mix: str, batch_rows: int,
                   csv_prefix: Path | None, html: Path | None, seed: int,
                   sample_file: Path | None, versions_out: Path | None, steps: int = 4,
                   think_ms: float = 0.0, role: str = "local", master_host: str = "127.0.0.1",
                   master_port: int = 5557, expect_workers: int = 0,
                   extra_args: Sequence[str] = ()) -> list[str]:
    """The `locust` argv for one process: role "local" (single process), "master" or
    "worker". Workers get the skserve options too (they sample rows themselves)."""
    argv = [sys.executable, "-m", "locust", "-f", str(locustfile), "-H", host,
            "--skserve-mix", mix, "--skserve-batch-rows", str(batch_rows),
            "--skserve-seed", str(seed), "--skserve-think-ms", str(think_ms)]
    if sample_file is not None:
        argv += ["--skserve-sample-file", str(sample_file)]
    if role == "worker":
        return [*argv, "--worker", "--master-host", master_host,
                "--master-port", str(master_port), *extra_args]
    rate = spawn_rate if spawn_rate is not None else float(users)
    run_time = f"{max(1, math.ceil(duration_s))}s"
    argv += ["--headless", "-u", str(users), "-r", f"{rate:g}", "-t", run_time,
             "--skserve-shape", shape, "--skserve-steps", str(steps),
             "--exit-code-on-error", "0", "--stop-timeout", "2"]
    if csv_prefix is not None:
        argv += ["--csv", str(csv_prefix), "--csv-full-history"]
    if html is not None:
        argv += ["--html", str(html)]
    if versions_out is not None:
        argv += ["--skserve-versions-out", str(versions_out)]
    if role == "master":
        argv += ["--master", "--master-bind-host", master_host,
                 "--master-bind-port", str(master_port), "--expect-workers", str(expect_workers),
                 "--expect-workers-max-wait", "30"]
    return [*argv, *extra_args]


def run_locust(host: str, *, users: int, duration_s: float, out_dir: Path,
               spawn_rate: float | None = None, shape: str = "steady",
               mix: str = "predict=1", batch_rows: int = 16, workers: int = 0,
               cores: Sequence[int] | None = None, locustfile: Path | None = None,
               seed: int = 0, sample_file: Path | None = None, steps: int = 4,
               think_ms: float = 0.0, html: bool = True, quiet: bool = True,
               env: Mapping[str, str] | None = None, extra_args: Sequence[str] = (),
               timeout_s: float | None = None,
               while_running: Callable[[], None] | None = None,
               external_workers: int = 0, master_bind_host: str = "*",
               master_port: int = 5557) -> LocustResult:
    """Run headless Locust against `host` and parse what it wrote to `out_dir`.

    - `workers=0`: one Locust process; `workers=N`: a master and N worker processes
      (worker i pinned to `cores[i % len(cores)]` when `cores` is given; the single process
      is pinned to all of `cores`).
    - `users`, `spawn_rate` (default: all users in one second), `duration_s`, `shape`,
      `mix`, `batch_rows` are the skserve locustfile's options (see `users.py`).
    - The run is bounded: Locust stops at `duration_s`; the processes are killed at
      `timeout_s` (default duration + 60 s).
    - `while_running` is called about once a second (e.g. to poll replicas); keep it short.
    - `external_workers=N`: start only a master on `master_bind_host:master_port` and wait
      (up to 30 s) for N workers started elsewhere (the chart's worker pods).
    - `quiet=True` sends Locust's output to `out_dir/locust.log`; False to stderr.

    Files: `locust_stats.csv`, `locust_stats_history.csv`, `locust_failures.csv`,
    `locust.html`, `versions.json` (skserve's latency histograms and the percentiles from
    them), `locust_final.json` (the totals after every user stopped; preferred over the
    CSV, which Locust writes once a second and can miss the last in-flight requests).
    Raises Unavailable if Locust wrote no stats (it crashed or could not start) or did not
    finish in time, naming the log.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    locustfile = locustfile or BUNDLED_LOCUSTFILE
    prefix, html_path = out_dir / "locust", (out_dir / "locust.html") if html else None
    versions_out = out_dir / "versions.json"
    log_path = out_dir / "locust.log"
    common: dict[str, Any] = dict(users=users, duration_s=duration_s, spawn_rate=spawn_rate,
                                  shape=shape, mix=mix, batch_rows=batch_rows,
                                  csv_prefix=prefix, html=html_path, seed=seed,
                                  sample_file=sample_file, versions_out=versions_out,
                                  steps=steps, think_ms=think_ms, extra_args=extra_args)
    run_env = dict(os.environ if env is None else env)
    run_env.setdefault("PYTHONUNBUFFERED", "1")
    log = open(log_path, "w") if quiet else None  # noqa: SIM115 - closed below
    out: Any = log if log is not None else sys.stderr
    procs: list[tuple[str, subprocess.Popen]] = []
    timeout_s = timeout_s if timeout_s is not None else duration_s + 60
    try:
        if external_workers > 0:
            master = locust_command(locustfile, host, role="master", master_port=master_port,
                                    master_host=master_bind_host,
                                    expect_workers=external_workers, **common)
            procs.append(("master", subprocess.Popen(master, env=run_env, stdout=out,
                                                     stderr=subprocess.STDOUT,
                                                     start_new_session=True)))
        elif workers <= 0:
            argv = [*taskset_prefix(cores), *locust_command(locustfile, host, **common)]
            procs.append(("locust", subprocess.Popen(argv, env=run_env, stdout=out,
                                                     stderr=subprocess.STDOUT,
                                                     start_new_session=True)))
        else:
            port = free_port()
            master = locust_command(locustfile, host, role="master", master_port=port,
                                    expect_workers=workers, **common)
            procs.append(("master", subprocess.Popen(master, env=run_env, stdout=out,
                                                     stderr=subprocess.STDOUT,
                                                     start_new_session=True)))
            for i in range(workers):
                pin = [cores[i % len(cores)]] if cores else None
                argv = [*taskset_prefix(pin),
                        *locust_command(locustfile, host, role="worker", master_port=port,
                                        **common)]
                procs.append((f"worker{i}", subprocess.Popen(
                    argv, env=run_env, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True)))
        befores = {name: sample_tree(p.pid) for name, p in procs}
        peaks: dict[str, TreeSample] = dict(befores)
        start = time.monotonic()
        main = procs[0][1]
        while main.poll() is None and time.monotonic() - start < timeout_s:
            for name, p in procs:  # the last sample before each process exits
                if p.poll() is None:
                    sample = sample_tree(p.pid)
                    if sample.procs:
                        peaks[name] = sample
            if while_running is not None:
                while_running()
            time.sleep(1.0 if while_running is not None else 0.5)
        timed_out = main.poll() is None
        for _name, p in procs:
            if timed_out or p is not main:
                try:
                    p.wait(timeout=0 if timed_out else 15)
                except subprocess.TimeoutExpired:
                    stop_process(p, 5)
            else:
                p.wait(timeout=5)
        elapsed = time.monotonic() - start
    finally:
        for _name, p in procs:
            if p.poll() is None:
                stop_process(p, 5)
        if log is not None:
            log.close()
    loadgen = {name: round(cpu_utilisation(befores[name], peaks[name]), 3)
               for name in befores if peaks[name].t > befores[name].t}
    stats_path = Path(f"{prefix}_stats.csv")
    if not stats_path.exists():
        tail = log_path.read_text(errors="replace")[-3000:] if quiet else ""
        raise Unavailable(f"Locust wrote no stats (exit code {main.returncode}, "
                           f"log {log_path}){chr(10) + tail if tail else ''}")
    if timed_out:
        raise Unavailable(f"Locust did not finish within {timeout_s:g} s; killed it "
                           f"(log {log_path})")
    import json

    final = out_dir / "locust_final.json"  # exact totals, written after all users stopped
    rows = json.loads(final.read_text()) if final.exists() else parse_stats_csv(stats_path)
    agg = rows.pop("Aggregated")
    locust_percentiles = {k: agg[k] for k in PERCENTILES}
    recorded = json.loads(versions_out.read_text()) if versions_out.exists() else {}
    method = recorded.get("method", LOCUST_PERCENTILES)
    if "method" in recorded:  # skserve's histograms: they replace Locust's percentiles
        agg.update({k: (recorded["overall"] or {}).get(k) for k in PERCENTILES})
        for name, exact in recorded.get("endpoints", {}).items():
            if name in rows:
                rows[name].update({k: exact[k] for k in PERCENTILES})
    return LocustResult(
        requests=agg["requests"], failures=agg["failures"], rps=agg["rps"],
        p50_ms=agg["p50_ms"], p95_ms=agg["p95_ms"], p99_ms=agg["p99_ms"], avg_ms=agg["avg_ms"],
        duration_s=elapsed, csv_prefix=prefix, html=html_path,
        exit_code=main.returncode if main.returncode is not None else -1,
        endpoints=rows, versions=recorded.get("summary", {}),
        failures_by_error=parse_failures_csv(Path(f"{prefix}_failures.csv")),
        loadgen_cpu=loadgen, log_path=log_path if quiet else None,
        percentile_method=method, locust_percentiles=locust_percentiles)


# --------------------------------------------------------------------------- BENCHMARKS.md


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "-"


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, kernel, Python and the versions that matter here."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if match:
            cpu = match.group(1).strip()
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        kb = re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M)
        mem_gib = round(int(kb.group(1)) / 2**20, 1)  # type: ignore[union-attr]
    os_name = platform.platform()
    with contextlib.suppress(OSError):
        match = re.search(r'^PRETTY_NAME="?([^"\n]+)', Path("/etc/os-release").read_text(), re.M)
        if match:
            os_name = f"{match.group(1)}, kernel {platform.release()}"
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": mem_gib, "os": os_name,
            "python": platform.python_version(),
            "versions": {d: _version(d) for d in
                         ("skserve", "bentoml", "scikit-learn", "numpy", "pandas", "locust")}}


def machine_note(info: Mapping[str, Any] | None = None) -> str:
    """One Markdown line: when, on what machine, with which versions."""
    info = info or machine_info()
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"_Measured {when} on {info['cpu']}, {info['cores']} cores, "
            f"{info['mem_gib']} GiB, {info['os']}; Python {info['python']}, {versions}. "
            "Shared machine: compare ratios within this run, not absolute numbers._")


def replace_section(text: str, title: str, body: str) -> str:
    """`text` with the `## title` section's body replaced by `body` (appended if absent).

    A section runs from its `## ` heading to the next `## ` heading (or `# ` / EOF);
    deeper headings (`###`) inside belong to it. Other sections are kept byte for byte."""
    heading = f"## {title}".rstrip()
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    block = f"{heading}\n\n{body.strip()}\n\n"
    if start is None:
        sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n")
                                                              else "\n\n")
        return f"{text}{sep}{block}"
    end = next((j for j in range(start + 1, len(lines))
                if re.match(r"^#{1,2} ", lines[j])), len(lines))
    return "".join(lines[:start]) + block + "".join(lines[end:])


def write_benchmark_section(path: Path | str, section_title: str, markdown: str,
                            note: bool = True) -> None:
    """Replace only `## section_title` of BENCHMARKS.md at `path` (create the file or the
    section if missing), with `machine_note()` first when `note` is true. Atomic write."""
    path = Path(path)
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    body = f"{machine_note()}\n\n{markdown.strip()}" if note else markdown
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(replace_section(text, section_title, body))
    os.replace(tmp, path)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                   formats: Mapping[str, str] | None = None) -> str:
    """A Markdown table of `rows` (dicts) with `columns`; `formats` maps a column to a
    format spec such as ".1f". None and missing values print as empty cells."""
    formats = formats or {}

    def cell(row: Mapping[str, Any], col: str) -> str:
        value = row.get(col)
        if value is None:
            return ""
        spec = formats.get(col)
        return format(value, spec) if spec and isinstance(value, int | float) else str(value)

    lines = ["| " + " | ".join(columns) + " |",
             "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(cell(r, c) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


@contextlib.contextmanager
def measured(pid: int) -> Iterator[dict[str, TreeSample]]:
    """`with measured(server.pid) as m: ...` → m["before"], m["after"] tree samples."""
    samples = {"before": sample_tree(pid)}
    try:
        yield samples
    finally:
        samples["after"] = sample_tree(pid)
