"""The online endpoint over real HTTP: a real `skserve serve` (BentoML) on a free port."""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request

import pytest

from skserve import __version__, store
from skserve.schema import example_row, rows_to_frame


def call(url: str, body: bytes | None = None, ctype: str = "application/json",
         method: str | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"content-type": ctype} if body is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def post(server, path: str, payload) -> tuple[int, dict, object]:
    status, headers, body = call(server.url + path, json.dumps(payload).encode())
    return status, headers, json.loads(body)


@pytest.fixture(scope="module")
def model(trained_model):
    return store.load(trained_model)


def rows_for(info, n: int) -> list[dict]:
    """Distinct valid rows spread over the training range."""
    schema = info.schema
    base = example_row(schema)
    temp = schema.feature("Temperature")
    return [{**base, "timestamp": f"2014-02-{1 + i % 27:02d}T{i % 24:02d}:30:00",
             "WorkDay": i % 2, "Temperature": temp.min + (temp.max - temp.min) * i / n}
            for i in range(n)]


def metric(server, name: str, **labels) -> float:
    _, _, text = call(server.url + "/metrics")
    total = 0.0
    for line in text.decode().splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_predict_matches_the_in_process_model(server, model):
    pipeline, info = model
    rows = rows_for(info, 5)
    expected = pipeline.predict(rows_to_frame(info.schema, [
        {**r, "timestamp": __import__("datetime").datetime.fromisoformat(r["timestamp"])}
        for r in rows]))
    for row, want in zip(rows, expected, strict=True):
        status, headers, body = post(server, "/predict", row)
        assert status == 200
        assert body == {"prediction": pytest.approx(want, abs=1e-9), "model_version": info.tag}
        assert headers["x-model-version"] == info.tag


def test_predict_batch_keeps_order_and_matches_single_rows(server, model):
    _, info = model
    rows = rows_for(info, 40)
    status, headers, body = post(server, "/predict_batch", rows)
    assert status == 200 and headers["x-model-version"] == info.tag
    singles = [post(server, "/predict", r)[2]["prediction"] for r in rows[:5]]
    assert [b["prediction"] for b in body[:5]] == pytest.approx(singles, abs=1e-9)
    assert len(body) == 40 and {b["model_version"] for b in body} == {info.tag}


def test_metadata_describes_the_model(server, model):
    _, info = model
    status, headers, raw = call(server.url + "/metadata")
    meta = json.loads(raw)
    assert status == 200 and headers["x-model-version"] == info.tag
    assert meta["model"] == info.tag and meta["target"] == "Demand"
    assert [f["name"] for f in meta["features"]] == ["timestamp", "WorkDay", "Temperature"]
    assert set(meta["metrics"]) >= {"rmse", "mae", "r2", "mape"}
    assert re.match(r"\d{4}-\d\d-\d\dT", meta["trained_at"])


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/docs.json"])
def test_probes_and_openapi(server, path):
    status, _, _ = call(server.url + path)
    assert status == 200


def test_openapi_names_the_generated_row_fields(server, model):
    """The document BentoML generates, versioned `<skserve version>+<model name>.<version>`
    (BentoML itself says "None" when serving from source)."""
    _, info = model
    _, _, raw = call(server.url + "/docs.json")
    about = json.loads(raw)["info"]
    assert about["version"] == f"{__version__}+{info.name}.{info.version}"
    assert about["title"] == f"skserve: {info.tag}" and "contact" not in about
    assert str(info.tag) in about["description"] and "BentoML" not in about["description"]
    row = json.loads(raw)["components"]["schemas"]["Row"]
    assert set(row["required"]) == {"timestamp", "WorkDay", "Temperature"}
    assert row["additionalProperties"] is False


def test_openapi_example_answer_is_the_models_answer(server):
    """The documented answer is what the server answers to the documented request."""
    predict = json.loads(call(server.url + "/docs.json")[2])["paths"]["/predict"]["post"]
    request = predict["requestBody"]["content"]["application/json"]["example"]
    shown = predict["responses"]["200"]["content"]["application/json"]["example"]
    status, _, body = post(server, "/predict", request)
    assert status == 200, body
    assert shown == body


