"""A classifier served for real: /predict, /predict_batch, /metadata, /docs.json examples,
metrics and hostile input, against a real `skserve serve` of tests/classifiers.py's Titanic
model (text labels, predict_proba), checked against the stored pipeline in-process.
"""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pandas as pd
import pytest

from skserve import store
from skserve.outputs import Task, class_key
from skserve.schema import request_model, response_model, rows_to_frame
from tests.classifiers import import_no_proba, import_pclass, titanic_frame
from tests.conftest import start_server, stop_server
from tests.service.test_http import call, metric, post

ROWS = [
    {"pclass": "1st", "sex": "female", "age": 29.0, "sibsp": 0, "parch": 0},
    {"pclass": "3rd", "sex": "male", "age": None, "sibsp": 1, "parch": 2},
    {"pclass": "2nd", "sex": "male", "age": 0.9167, "sibsp": 1, "parch": 2},
    {"pclass": "3rd", "sex": "female", "age": 63, "sibsp": 0, "parch": 0},
]


@pytest.fixture(scope="module")
def model(classifier_model):
    return store.load(classifier_model)


def expected(model, rows: list[dict]) -> tuple[list, np.ndarray]:
    """The stored pipeline's labels and probabilities for `rows`, in-process."""
    pipeline, info = model
    valid = [request_model(info.schema)(**r).__dict__ for r in rows]
    frame = rows_to_frame(info.schema, valid)
    return pipeline.predict(frame).tolist(), pipeline.predict_proba(frame)


def test_predict_answers_label_and_probabilities(classifier_server, model):
    _, info = model
    labels, proba = expected(model, ROWS)
    for row, label, p in zip(ROWS, labels, proba, strict=True):
        status, headers, body = post(classifier_server, "/predict", row)
        assert status == 200 and headers["x-model-version"] == info.tag
        assert body["label"] == label and body["model_version"] == info.tag
        assert list(body["probabilities"]) == ["died", "survived"]
        assert list(body["probabilities"].values()) == pytest.approx(p.tolist(), abs=1e-12)
    assert {label for label in labels} == {"died", "survived"}  # both classes seen


def test_predict_batch_matches_and_keeps_order(classifier_server, model):
    labels, proba = expected(model, ROWS * 5)
    status, _, body = post(classifier_server, "/predict_batch", ROWS * 5)
    assert status == 200 and len(body) == 20
    assert [b["label"] for b in body] == labels
    assert np.allclose([[b["probabilities"][k] for k in ("died", "survived")] for b in body],
                       proba, atol=1e-12)


def test_metadata_says_how_to_read_an_answer(classifier_server, model):
    _, info = model
    meta = json.loads(call(classifier_server.url + "/metadata")[2])
    assert meta["task"] == "classification" and meta["target"] == "survived"
    assert meta["classes"] == ["died", "survived"] == meta["class_keys"]
    assert meta["has_proba"] is True
    assert meta["input_example"] == info.metadata["input_example"]
    assert [f["name"] for f in meta["features"]] == ["pclass", "sex", "age", "sibsp", "parch"]


def _resolved(document: dict, schema: dict) -> dict:
    """A JSON Schema whose `#/components/...` references resolve inside `document`."""
    return {**schema, "components": document.get("components", {})}


@pytest.fixture(scope="module")
def docs(classifier_server) -> dict:
    return json.loads(call(classifier_server.url + "/docs.json")[2])


