"""skserve.loadtest.scaleout: per-pod request counts from real /metrics text, and the
window arithmetic the e2e HPA test and bench_scaleout.py judge shares with (samples built
by hand here; the e2e test polls real pods)."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from skserve import store
from skserve.loadtest.scaleout import (
    PodCounter,
    Sample,
    pod_cpu_seconds,
    requests_served,
    rps_between,
)
from skserve.schema import example_row


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


@pytest.mark.slow
def test_requests_served_counts_prediction_requests_of_a_real_server(server, trained_model):
    """/predict, /predict_batch and a V2 infer, answered or refused; not /metadata."""
    info = store.get_info(trained_model)
    row = example_row(info.schema)
    meta = json.loads(_get(f"{server.url}/v2/models/{info.name}"))
    infer = {"inputs": [{"name": i["name"], "datatype": i["datatype"], "shape": [1, 1],
                         "data": [row[i["name"]]]} for i in meta["inputs"]]}
    before = requests_served(_get(server.url + "/metrics"))
    for path, body in (("/predict", row), ("/predict", {"nope": 1}),
                       ("/predict_batch", [row, row]), (f"/v2/models/{info.name}/infer", infer)):
        request = urllib.request.Request(server.url + path, json.dumps(body).encode(),
                                         {"content-type": "application/json"})
        with contextlib.suppress(urllib.error.HTTPError):  # a 400 is a request answered too
            urllib.request.urlopen(request, timeout=10).read()
    _get(server.url + "/metadata")  # not a prediction endpoint
    assert requests_served(_get(server.url + "/metrics")) - before == 4


def _counter(samples: list[Sample]) -> PodCounter:
    counter = PodCounter("ns", "app=x", list_pods=lambda: [])
    counter.samples = samples
    return counter


def test_window_gives_each_pods_requests_share_cpu_and_busy_cores() -> None:
    samples = [
        Sample(100.0, {"a": (50.0, 1000, 10.0)}, (500.0, 1000.0)),
        Sample(110.0, {"a": (50.0, 1900, 12.0), "b": (105.0, 0, 1.0)}, (515.0, 1020.0)),
        Sample(120.0, {"a": (50.0, 2400, 13.5), "b": (105.0, 500, 2.5)}, (533.0, 1040.0)),
    ]
    counter = _counter(samples)
    window = counter.window(110, 120)
    assert window is not None
    assert window.requests == {"a": 500, "b": 500}
    assert window.shares == {"a": 0.5, "b": 0.5}
    assert window.busy_cores == pytest.approx(1.8)
    assert window.cpu_ms_per_request == pytest.approx(3.0)  # 3 CPU s / 1000 requests
    whole = counter.window(0, 200)
    assert whole is not None and whole.requests == {"a": 1400}  # b was not there at first
    assert counter.window(111, 119) is None  # fewer than two samples inside
    assert counter.ready_since() == {"a": 50.0, "b": 105.0}


def test_a_restarted_pods_counter_counts_zero_and_unknown_cpu_is_none() -> None:
    samples = [Sample(0.0, {"a": (1.0, 900, None)}, (0.0, 0.0)),
               Sample(10.0, {"a": (1.0, 20, None)}, (10.0, 20.0))]
    window = _counter(samples).window(0, 10)
    assert window is not None and window.requests == {"a": 0}
    assert window.cpu_ms_per_request is None


def test_pod_cpu_seconds_reads_the_pods_cgroup(tmp_path: Path) -> None:
    (tmp_path / "burstable" / "pod1234").mkdir(parents=True)
    (tmp_path / "burstable" / "pod1234" / "cpuacct.usage").write_text("2500000000\n")
    assert pod_cpu_seconds("1234", tmp_path) == 2.5
    assert pod_cpu_seconds("9999", tmp_path) is None


def test_rps_between_averages_locusts_rows_in_the_window() -> None:
    history = [{"t": 1.0, "rps": 100.0}, {"t": 2.0, "rps": 200.0}, {"t": 3.0, "rps": None},
               {"t": 4.0, "rps": 400.0}]
    assert rps_between(history, 1.5, 4.0) == 300.0
    assert rps_between(history, 5.0, 6.0) is None
