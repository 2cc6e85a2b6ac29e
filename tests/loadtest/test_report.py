"""Report rendering from a report folder's files (no server), and the replica watcher."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from matplotlib.image import imread

from skserve.loadtest.latency import ERROR_BOUND
from skserve.loadtest.replicas import ReplicaWatcher
from skserve.loadtest.report import render_plots, summary_markdown, write_html
from skserve.loadtest.slo import Slo, evaluate
from skserve.loadtest.versions import VersionRecorder

PNG = b"\x89PNG\r\n\x1a\n"


def fake_run(folder: Path, versions: int = 2, failures: bool = True) -> None:
    rec = VersionRecorder()
    t0 = 1_700_000_000
    for s in range(20):
        for i in range(30):
            rec.add("demand:stable", 10 + i, True, t0 + s + i / 30)
            if versions > 1:
                rec.add("demand:canary", 20 + 2 * i, i != 0 or not failures, t0 + s + i / 30)
    (folder / "versions.json").write_text(json.dumps({"summary": rec.summary(),
                                                      "payload": rec.to_payload()}))
    header = ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", "50%",
              "95%", "99%"]
    with open(folder / "locust_stats_history.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for s in range(21):
            w.writerow([t0 + s, min(s, 10), "", "Aggregated", 60, 1, 20, 50, 60])


def test_render_plots_writes_pngs(tmp_path):
    fake_run(tmp_path)
    watcher = ReplicaWatcher(tmp_path / "replicas.csv", "skserve-blue", interval_s=0,
                             read=iter([(1, 1), (2, 1), (3, 2), (3, 3)]).__next__)
    for _ in range(4):
        watcher.poll()
    plots = render_plots(tmp_path, Slo(p95_ms=60, p99_ms=80),
                         [{"name": "/predict", "error": "HTTPError 503", "occurrences": 20}],
                         "skserve-blue")
    assert [p.name for p in plots] == ["latency.png", "throughput.png", "versions.png",
                                       "replicas.png"]
    for p in plots:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000


def test_one_version_gets_no_versions_plot_and_no_failure_panel(tmp_path):
    """With one version, versions.png would repeat latency.png; without failures, the
    throughput figure is one panel (no empty "no failures" box)."""
    fake_run(tmp_path, versions=1, failures=False)
    plots = render_plots(tmp_path, Slo(p95_ms=60))
    assert [p.name for p in plots] == ["latency.png", "throughput.png"]
    quiet = imread(tmp_path / "throughput.png").shape[0]
    plots = render_plots(tmp_path, Slo(p95_ms=60),
                         [{"name": "/predict", "error": "HTTPError 503", "occurrences": 20}])
    assert imread(tmp_path / "throughput.png").shape[0] > quiet * 1.15  # the failures panel


def test_render_plots_without_data_writes_nothing(tmp_path):
    assert render_plots(tmp_path, Slo()) == []


def test_replica_watcher_records_and_survives_api_errors(tmp_path):
    calls = iter([(2, 1)])

    def read():
        return next(calls)  # raises StopIteration the second time: an "API error"

    watcher = ReplicaWatcher(tmp_path / "r.csv", "d", interval_s=0, read=read)
    watcher.poll()
    watcher.poll()
    watcher.poll()
    with open(tmp_path / "r.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["desired"], r["ready"]) for r in rows] == [("2", "1")]


def test_summary_markdown_says_what_broke():
    verdicts = evaluate(Slo(p95_ms=40), requests=100, failures=0, p95_ms=55, p99_ms=70)
    text = summary_markdown(
        host="http://x", config={"shape": "steady"},
        result={"requests": 100, "failures": 0, "failure_ratio": 0.0, "rps": 10.0,
                "p50_ms": 20, "p95_ms": 55, "p99_ms": 70},
        verdicts=verdicts,
        versions={"demand:b": {"requests": 100, "failures": 0, "error_ratio": 0.0,
                               "p50_ms": 20, "p95_ms": 55, "p99_ms": 70}},
        endpoints={}, failures=[], loadgen_cpu={"locust": 0.95},
        plots=[Path("latency.png")], saturated=True)
    assert text.startswith("# Load test of http://x: FAIL")
    assert "| p95 | all | 40 ms | 55 ms | **broken** |" in text
    assert "| demand:b | 100 | 0.00% | 20 | 55 | 70 |" in text
    assert "load generator may have limited" in text and "![latency](latency.png)" in text


def test_summary_and_html_say_how_the_percentiles_were_computed(tmp_path):
    result = {"requests": 60, "failures": 1, "failure_ratio": 1 / 60, "rps": 9.6,
              "p50_ms": 1032.191, "p95_ms": 1048.063, "p99_ms": 1049.599,
              "percentile_method": ERROR_BOUND,
              "locust_rounded": {"p50_ms": 1000, "p95_ms": 1000, "p99_ms": 1000}}
    text = summary_markdown(
        host="http://x", config={}, result=result,
        verdicts=evaluate(Slo(p95_ms=1000), requests=60, failures=1, p95_ms=1048.063,
                          p99_ms=1049.599),
        versions={}, endpoints={}, loadgen_cpu={"locust": 0.1}, plots=[], saturated=False,
        failures=[{"name": "/predict", "error": "<script>alert(1)</script>", "occurrences": 1}])
    assert "p95 1048.06 ms" in text and "| p95 | all | 1000 ms | 1048.06 ms | **broken** |" in text
    assert ERROR_BOUND in text and "its p50/p95/p99: 1000 / 1000 / 1000 ms" in text
    page = write_html(tmp_path / "report.html", text).read_text()
    assert "<table>" in page and "<title>Load test of http://x: FAIL</title>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
