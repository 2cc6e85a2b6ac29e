"""The benchmark harness: BENCHMARKS.md sections, CSV parsing, /proc sampling, servers."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from skserve.loadtest.harness import (
    cpu_ms_per_request,
    cpu_utilisation,
    locust_command,
    markdown_table,
    parse_stats_csv,
    process_tree,
    replace_section,
    rss_by_process,
    sample_tree,
    start_server,
    write_benchmark_section,
)

DOC = """# Benchmarks

Intro.

## Online serving

old serving table

### detail
kept with its section

## Batch scoring

batch table
"""


def test_replace_section_touches_only_that_section():
    out = replace_section(DOC, "Online serving", "new table")
    assert "old serving table" not in out and "kept with its section" not in out
    assert "## Online serving\n\nnew table\n\n## Batch scoring\n\nbatch table\n" in out
    assert out.startswith("# Benchmarks\n\nIntro.\n\n")
    again = replace_section(out, "Online serving", "new table")
    assert again == out  # idempotent


def test_replace_section_appends_a_missing_one():
    out = replace_section(DOC, "Load tests", "numbers")
    assert out.startswith(DOC) and out.endswith("## Load tests\n\nnumbers\n\n")


def test_write_benchmark_section_adds_machine_note(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    write_benchmark_section(path, "Batch scoring", "| a |\n| --- |\n| 1 |")
    write_benchmark_section(path, "Online serving", "serving")
    write_benchmark_section(path, "Batch scoring", "batch v2")
    text = path.read_text()
    assert text.count("## Batch scoring") == 1 and "batch v2" in text and "| 1 |" not in text
    assert "serving" in text
    assert text.count("_Measured ") == 2 and "cores" in text and "bentoml" in text


def test_markdown_table():
    out = markdown_table([{"server": "skserve", "rps": 612.345, "p99": None}],
                         ["server", "rps", "p99"], {"rps": ".1f"})
    assert out.splitlines() == ["| server | rps | p99 |", "| --- | --- | --- |",
                                "| skserve | 612.3 |  |"]


def test_parse_stats_csv(tmp_path):
    header = ("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
              "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
              "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%")
    path = tmp_path / "x_stats.csv"
    path.write_text(header + "\nPOST,/predict,90,3,10,11.5,1,80,50,45.0,1.5,"
                    "10,12,13,14,20,30,40,60,80,80,80\n"
                    ",Aggregated,100,3,10,12.0,1,90,60,50.0,1.5,10,12,13,14,20,31,40,61,90,90,90\n")
    rows = parse_stats_csv(path)
    agg = rows["Aggregated"]
    assert (agg["requests"], agg["failures"], agg["rps"]) == (100, 3, 50.0)
    assert (agg["p50_ms"], agg["p95_ms"], agg["p99_ms"]) == (10, 31, 61)
    assert rows["/predict"]["p95_ms"] == 30


def test_sample_tree_counts_children_cpu_and_rss():
    """A parent that starts a CPU-burning child: the child's CPU and RSS are in the tree."""
    code = ("import subprocess,sys,time;"
            "subprocess.Popen([sys.executable,'-c','import time\\nt=time.time()\\n"
            "while time.time()-t<1.5: pass']);time.sleep(3)")
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.3)
        before = sample_tree(parent.pid)
        time.sleep(0.8)
        after = sample_tree(parent.pid)
        assert len(process_tree(parent.pid)) >= 2
        assert len(after.procs) >= 2
        used = after.cpu_s - before.cpu_s
        (child,) = [p for p in after.procs if p != parent.pid]
        child_used = after.procs[child].cpu_s - before.procs[child].cpu_s
        # The busy child gets whatever this shared machine leaves it: only relative checks.
        assert child_used > 0.05
        assert used == pytest.approx(child_used, abs=0.05)  # the tree sums the child
        assert used <= (after.t - before.t) * 2 + 0.05  # at most two cores' worth
        assert cpu_utilisation(before, after) == pytest.approx(used / (after.t - before.t))
        assert cpu_ms_per_request(before, after, 100) == pytest.approx(used * 10)
        assert cpu_ms_per_request(before, after, 0) is None
        rss = rss_by_process(after)
        assert all(mib > 1 for _name, mib in rss.values())
    finally:
        parent.kill()
        parent.wait()


def test_start_server_measures_cold_start_and_stops(tmp_path):
    """A real (tiny) HTTP server: readiness, cold start, and the process group stopped."""
    server = start_server([sys.executable, "-m", "http.server", "{port}", "--bind", "{host}"],
                          ready_path="/", cwd=tmp_path, log_path=tmp_path / "log",
                          timeout_s=30)
    try:
        assert server.cold_start_s > 0 and server.proc.poll() is None
        assert server.url.endswith(str(server.port))
    finally:
        server.stop()
    assert server.proc.poll() is not None


def test_start_server_reports_an_early_exit(tmp_path):
    with pytest.raises(RuntimeError, match="exited with code 3"):
        start_server([sys.executable, "-c", "print('boom'); raise SystemExit(3)"],
                     log_path=tmp_path / "log", timeout_s=20)


def test_locust_command_roles(tmp_path):
    common = dict(users=8, duration_s=2.5, spawn_rate=None, shape="ramp", mix="predict=1",
                  batch_rows=4, csv_prefix=tmp_path / "l", html=None, seed=1,
                  sample_file=None, versions_out=None)
    local = locust_command(tmp_path / "f.py", "http://h", **common)
    assert local[local.index("-t") + 1] == "3s" and local[local.index("-r") + 1] == "8"
    assert "--skserve-shape" in local and "--master" not in local
    worker = locust_command(tmp_path / "f.py", "http://h", role="worker", master_port=6000,
                            **common)
    assert "--worker" in worker and "--headless" not in worker and "6000" in worker
    master = locust_command(tmp_path / "f.py", "http://h", role="master", expect_workers=3,
                            **common)
    assert master[master.index("--expect-workers") + 1] == "3"