@pytest.mark.parametrize(("path", "many"), [("/predict", False), ("/predict_batch", True)])
def test_docs_examples_validate_and_serve(classifier_server, docs, path, many):
    """The example request validates against the served schema and gets a 200; the example
    answer and the real answer both validate against the response schema."""
    operation = docs["paths"][path]["post"]
    request = operation["requestBody"]["content"]["application/json"]
    answer = operation["responses"]["200"]["content"]["application/json"]
    jsonschema.validate(request["example"], _resolved(docs, request["schema"]))
    jsonschema.validate(answer["example"], _resolved(docs, answer["schema"]))
    status, _, body = post(classifier_server, path, request["example"])
    assert status == 200, body
    jsonschema.validate(body, _resolved(docs, answer["schema"]))
    first = body[0] if many else body
    assert first["label"] in ("died", "survived")
    shown = answer["example"][0] if many else answer["example"]  # the model's own answer
    assert shown["label"] == first["label"]
    assert shown["probabilities"] == pytest.approx(first["probabilities"], abs=1e-12)
    bad = {**(request["example"][0] if many else request["example"]), "sex": "other"}
    with pytest.raises(jsonschema.ValidationError):  # the schema is strict, as the server is
        jsonschema.validate([bad] if many else bad, _resolved(docs, request["schema"]))


def test_docs_document_metadata_and_v2(classifier_server, docs):
    meta = json.loads(call(classifier_server.url + "/metadata")[2])
    get = docs["paths"]["/metadata"]["get"]["responses"]["200"]["content"]["application/json"]
    assert get["example"] == meta
    jsonschema.validate(meta, get["schema"])
    infer = docs["paths"]["/v2/models/titanic/infer"]["post"]
    example = infer["requestBody"]["content"]["application/json"]["example"]
    status, _, body = post(classifier_server, "/v2/models/titanic/infer", example)
    assert status == 200, body
    assert [o["name"] for o in body["outputs"]] == ["predict", "predict_proba"]
    shown = infer["responses"]["200"]["content"]["application/json"]["example"]
    assert [(o["name"], o["datatype"]) for o in shown["outputs"]] == \
        [(o["name"], o["datatype"]) for o in body["outputs"]]
    assert shown["outputs"][0]["data"] == body["outputs"][0]["data"]
    assert shown["outputs"][1]["data"] == pytest.approx(body["outputs"][1]["data"], abs=1e-12)


def test_class_metrics_count_each_prediction(classifier_server, model):
    """Rows per predicted class and the top-class probability histogram, by model version."""
    _, info = model
    labels, proba = expected(model, ROWS)
    v = {"model_version": info.tag}
    before = {k: metric(classifier_server, "skserve_predicted_class_total", **v, **{"class": k})
              for k in ("died", "survived")}
    confidence = metric(classifier_server, "skserve_prediction_confidence_ratio_count", **v)
    total = metric(classifier_server, "skserve_prediction_confidence_ratio_sum", **v)
    assert post(classifier_server, "/predict_batch", ROWS)[0] == 200
    for k in ("died", "survived"):
        assert metric(classifier_server, "skserve_predicted_class_total", **v,
                      **{"class": k}) == before[k] + labels.count(k)
    assert metric(classifier_server, "skserve_prediction_confidence_ratio_count", **v) \
        == confidence + len(ROWS)
    assert metric(classifier_server, "skserve_prediction_confidence_ratio_sum", **v) \
        == pytest.approx(total + proba.max(axis=1).sum(), abs=1e-9)
    text = call(classifier_server.url + "/metrics")[2].decode()
    assert "skserve_prediction_value_bucket" not in text  # a regressor's histogram only


HOSTILE = [
    ("text for a number", {"age": "old"}, "age"),
    ("bool for a number", {"sibsp": True}, "sibsp"),
    ("not a level", {"parch": 7}, "parch"),
    ("not an integer", {"sibsp": 0.5}, "sibsp"),
    ("far out of range", {"age": 1e9}, "age"),
    ("unseen category", {"pclass": "4th"}, "pclass"),
    ("number for a category", {"sex": 1}, "sex"),
    ("null where training had none", {"sex": None}, "sex"),
    ("unknown field", {"cabin": "B5"}, "cabin"),
    ("a label sent as input", {"survived": "died"}, "survived"),
]


