"""The SLO gate against a real slow server whose latencies are known (issue 9, item 6).

The server (delayserver.py, a real HTTP server on a free 127.0.0.1 port) answers every
request after a delay drawn from a known range and keeps its own record of how long each
took. Locust measures on the client side, so each latency it sees is that plus the trip
through the network and both ends: the server's record bounds the client's from below. The
locustfile (latency_log_locustfile.py) also writes every latency Locust measured to a file,
the exact values the gate's histogram must match within its stated bound. Nothing is
mocked. Each run lasts 5 s of load (requests take about 1 s); about 15 s per test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skserve.cli import main
from skserve.loadtest.latency import ERROR_BOUND

from .delayserver import DelayServer
from .test_latency import exact_percentile, within_bound

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
LOCUSTFILE = Path(__file__).with_name("latency_log_locustfile.py")


def client_latencies(folder: Path) -> dict[str, list[float]]:
    """{version: [ms]} from every Locust process's raw record."""
    out: dict[str, list[float]] = {}
    for path in folder.glob("*.tsv"):
        for line in path.read_text().splitlines():
            version, ms = line.split("\t")
            out.setdefault(version, []).append(float(ms))
    return out


def run(server: DelayServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, dict, str]:
    raw = tmp_path / "raw"
    raw.mkdir()
    monkeypatch.setenv("SKSERVE_TEST_LATENCY_DIR", str(raw))
    rc = main(["loadtest", "--host", server.url, "--duration", "5s", "--mix", "predict=1",
               "--locustfile", str(LOCUSTFILE), "--report-dir", str(tmp_path / "report"),
               "--json", *flags])
    captured = capsys.readouterr()
    return rc, json.loads(captured.out), captured.err


def verdict(doc: dict, name: str, scope: str = "all") -> dict:
    (found,) = [v for v in doc["verdicts"] if v["name"] == name and v["scope"] == scope]
    return found


def test_1002_to_1049_ms_fails_a_1000_ms_p95_and_passes_a_2000_ms_p99(tmp_path, monkeypatch,
                                                                     capsys):
    """The issue's case: Locust's rounded p95 said 1000 ms and the run passed. Now the gate
    uses the real p95 (every latency is over 1002 ms: broken, exit 3), and a p99 SLO above
    the slowest answer passes in the same run. (Its margin is wide because this machine is
    shared: the client's own delays are not the server's, and are not under test here.)"""
    with DelayServer({"demand:slow": (1002, 1049)}) as server:
        rc, doc, err = run(server, tmp_path, monkeypatch, capsys, "--users", "10",
                           "--slo-p95-ms", "1000", "--slo-p99-ms", "2000")
        served = server.handled()
    client = client_latencies(tmp_path / "raw")["demand:slow"]
    result = doc["result"]
    assert rc == 3, err
    assert result["requests"] == len(client) >= 20 and result["failures"] == 0
    for q in (0.5, 0.95, 0.99):
        reported = result[f"p{round(q * 100)}_ms"]
        assert within_bound(reported, exact_percentile(client, q)), (q, reported)
        assert reported >= exact_percentile(served, q)  # the client's clock spans the server's
    p95, p99 = verdict(doc, "p95"), verdict(doc, "p99")
    assert not p95["ok"] and p95["observed"] == result["p95_ms"] > 1002
    assert p99["ok"] and p99["observed"] == result["p99_ms"]
    assert result["percentile_method"] == ERROR_BOUND
    assert result["locust_rounded"]["p95_ms"] % 100 == 0  # what Locust itself would say
    assert f"BROKEN: p95 {result['p95_ms']:g} ms > 1000 ms" in err
    assert "skserve loadtest: error: SLO broken: p95" in err
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert f"p95 {result['p95_ms']:g} ms" in summary and ERROR_BOUND in summary
    users = json.loads((tmp_path / "report" / "versions.json").read_text())["users"]
    assert max(n for _t, n in users) == 10  # the users curve the plots draw


def test_distributed_workers_merge_per_version_histograms_within_the_bound(
        tmp_path, monkeypatch, capsys):
    """Two Locust workers, two versions answering alternately: 1002–1049 ms and
    100–149 ms. The master's merged per-version p95 matches the exact p95 of what both
    workers measured; the slow version breaks a 1000 ms per-version gate, the fast one
    holds it."""
    versions = {"demand:v1": (1002.0, 1049.0), "demand:v2": (100.0, 149.0)}
    with DelayServer(versions) as server:
        rc, doc, err = run(server, tmp_path, monkeypatch, capsys, "--users", "12",
                           "--workers", "2", "--slo-p95-ms", "1000", "--slo-per-version")
        served = {v: server.handled(v) for v in versions}
    client = client_latencies(tmp_path / "raw")
    assert len(list((tmp_path / "raw").glob("*.tsv"))) == 2  # both workers sent requests
    assert rc == 3, err
    assert sorted(doc["versions"]) == sorted(versions) == sorted(client)
    for version in versions:
        stats = doc["versions"][version]
        # every request a worker measured reached the master (the shape's final drain)
        assert stats["requests"] == len(client[version]) >= 10
        exact = exact_percentile(client[version], 0.95)
        assert within_bound(stats["p95_ms"], exact), (version, stats["p95_ms"], exact)
        assert stats["p95_ms"] >= exact_percentile(served[version], 0.95)
        assert verdict(doc, "p95", version)["observed"] == stats["p95_ms"]
    everything = [ms for values in client.values() for ms in values]
    assert within_bound(doc["result"]["p95_ms"], exact_percentile(everything, 0.95))
    assert not verdict(doc, "p95")["ok"] and not verdict(doc, "p95", "demand:v1")["ok"]
    assert verdict(doc, "p95", "demand:v2")["ok"], doc["versions"]["demand:v2"]
    assert (tmp_path / "report" / "versions.png").exists()  # two versions: their plot
