"""The Open Inference Protocol (V2 REST) spoken to a real served regressor and classifier by
a client no one here wrote: Triton's `tritonclient.http`, from PyPI. Its answers must be the
numbers /predict gives for the same rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from skserve import store
from tests.service.test_classifier import ROWS
from tests.service.test_http import call, post, rows_for


def client(server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"))


KNOWN = [r for r in ROWS if r["age"] is not None]  # a numpy tensor has no null


def column(rows: list[dict], name: str, datatype: str, shape_2d: bool = False
           ) -> triton.InferInput:
    """One feature column as a JSON tensor."""
    dtype = {"BYTES": object, "FP64": np.float64, "INT64": np.int64}[datatype]
    array = np.array([r[name] for r in rows], dtype=dtype)
    if shape_2d:
        array = array.reshape(-1, 1)
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=False)
    return tensor


def test_health_and_metadata(classifier_server, server):
    for srv in (classifier_server, server):
        c = client(srv)
        name = store.get_info(srv.model).name
        assert c.is_server_live() and c.is_server_ready() and c.is_model_ready(name)
        assert c.get_server_metadata()["name"] == "skserve"
        meta = c.get_model_metadata(name)
        assert meta["versions"] == [store.get_info(srv.model).version]
        assert [i["name"] for i in meta["inputs"]] == store.get_info(srv.model).schema.names
        assert not c.is_model_ready("no-such-model")
    meta = client(classifier_server).get_model_metadata("titanic")
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {
        "pclass": "BYTES", "sex": "BYTES", "age": "FP64", "sibsp": "INT64", "parch": "INT64"}
    proba = next(o for o in meta["outputs"] if o["name"] == "predict_proba")
    assert json.loads(proba["parameters"]["classes"]) == ["died", "survived"]


@pytest.mark.parametrize("shape_2d", [False, True], ids=["shape-n", "shape-n-1"])
def test_classifier_infer_matches_predict(classifier_server, shape_2d):
    types = {"pclass": "BYTES", "sex": "BYTES", "age": "FP64", "sibsp": "INT64",
             "parch": "INT64"}
    rows = KNOWN * 3
    inputs = [column(rows, name, t, shape_2d) for name, t in types.items()]
    result = client(classifier_server).infer("titanic", inputs, request_id="r-1")
    labels = result.as_numpy("predict")
    proba = result.as_numpy("predict_proba")
    assert result.get_response()["id"] == "r-1"
    assert proba.shape == (len(rows), 2) and labels.shape == (len(rows),)
    status, _, body = post(classifier_server, "/predict_batch", rows)
    assert status == 200
    assert [label.decode() if isinstance(label, bytes) else label for label in labels] == \
        [b["label"] for b in body]
    assert np.allclose(proba, [[b["probabilities"]["died"], b["probabilities"]["survived"]]
                               for b in body], atol=1e-12)
    only = client(classifier_server).infer(
        "titanic", inputs, outputs=[triton.InferRequestedOutput("predict_proba",
                                                                binary_data=False)])
    assert [o["name"] for o in only.get_response()["outputs"]] == ["predict_proba"]


def test_regressor_infer_matches_predict(server):
    info = store.get_info(server.model)
    rows = rows_for(info, 25)
    inputs = [column(rows, "timestamp", "BYTES", False), column(rows, "WorkDay", "INT64", False),
              column(rows, "Temperature", "FP64", False)]
    result = client(server).infer(info.name, inputs, model_version=info.version)
    values = result.as_numpy("predict")
    status, _, body = post(server, "/predict_batch", rows)
    assert status == 200
    assert values.dtype == np.float64
    assert values.tolist() == pytest.approx([b["prediction"] for b in body], abs=1e-12)


def test_bad_requests_are_4xx_with_the_protocols_error(classifier_server):
    """Each is refused with a 4xx and `{"error": ...}` naming what was wrong; the client
    raises it with the status and the message."""
    c = client(classifier_server)
    good = {"pclass": "BYTES", "sex": "BYTES", "age": "FP64", "sibsp": "INT64",
            "parch": "INT64"}
    inputs = [column(KNOWN, n, t) for n, t in good.items()]
    with pytest.raises(InferenceServerException) as err:
        c.infer("titanic", inputs[:4])
    assert err.value.status() == "400" and "missing input(s): parch" in err.value.message()
    with pytest.raises(InferenceServerException) as err:
        c.infer("nope", inputs)
    assert err.value.status() == "404" and "'nope' is not served" in err.value.message()
    with pytest.raises(InferenceServerException) as err:
        c.infer("titanic", inputs, model_version="other")
    assert err.value.status() == "404"
    wrong = [column([{**r, "age": "1"} for r in KNOWN], "age", "BYTES") if i.name() == "age"
             else i for i in inputs]
    with pytest.raises(InferenceServerException) as err:
        c.infer("titanic", wrong)
    assert err.value.status() == "400" and "'age': datatype 'BYTES'" in err.value.message()
    unseen = [column([{**r, "pclass": "4th"} for r in KNOWN], "pclass", "BYTES"), *inputs[1:]]
    with pytest.raises(InferenceServerException) as err:
        c.infer("titanic", unseen)
    assert "pclass[0]: '4th' is not one of the training categories" in err.value.message()


@pytest.mark.parametrize(("body", "status", "error"), [
    (b"{", 400, "not JSON"),
    (b"[]", 400, "list of `inputs`"),
    (json.dumps({"inputs": [{"name": "age", "datatype": "FP64", "shape": [2, 2],
                             "data": [1, 2, 3, 4]}]}).encode(), 400, "missing input"),
    (json.dumps({"inputs": [{"name": n, "datatype": t, "shape": [1, 2], "data": [[v, v]]}
                            for n, t, v in (("pclass", "BYTES", "1st"), ("sex", "BYTES", "male"),
                                            ("age", "FP64", 3), ("sibsp", "INT64", 0),
                                            ("parch", "INT64", 0))]}).encode(),
     400, "is not a column"),
    (json.dumps({"inputs": [{"name": n, "datatype": t, "shape": [1], "data": [v]}
                            for n, t, v in (("pclass", "BYTES", "1st"), ("sex", "BYTES", "male"),
                                            ("age", "FP64", 3), ("sibsp", "INT64", 0.5),
                                            ("parch", "INT64", 0))]}).encode(),
     400, "sibsp[0]: 0.5 is not INT64"),
    (json.dumps({"inputs": [{"name": n, "datatype": t, "shape": [1], "data": [v]}
                            for n, t, v in (("pclass", "BYTES", "1st"), ("sex", "BYTES", None),
                                            ("age", "FP64", None), ("sibsp", "INT64", 0),
                                            ("parch", "INT64", 0))]}).encode(),
     400, "sex[0]: a value is required"),
])
def test_malformed_v2_bodies(classifier_server, body, status, error):
    got, headers, raw = call(classifier_server.url + "/v2/models/titanic/infer", body)
    answer = json.loads(raw)
    assert got == status and error in answer["error"], answer
    assert headers["x-model-version"] == classifier_server.model


def test_null_is_a_missing_value_where_training_had_some(classifier_server):
    """JSON null in a tensor is a missing value for a nullable feature (age), imputed as on
    /predict; the same answer as /predict gives."""
    row = next(r for r in ROWS if r["age"] is None)
    inputs = [{"name": k, "datatype": "BYTES" if isinstance(v, str) else
               "INT64" if isinstance(v, int) else "FP64", "shape": [1], "data": [v]}
              for k, v in row.items()]
    status, _, body = post(classifier_server, "/v2/models/titanic/infer", {"inputs": inputs})
    assert status == 200, body
    _, _, answer = post(classifier_server, "/predict", row)
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    assert outputs["predict"] == [answer["label"]]
    assert outputs["predict_proba"] == pytest.approx(list(answer["probabilities"].values()),
                                                     abs=1e-12)


def test_v2_infer_takes_json_or_binary_tensors_only(classifier_server):
    url = classifier_server.url + "/v2/models/titanic/infer"
    got, _, raw = call(url, b"inputs=1", "text/plain")
    assert got == 415 and "application/octet-stream" in json.loads(raw)["error"]
    got, _, raw = call(url, b"\x00\x01", "application/octet-stream")  # no JSON header
    assert got == 400 and "not JSON" in json.loads(raw)["error"]


@pytest.mark.parametrize("binary_out", [False, True])
def test_binary_tensor_extension_gives_the_json_numbers(classifier_server, binary_out):
    """tritonclient's default: inputs as raw bytes after the JSON header (and outputs asked
    for in binary, which are answered in JSON, as the protocol allows)."""
    types = {"pclass": ("BYTES", object), "sex": ("BYTES", object), "age": ("FP32", np.float32),
             "sibsp": ("INT32", np.int32), "parch": ("UINT8", np.uint8)}
    rows = KNOWN * 4
    inputs = []
    for name, (datatype, dtype) in types.items():
        tensor = triton.InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(np.array([r[name] for r in rows], dtype=dtype))
        inputs.append(tensor)
    outputs = [triton.InferRequestedOutput(n, binary_data=binary_out)
               for n in ("predict", "predict_proba")]
    result = client(classifier_server).infer("titanic", inputs, outputs=outputs)
    status, _, body = post(classifier_server, "/predict_batch", [
        {**r, "age": float(np.float32(r["age"]))} for r in rows])
    assert status == 200
    assert [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predict")] == \
        [b["label"] for b in body]
    assert np.allclose(result.as_numpy("predict_proba"),
                       [list(b["probabilities"].values()) for b in body], atol=1e-12)
    bad = triton.InferInput("sex", [len(rows)], "BYTES")
    bad.set_data_from_numpy(np.array(["other"] * len(rows), dtype=object))
    with pytest.raises(InferenceServerException) as err:
        client(classifier_server).infer("titanic", [inputs[0], bad, *inputs[2:]])
    assert "sex[0]: 'other' is not one of the training categories" in err.value.message()
