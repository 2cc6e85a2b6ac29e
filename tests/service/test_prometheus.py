"""A real Prometheus scrapes the real service and evaluates the project's alert rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from skserve.schema import example_row
from tests.conftest import REPO, free_port, wait_ready

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None,
                       reason="prometheus not installed (make test installs Debian's)"),
]
RULES = REPO / "k8s" / "monitoring" / "prometheus-rules.yaml"


@pytest.fixture(scope="module")
def prometheus(server, tmp_path_factory):
    home: Path = tmp_path_factory.mktemp("prometheus")
    target = server.url.removeprefix("http://")
    (home / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n"
        f"  - job_name: skserve\n    static_configs: [{{targets: ['{target}'], "
        "labels: {slot: blue, namespace: test}}]\n")
    port = free_port()
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={home / 'prometheus.yml'}",
         f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/-/ready", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def query(url: str, promql: str) -> list[dict]:
    q = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for(url: str, promql: str, check, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        result = query(url, promql)
        if check(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_scraped_counters_match_the_traffic(prometheus, server, trained_model):
    from skserve import store

    row = example_row(store.get_info(trained_model).schema)
    promql = f'sum(skserve_predictions_total{{model_version="{trained_model}"}})'
    before = wait_for(prometheus, promql, bool)  # the first scrape has happened
    start = float(before[0]["value"][1])
    body = json.dumps([row] * 25).encode()
    for _ in range(4):
        req = urllib.request.Request(server.url + "/predict_batch", data=body,
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req, timeout=30).read()
    result = wait_for(prometheus, promql, lambda r: r and float(r[0]["value"][1]) >= start + 100)
    assert float(result[0]["value"][1]) == start + 100


def test_alert_rules_load_and_evaluate_on_real_series(prometheus, server, trained_model):
    from skserve import store

    body = json.dumps(example_row(store.get_info(trained_model).schema)).encode()

    def traffic_then_check(result: list[dict]) -> bool:
        req = urllib.request.Request(server.url + "/predict", data=body,
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req, timeout=30).read()
        return bool(result) and result[0]["value"][1] != "NaN"

    latency = wait_for(
        prometheus,
        'histogram_quantile(0.95, sum by (le) (rate(bentoml_service_request_duration_seconds_'
        'bucket{endpoint=~"/predict|/predict_batch"}[1m])))',
        traffic_then_check)
    assert 0 < float(latency[0]["value"][1]) < 10
    with urllib.request.urlopen(f"{prometheus}/api/v1/rules", timeout=10) as resp:
        groups = json.loads(resp.read())["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {r["name"] for r in rules} >= {"SkserveHighErrorRate", "SkserveHighLatencyP95"}
    deadline = time.monotonic() + 20
    while any(r.get("health") != "ok" for r in rules) and time.monotonic() < deadline:
        time.sleep(1)
        with urllib.request.urlopen(f"{prometheus}/api/v1/rules", timeout=10) as resp:
            rules = [r for g in json.loads(resp.read())["data"]["groups"] for r in g["rules"]]
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError"))
                                                      for r in rules]
    firing = query(prometheus, 'ALERTS{alertname="SkserveHighErrorRate"}')
    assert firing == []  # no 5xx were served


def test_v2_infer_requests_are_judged_with_the_rest(prometheus, server, trained_model):
    """An Open Inference Protocol request is counted by the selector the rollout analysis
    and the alert rules use (BentoML labels the request path, version in it or not)."""
    from skserve import store
    from skserve.rollout.analysis import ENDPOINTS

    info = store.get_info(trained_model)
    row = example_row(info.schema)
    types = {"datetime": "BYTES", "category": "BYTES"}
    body = json.dumps({"inputs": [
        {"name": f.name, "shape": [1], "datatype": types.get(f.dtype, "FP64"),
         "data": [row[f.name]]} for f in info.schema.features]}).encode()
    paths = [f"/v2/models/{info.name}/infer",
             f"/v2/models/{info.name}/versions/{info.version}/infer"]
    for path in paths:
        req = urllib.request.Request(server.url + path, data=body,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
    promql = f"count by (endpoint) (bentoml_service_request_total{{{ENDPOINTS}}})"
    result = wait_for(prometheus, promql,
                      lambda r: {s["metric"]["endpoint"] for s in r} >= set(paths))
    assert {s["metric"]["endpoint"] for s in result} >= set(paths)
