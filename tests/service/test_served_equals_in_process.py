"""Served predictions are bit-identical to the stored pipeline's, for a regressor and a
classifier, through every route (real servers: the session's `skserve serve`s).

Equality is exact (`==`, no tolerance): JSON carries a float64 as its shortest
round-tripping text, so any difference is a change to the model's input (a dtype, a parsed
timestamp, a column order) on the way. For the regressor (gradient-boosted trees, each row
scored on its own) the rows are sent concurrently, so the micro-batcher merges them into
calls of varying sizes, unlike the single in-process call they are compared with. A linear
classifier's probabilities can move in the last bit with the number of rows in a call (the
BLAS product picks its kernel by shape, measured: 10 of 60 rows differ between 1-row and
60-row calls in process), so the classifier's rows go one call per request: /predict one at
a time against 1-row calls, a list against one call with the same rows.

Both models are served on `skserve.inputs`' per-transformer arrays, not a DataFrame (the
servers' logs say which), so this is also that path's end-to-end proof.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from skserve import store
from skserve.loadtest.sampling import RowPool
from skserve.schema import request_model, rows_to_frame
from tests.classifiers import import_boosted
from tests.conftest import Server, start_server, stop_server
from tests.service.test_http import post

N_ROWS = 60
COLUMNS_PATH = "serving path: per-transformer arrays"  # skserve.inputs' log line
WALKED = "trees: 60 trees walked together"  # skserve.trees' log line for import_boosted


def in_process(tag: str, rows: list[dict], per_row: bool = False) -> tuple[list, list | None]:
    """The stored pipeline's predictions (and, with predict_proba, probabilities) for
    `rows` as the service validates them, in one call (or, `per_row`, one call per row)."""
    if per_row:
        alone = [in_process(tag, [r]) for r in rows]
        return [p[0] for p, _ in alone], None if alone[0][1] is None else \
            [q[0] for _, q in alone]
    pipeline, info = store.load(tag)
    valid = [request_model(info.schema)(**r).__dict__ for r in rows]
    frame = rows_to_frame(info.schema, valid)
    proba = pipeline.predict_proba(frame).tolist() if hasattr(pipeline, "predict_proba") \
        else None
    return pipeline.predict(frame).tolist(), proba


def served(server, rows: list[dict], clients: int = 8) -> tuple[list[dict], list[dict], dict]:
    """The answers of /predict (one row each, from `clients` concurrent clients),
    /predict_batch (one list) and V2 infer (one request) for `rows`."""
    with ThreadPoolExecutor(clients) as pool:
        singles = list(pool.map(lambda r: post(server, "/predict", r), rows))
    assert {s for s, _, _ in singles} == {200}
    status, _, batch = post(server, "/predict_batch", rows)
    assert status == 200
    meta = post(server, "/predict_batch", rows[:1])[2][0]["model_version"]
    name, version = meta.split(":")
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    info = store.get_info(meta)
    inputs = [{"name": f.name, "shape": [len(rows)], "data": columns[f.name],
               "datatype": {"float": "FP64", "int": "INT64"}.get(f.dtype, "BYTES")}
              for f in info.schema.features]
    status, _, v2 = post(server, f"/v2/models/{name}/versions/{version}/infer",
                         {"inputs": inputs})
    assert status == 200
    return [body for _, _, body in singles], batch, v2


def sample(tag: str) -> list[dict]:
    info = store.get_info(tag)
    return RowPool.from_schema([f.__dict__ for f in info.schema.features], seed=3,
                               size=N_ROWS).rows


def test_a_regressor_serves_exactly_what_it_predicts(server, trained_model):
    rows = sample(trained_model)
    want, _ = in_process(trained_model, rows)
    singles, batch, v2 = served(server, rows)
    assert COLUMNS_PATH in server.log.read_text()  # not the DataFrame fallback
    assert [b["prediction"] for b in singles] == want
    assert [b["prediction"] for b in batch] == want
    assert v2["outputs"][0]["data"] == want


@pytest.fixture(scope="module")
def boosted() -> Iterator[tuple[str, Server]]:
    """A histogram gradient boosting classifier (tests/classifiers.py) served by 1 worker."""
    tag = import_boosted()
    srv = start_server(tag, workers=1)
    yield tag, srv
    stop_server(srv)


@pytest.mark.parametrize("kind", ["logistic", "boosted trees"])
def test_a_classifier_serves_exactly_what_it_predicts(kind, classifier_server, classifier_model,
                                                      request):
    """The boosted classifier's trees are walked together (`skserve.trees`), the logistic
    regression is called as it is: both answer exactly what the stored pipeline predicts."""
    tag, server = (classifier_model, classifier_server) if kind == "logistic" else \
        request.getfixturevalue("boosted")
    rows = sample(tag)
    labels, proba = in_process(tag, rows)
    alone_labels, alone_proba = in_process(tag, rows, per_row=True)
    assert proba is not None and alone_proba is not None
    singles, batch, v2 = served(server, rows, clients=1)
    log = server.log.read_text()
    assert COLUMNS_PATH in log
    assert (WALKED in log) == (kind == "boosted trees")
    for answers, want_labels, want_proba in ((singles, alone_labels, alone_proba),
                                             (batch, labels, proba)):
        assert [b["label"] for b in answers] == want_labels
        assert [list(b["probabilities"].values()) for b in answers] == want_proba
    outputs = {o["name"]: o["data"] for o in v2["outputs"]}
    assert outputs["predict"] == labels
    assert outputs["predict_proba"] == [p for row in proba for p in row]


@pytest.mark.parametrize("n", [1, 7, 64])
def test_merged_calls_do_not_change_a_row(server, trained_model, n):
    """The same row scored alone and inside lists of other rows gives the same number."""
    rows = sample(trained_model)[:n]
    want, _ = in_process(trained_model, rows[:1])
    status, _, batch = post(server, "/predict_batch", rows)
    assert status == 200 and batch[0]["prediction"] == want[0]