def test_metrics_are_present_and_move(server, model):
    _, info = model
    before = metric(server, "skserve_predictions_total", model_version=info.tag)
    drift_before = metric(server, "skserve_feature_out_of_range_total", feature="Temperature")
    temp = info.schema.feature("Temperature")
    hot = {**example_row(info.schema), "Temperature": temp.max + 1.0}  # valid, but unseen
    post(server, "/predict_batch", [hot, hot, example_row(info.schema)])
    assert metric(server, "skserve_predictions_total", model_version=info.tag) == before + 3
    assert metric(server, "skserve_feature_out_of_range_total", feature="Temperature") \
        == drift_before + 2
    _, _, text = call(server.url + "/metrics")
    for name in ("bentoml_service_request_total", "bentoml_service_request_duration_seconds",
                 "skserve_prediction_value_bucket", "skserve_model_info",
                 "skserve_model_batch_rows_bucket"):
        assert name in text.decode(), name
    assert metric(server, "skserve_model_info", model_version=info.tag) == 1


def test_request_durations_use_skserve_buckets(server, model):
    """BentoML's request-duration histogram has skserve's bounds (the ones the rollout's
    latency check states its error with), not BentoML's default ones, with short labels:
    50 ms, the rollout's p95 floor, and 100 ms, the alert's, are bounds exactly."""
    from skserve.metrics import DURATION_BUCKETS, DURATION_ERROR

    _, info = model
    assert post(server, "/predict", example_row(info.schema))[0] == 200
    _, _, text = call(server.url + "/metrics")
    series = [line for line in text.decode().splitlines()
              if line.startswith("bentoml_service_request_duration_seconds_bucket{")
              and 'endpoint="/predict"' in line and 'http_response_code="200"' in line]
    labels = [re.search(r'le="([^"]+)"', line).group(1) for line in series]
    assert [float(le) for le in labels] == [*DURATION_BUCKETS, float("inf")]
    assert {"0.003125", "0.05", "0.1", "0.2972", "30.0", "+Inf"} <= set(labels)
    assert len(labels) == 95 and DURATION_ERROR < 0.105
    counts = [float(line.rsplit(" ", 1)[1]) for line in series]
    assert counts == sorted(counts) and counts[-1] == metric(
        server, "bentoml_service_request_duration_seconds_count", endpoint="/predict",
        http_response_code="200")


def test_every_model_call_records_the_same_metrics(server, model):
    """Two concurrent 500-row batches raise the rows-per-call histogram's count by the
    number of model calls (1 when the micro-batcher merged them, else 2) and its sum by
    1000, as many rows as the scored counter and the value histogram; single rows on
    /predict and a V2 infer request are counted the same way."""
    _, info = model
    labels = {"model_version": info.tag}

    def snapshot() -> dict[str, float]:
        return {"count": metric(server, "skserve_model_batch_rows_count", **labels),
                "sum": metric(server, "skserve_model_batch_rows_sum", **labels),
                "rows": metric(server, "skserve_predictions_total", **labels),
                "values": metric(server, "skserve_prediction_value_count", **labels)}

    before = snapshot()
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(
        post(server, "/predict_batch", rows_for(info, 500))[0])) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    after = snapshot()
    delta = {k: after[k] - before[k] for k in before}
    assert statuses == [200, 200]
    assert delta["count"] in (1, 2), delta
    assert delta["sum"] == delta["rows"] == delta["values"] == 1000, delta
    for r in rows_for(info, 3):  # one at a time: one model call each
        assert post(server, "/predict", r)[0] == 200
    final = snapshot()
    assert final["count"] - after["count"] == 3 and final["sum"] - after["sum"] == 3
    assert final["rows"] - after["rows"] == 3
    rows = rows_for(info, 7)  # one V2 infer request of 7 rows: one model call of 7 rows
    inputs = [{"name": name, "datatype": "BYTES" if name == "timestamp" else "FP64",
               "shape": [len(rows)], "data": [r[name] for r in rows]} for name in rows[0]]
    status, _, answer = post(server, f"/v2/models/{info.name}/infer", {"inputs": inputs})
    assert status == 200 and answer["outputs"][0]["shape"] == [7], answer
    v2 = snapshot()
    assert {k: v2[k] - final[k] for k in v2} == {"count": 1, "sum": 7, "rows": 7, "values": 7}