@pytest.mark.parametrize(("case", "change", "field"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_rows_are_400_naming_the_field(classifier_server, case, change, field):
    """The same rules as the regressor's, on a classifier's features, on all three routes."""
    row = {**ROWS[0], **change}
    status, _, body = post(classifier_server, "/predict", row)
    assert status == 400 and field in {str(x) for e in body["detail"] for x in e["loc"]}
    status, _, body = post(classifier_server, "/predict_batch", [ROWS[1], row])
    assert status == 400 and [1, field] in [e["loc"][:2] for e in body["detail"]]
    if field in ROWS[0]:
        inputs = [{"name": k, "datatype": "BYTES" if isinstance(v, str) or k in ("pclass", "sex")
                   else "FP64", "shape": [1], "data": [v]} for k, v in row.items()]
        status, _, body = post(classifier_server, "/v2/models/titanic/infer", {"inputs": inputs})
        assert status == 400 and field in body["error"], body


def test_response_models_keep_label_types():
    """Labels keep their JSON type in the answer's schema: integers, booleans, text; without
    predict_proba there is no `probabilities`."""
    for classes, kind in (([1, 2, 3], "integer"), ([False, True], "boolean"),
                          (["no", "yes"], "string"), ([0.5, 1.5], "number")):
        task = Task("classification", tuple(classes), has_proba=kind != "boolean")
        schema = response_model(task, "y").model_json_schema()
        assert schema["properties"]["label"]["type"] == kind
        assert schema["properties"]["label"]["enum"] == classes
        assert ("probabilities" in schema["properties"]) == (kind != "boolean")
        if kind != "boolean":
            assert schema["properties"]["probabilities"]["required"] == \
                [class_key(c) for c in classes]
    assert [class_key(c) for c in (1, True, 2.5, "x y")] == ["1", "true", "2.5", "x y"]


@pytest.mark.slow
@pytest.mark.parametrize(("make", "kind", "datatype", "has_proba"), [
    (import_pclass, int, "INT64", True), (import_no_proba, bool, "BOOL", False)],
    ids=["integer-labels", "boolean-labels-without-predict-proba"])
def test_served_labels_keep_their_type_and_probabilities_need_predict_proba(
        make, kind, datatype, has_proba):
    """Classes 1/2/3 (a random forest) and false/true (a linear SVM, no predict_proba)
    served for real: /predict_batch and V2 answer the pipeline's labels in their own JSON
    type; `probabilities`, `predict_proba` and the confidence histogram only with
    predict_proba."""
    tag = make(version="served")
    pipeline, info = store.load(tag)
    names = info.schema.names
    rows = [{n: None if pd.isna(r[n]) else r[n] for n in names}
            for r in titanic_frame().iloc[:8].to_dict("records")]
    valid = [request_model(info.schema)(**r).__dict__ for r in rows]
    labels = pipeline.predict(rows_to_frame(info.schema, valid)).tolist()
    server = start_server(tag)
    try:
        status, _, body = post(server, "/predict_batch", rows)
        assert status == 200, body
        assert [b["label"] for b in body] == labels
        assert all(type(b["label"]) is kind for b in body)
        assert all(("probabilities" in b) == has_proba for b in body)
        known = [r for r in rows if r["age"] is not None]  # a V2 tensor: no null below
        inputs = [{"name": n, "datatype": "BYTES" if isinstance(known[0][n], str) else "FP64",
                   "shape": [len(known)], "data": [r[n] for r in known]} for n in names]
        status, _, answer = post(server, f"/v2/models/{info.name}/infer", {"inputs": inputs})
        assert status == 200, answer
        outputs = {o["name"]: o for o in answer["outputs"]}
        assert list(outputs) == ["predict", "predict_proba"][:2 if has_proba else 1]
        assert outputs["predict"]["datatype"] == datatype
        assert outputs["predict"]["data"] == [label for label, r in zip(labels, rows,
                                                                      strict=True)
                                              if r["age"] is not None]
        text = call(server.url + "/metrics")[2].decode()
        assert ("skserve_prediction_confidence_ratio_count" in text) == has_proba
    finally:
        stop_server(server)
