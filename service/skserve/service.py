"""The BentoML service: one model version behind validated JSON endpoints.

The request and response models are generated at import from the stored metadata of
`$SKSERVE_MODEL` (feature schema; task and classes, see `outputs`), so any stored regressor
or classifier serves without new code: /predict, /predict_batch and, mounted beside them,
the Open Inference Protocol (`v2`). Start it with `skserve serve` (which sets the thread and
telemetry environment before BentoML's workers start).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import bentoml
from bentoml.exceptions import BentoMLException

from . import __version__, importguard, logs, rest, store, v2
from .batching import MicroBatcher
from .edge import EdgeMiddleware, RowsValidator, default_max_body_bytes
from .errors import InvalidInput
from .inputs import serving_path
from .metrics import DURATION_BUCKETS, ServiceMetrics
from .openapi import complete_openapi
from .outputs import Scores, Task, score
from .recycling import from_env as recycler_from_env
from .schema import (
    example_answer,
    example_row,
    out_of_range_counts,
    request_model,
    response_model,
)

logs.configure()  # after BentoML's own logging set-up, which ran before this import
# Before the model's unpickling imports pandas (nothing above does): in a serving worker
# pandas then runs without pyarrow, which serving never uses (skserve.importguard).
importguard.keep_pyarrow_out_of_worker()

MAX_BATCH_ROWS = int(os.environ.get("SKSERVE_MAX_BATCH_ROWS", "1000"))
WORKERS = int(os.environ.get("SKSERVE_WORKERS", "2"))

INFO = store.get_info(os.environ.get("SKSERVE_MODEL", store.DEFAULT_MODEL))
SCHEMA = INFO.schema
TASK = Task.of(INFO)
KEYS = TASK.keys
MAX_BODY_BYTES = int(os.environ.get("SKSERVE_MAX_BODY_BYTES")
                     or default_max_body_bytes(SCHEMA, MAX_BATCH_ROWS))
if MAX_BODY_BYTES < 1:
    raise InvalidInput(f"SKSERVE_MAX_BODY_BYTES={MAX_BODY_BYTES}: must be at least 1")
Row = request_model(SCHEMA)
ROWS = RowsValidator(Row, MAX_BATCH_ROWS)


Prediction = response_model(TASK, SCHEMA.target)
EXAMPLE_ROW = dict(INFO.metadata.get("input_example") or example_row(SCHEMA))
V2_MODEL = v2.Model(INFO.name, INFO.version, SCHEMA, TASK, MAX_BATCH_ROWS)


def api_version(info: store.ModelInfo) -> str:
    """OpenAPI `info.version`: skserve's version with the model tag as SemVer build metadata
    (`0.1.0+demand.20261123`), since the document changes when either changes."""
    return f"{__version__}+{re.sub(r'[^0-9A-Za-z.-]', '-', f'{info.name}.{info.version}')}"


def openapi_document() -> dict[str, Any]:
    """BentoML's OpenAPI document for this service, with `info.version` set (BentoML puts
    the version of a built Bento there, "None" when serving from source as skserve does),
    the prediction routes with an example request and answer each, /metadata and the V2
    protocol."""
    document = SKServe.openapi_spec.asdict()
    document["info"]["version"] = api_version(INFO)
    # BentoML's own description (its badges, Slack, "created with BentoML") and contact
    # say nothing about this model; a client reading the document wants the model.
    document["info"]["title"] = f"skserve: {INFO.tag}"
    document["info"]["description"] = (
        f"The scikit-learn {TASK.kind} model `{INFO.tag}` predicting `{SCHEMA.target}`: "
        "/predict (one row), /predict_batch (a list of rows), /metadata (the model and its "
        "input contract) and the Open Inference Protocol under /v2.")
    document["info"].pop("contact", None)
    answer = documented_answer()
    schemas = {model.__name__: model.model_json_schema() for model in (Row, Prediction)}
    return complete_openapi(document, schemas, EXAMPLE_ROW, answer, metadata_document(INFO),
                            v2.openapi_paths(V2_MODEL, EXAMPLE_ROW, answer))


def documented_answer() -> dict[str, Any]:
    """The example answer in /docs.json: the model's own answer to the example row where the
    model is loaded (a worker builds the document on the first GET /docs.json), else one of
    its shape (`schema.example_answer`, not a prediction)."""
    try:
        service = bentoml.get_current_service()
    except BentoMLException:
        return example_answer(TASK, SCHEMA, INFO.tag)
    return answer(service.example_output())


def metadata_document(info: store.ModelInfo) -> dict[str, Any]:
    """What `GET /metadata` answers: the model's identity, quality and input contract."""
    meta = info.metadata
    return {
        "model": info.tag,
        "name": info.name,
        "version": info.version,
        "family": meta.get("family"),
        "metrics": meta.get("metrics"),
        "trained_at": meta.get("trained_at"),
        "dataset": meta.get("dataset"),
        "task": TASK.kind,
        "target": SCHEMA.target,
        "classes": list(TASK.classes),
        "class_keys": KEYS,
        "has_proba": TASK.has_proba,
        "features": [f.__dict__ for f in SCHEMA.features],
        "input_example": EXAMPLE_ROW,
        "packages": meta.get("packages"),
        "source": meta.get("source"),
        "max_batch_rows": MAX_BATCH_ROWS,
        "max_body_bytes": MAX_BODY_BYTES,
        "labels": info.labels,
    }


