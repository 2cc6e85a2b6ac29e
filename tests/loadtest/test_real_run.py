"""Short real runs (a few seconds each) of `skserve loadtest` against a real `bentoml serve`.

Nothing is mocked: the server is `skserve serve` on a free 127.0.0.1 port (conftest.py) and
Locust runs as subprocesses, as a single process and as a master with a worker.
"""

from __future__ import annotations

import json

import pytest

from skserve.cli import main
from skserve.loadtest.harness import cpu_ms_per_request, run_locust, sample_tree

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
PNG = b"\x89PNG\r\n\x1a\n"


def test_passing_slo_exits_0_with_csv_html_plots_and_versions(lt_server, trained_model,
                                                              tmp_path, capsys):
    report = tmp_path / "pass"
    rc = main(["loadtest", "--host", lt_server.url, "--shape", "steady", "--users", "4",
               "--duration", "3s", "--mix", "predict=0.7,predict_batch=0.3",
               "--batch-rows", "8", "--slo-p95-ms", "60000", "--slo-p99-ms", "60000",
               "--slo-max-failure-ratio", "0", "--slo-per-version",
               "--report-dir", str(report), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    doc = json.loads(captured.out)
    assert doc["passed"] and doc["result"]["requests"] > 10 and doc["result"]["failures"] == 0
    assert list(doc["versions"]) == [trained_model]  # grouped by x-model-version
    assert doc["versions"][trained_model]["requests"] == doc["result"]["requests"]
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust.html",
                 "versions.json", "summary.md"):
        assert (report / name).stat().st_size > 0, name
    for name in ("latency.png", "throughput.png"):  # one version: no versions.png
        assert (report / name).read_bytes()[:8] == PNG, name
    page = (report / "report.html").read_text()
    assert '<img src="latency.png"' in page and "<table>" in page
    assert not (report / "versions.png").exists()
    stats = (report / "locust_stats.csv").read_text()
    assert "/predict_batch" in stats and "/predict," in stats  # the mix reached both
    assert "SLO: PASS" in captured.err


def test_broken_slo_exits_3_and_names_it_distributed(lt_server, trained_model, tmp_path,
                                                    capsys):
    report = tmp_path / "fail"
    rc = main(["loadtest", "--host", lt_server.url, "--users", "3", "--duration", "3s",
               "--workers", "1", "--slo-p95-ms", "0.01", "--slo-max-failure-ratio", "0.5",
               "--report-dir", str(report)])
    err = capsys.readouterr().err
    assert rc == 3, err
    assert "BROKEN: p95" in err and "BROKEN: failure_ratio" not in err
    summary = (report / "summary.md").read_text()
    assert ": FAIL" in summary and f"| {trained_model} |" in summary  # worker → master merge
    assert "master" in summary and "worker0" in summary


def test_harness_run_locust_and_server_cpu_per_request(lt_server, tmp_path):
    before = sample_tree(lt_server.pid)
    result = run_locust(lt_server.url, users=4, duration_s=2, out_dir=tmp_path / "h",
                        cores=[0], html=False)
    after = sample_tree(lt_server.pid)
    assert result.requests > 10 and result.failures == 0 and result.rps > 0
    assert result.p50_ms is not None and result.p50_ms <= result.p99_ms  # type: ignore[operator]
    assert set(result.endpoints) == {"/predict"}  # default mix: single rows only
    assert len(after.procs) >= 3  # bentoml's supervisor, 2 workers (+ helpers)
    cpu_ms = cpu_ms_per_request(before, after, result.requests)
    assert cpu_ms is not None and cpu_ms > 0
    assert 0 < result.loadgen_cpu["locust"] < 1.5
    assert lt_server.cold_start_s > 0


def test_unreachable_target_exits_5_with_locusts_reason(tmp_path, capsys):
    """Nothing listens on the port: Locust cannot read /metadata and stops; that is the
    target being unavailable (5), not a broken SLO (3) or a bug (1)."""
    from skserve.loadtest.harness import free_port

    report = tmp_path / "dead"
    rc = main(["loadtest", "--host", f"http://127.0.0.1:{free_port()}", "--duration", "3s",
               "--slo-p95-ms", "100", "--report-dir", str(report), "--json"])
    captured = capsys.readouterr()
    assert rc == 5, captured.err
    assert "Locust exited with code 2" in captured.err and "/metadata" in captured.err
    doc = json.loads(captured.out)
    assert not doc["passed"] and doc["result"]["requests"] == 0 and doc["plots"] == []
    assert ": FAIL" in (report / "summary.md").read_text()  # no requests breaks the gate