BAD = [
    ("wrong type", "/predict", {"Temperature": "warm"}, "Temperature"),
    ("bool as number", "/predict", {"Temperature": True}, "Temperature"),
    ("missing field", "/predict", {"WorkDay": None}, "WorkDay"),
    ("out of valid range", "/predict", {"Temperature": 1e6}, "Temperature"),
    ("not a level", "/predict", {"WorkDay": 7}, "WorkDay"),
    ("bad timestamp", "/predict", {"timestamp": "yesterday"}, "timestamp"),
    ("unknown field", "/predict", {"humidity": 50}, "humidity"),
]


@pytest.mark.parametrize(("case", "path", "change", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_rows_are_4xx_naming_the_field(server, model, case, path, change, field):
    _, info = model
    row = {**example_row(info.schema), **change}
    if change.get("WorkDay", 0) is None:
        del row["WorkDay"]
    status, _, body = post(server, path, row)
    assert status == 400, body
    assert field in {str(loc) for e in body["detail"] for loc in e["loc"]}
    assert body["error"] == "1 validation error for Row"
    assert all(set(e) == {"type", "loc", "msg"} for e in body["detail"]), body
    status, _, body = post(server, "/predict_batch", [example_row(info.schema), row])
    assert status == 400 and [1, field] in [e["loc"][:2] for e in body["detail"]]
    both = {**row, **({"Temperature": "warm"} if field != "Temperature" else {"WorkDay": 7})}
    status, _, body = post(server, "/predict", both)
    assert status == 400 and body["error"] == "2 validation errors for Row", body


@pytest.mark.parametrize(
    ("case", "path", "body", "ctype", "expect"),
    [
        ("invalid json", "/predict", b'{"Temperature": ', "application/json", 400),
        ("nul byte", "/predict_batch", b"\x00", "application/json", 400),
        ("empty list", "/predict_batch", b"[]", "application/json", 400),
        ("object for list", "/predict_batch", b"{}", "application/json", 400),
        ("wrong content type", "/predict", b"{}", "text/plain", 415),
        ("form content type", "/predict_batch", b"a=1", "application/x-www-form-urlencoded",
         415),
    ],
)
def test_malformed_requests_are_4xx_with_json(server, case, path, body, ctype, expect):
    status, _, raw = call(server.url + path, body, ctype)
    assert status == expect
    assert "detail" in json.loads(raw)


@pytest.mark.parametrize(("path", "shape", "hint"), [
    ("/predict", "list", "send a list to /predict_batch"),
    ("/predict_batch", "object", "send one row to /predict"),
    ("/predict", "number", None),
    ("/predict_batch", "list of lists", None),
])
def test_a_body_shaped_for_the_other_route_says_so(server, model, path, shape, hint):
    _, info = model
    row = example_row(info.schema)
    body = {"list": [row], "object": row, "number": 7, "list of lists": [[row]]}[shape]
    status, _, answer = post(server, path, body)
    assert status == 400 and len(answer["detail"]) == 1
    if hint is None:
        assert "hint" not in answer
    else:
        assert hint in answer["hint"] and answer["detail"][0]["loc"] == []


@pytest.mark.parametrize(("method", "path", "status", "kind"), [
    ("GET", "/nope", 404, "no_such_route"),
    ("POST", "/predict/extra", 404, "no_such_route"),
    ("DELETE", "/v2/health/live", 405, "method_not_allowed"),
])
def test_unknown_routes_and_methods_answer_json(server, method, path, status, kind):
    got, headers, raw = call(server.url + path, method=method)
    body = json.loads(raw)
    assert got == status and headers["content-type"] == "application/json"
    assert body["error"].endswith(f"{method} {path}") and body["detail"][0]["type"] == kind
    allowed = set(headers.get("allow", "").replace(" ", "").split(",")) - {""}
    assert allowed == ({"GET", "HEAD"} if status == 405 else set())


def test_batch_over_the_maximum_is_rejected(server, model):
    _, info = model
    status, _, body = post(server, "/predict_batch", [example_row(info.schema)] * 1001)
    assert status == 400
    assert body["detail"][0]["type"] == "too_long"
    assert body["detail"][0]["msg"] == "1001 rows: a request takes at most 1000 (send the " \
        "rest in further requests)"