def tracing_config() -> dict[str, Any]:
    """BentoML's tracing settings: the prediction routes are left out of the spans unless an
    exporter is configured (BentoML's `tracing.exporter_type`) or `SKSERVE_TRACE_PREDICTIONS`
    is 1. Without an exporter the spans go nowhere, and making three per request (the
    request, its receive, its send) cost about a tenth of a worker's CPU under load."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    if BentoMLContainer.tracing.exporter_type.get() or \
            os.environ.get("SKSERVE_TRACE_PREDICTIONS") == "1":
        return {}
    return {"excluded_urls": [r"/predict(_batch)?$", r"/v2/models/.+/infer$"]}


@bentoml.service(
    name="skserve",
    workers=WORKERS,
    traffic={"timeout": 30},
    logging={"access": {"enabled": os.environ.get("SKSERVE_ACCESS_LOG", "") == "1"}},
    metrics={"enabled": True, "duration": {"buckets": DURATION_BUCKETS}},
    tracing=tracing_config(),
)
class SKServe:
    """Online predictions for one stored model version."""

    def __init__(self) -> None:
        try:
            self.pipeline, self.info = store.load(INFO.tag)
        except ImportError as exc:
            if not importguard.kept_out(exc):
                raise
            raise InvalidInput(f"model {INFO.tag} needs pyarrow to load: {importguard.WHY}") \
                from None
        TASK.check(self.pipeline)
        self.version = self.info.tag
        self.metrics = ServiceMetrics(self.info, SCHEMA, TASK)
        self.path = serving_path(self.pipeline, SCHEMA)
        self.batcher: MicroBatcher[dict, Any] = MicroBatcher(self._predict_rows, MAX_BATCH_ROWS)

    def _predict_rows(self, rows: list[dict[str, Any]]) -> list[Any]:
        """The one place the model is called: /predict, /predict_batch and V2 infer all come
        here through the micro-batcher, so every model call records the same metrics.

        One output per row: a regressor's float; a classifier's (label, probabilities in
        class order or None)."""
        self.metrics.observe_call(len(rows))
        scores = score(self.path.model, TASK, self.path.to_input(rows))
        self.metrics.observe_scored(scores, out_of_range_counts(SCHEMA, rows))
        return outputs(scores)

    def example_output(self) -> Any:
        """The model's output for the documents' example row, validated as a request's row
        would be; no metrics (nobody asked for this prediction)."""
        row = Row.model_validate_json(json.dumps(EXAMPLE_ROW)).__dict__
        return outputs(score(self.path.model, TASK, self.path.to_input([row])))[0]


def outputs(scores: Scores) -> list[Any]:
    """`score`'s result as one output per row (see `SKServe._predict_rows`)."""
    if not TASK.is_classifier:
        return scores.values.tolist()
    if scores.proba is None:
        return [(label, None) for label in scores.values]
    return list(zip(scores.values, scores.proba.tolist(), strict=True))


def answer(output: Any) -> dict[str, Any]:
    """One row's answer (`Prediction` as a dict) from its `SKServe._predict_rows` output."""
    if not TASK.is_classifier:
        return {"prediction": output, "model_version": INFO.tag}
    label, proba = output
    if proba is None:
        return {"label": label, "model_version": INFO.tag}
    return {"label": label, "probabilities": dict(zip(KEYS, proba, strict=True)),
            "model_version": INFO.tag}


def submit() -> rest.Submit:
    """The running service's micro-batcher (BentoML creates the service after the app)."""
    return bentoml.get_current_service().batcher.submit_many


bentoml.asgi_app(rest.PredictionRoutes(Row, ROWS, submit, answer, v2.app(V2_MODEL, submit)),
                 path="/")(SKServe)
SKServe.add_asgi_middleware(
    EdgeMiddleware,
    model_version=INFO.tag,
    metadata=json.dumps(metadata_document(INFO), default=str).encode(),
    openapi=openapi_document,
    max_body_bytes=MAX_BODY_BYTES,
    drain_file=os.environ.get("SKSERVE_DRAIN_FILE") or None,
    recycler=recycler_from_env(os.environ, INFO.tag),
)
