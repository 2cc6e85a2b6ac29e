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
from typing import Annotated, Any

import bentoml
from _bentoml_sdk.io_models import IORootModel
from pydantic import BaseModel, Field

from . import __version__, logs, store, v2
from .batching import MicroBatcher
from .edge import EdgeMiddleware, RowsValidator, default_max_body_bytes
from .errors import InvalidInput
from .metrics import ServiceMetrics
from .openapi import complete_openapi
from .outputs import Task, score
from .schema import (
    example_answer,
    example_row,
    out_of_range_counts,
    request_model,
    response_model,
    rows_to_frame,
)

logs.configure()  # after BentoML's own logging set-up, which ran before this import

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
Rows = Annotated[list[Row], Field(min_length=1, max_length=MAX_BATCH_ROWS)]  # type: ignore[valid-type]
ROWS = RowsValidator(Row, MAX_BATCH_ROWS)


class RowList(IORootModel[Rows]):  # type: ignore[valid-type]
    """The /predict_batch body: BentoML's root-list input, parsed by one cached validator.

    BentoML's own path runs `json.loads` (a 500 on malformed JSON) and rebuilds the JSON
    schema on every request; here bad JSON is a 400 naming the position, and a list over
    the cap is refused before any row is validated.
    """

    __root_input__ = True

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> RowList:
        return cls.model_construct(root=ROWS(json_data))


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
    an example request and answer on every endpoint, /metadata and the V2 protocol."""
    document = SKServe.openapi_spec.asdict()
    document["info"]["version"] = api_version(INFO)
    answer = example_answer(TASK, SCHEMA, INFO.tag)
    return complete_openapi(document, EXAMPLE_ROW, answer, metadata_document(INFO),
                            v2.openapi_paths(V2_MODEL, EXAMPLE_ROW, answer))


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


@bentoml.service(
    name="skserve",
    workers=WORKERS,
    traffic={"timeout": 30},
    logging={"access": {"enabled": os.environ.get("SKSERVE_ACCESS_LOG", "") == "1"}},
    metrics={"enabled": True},
)
class SKServe:
    """Online predictions for one stored model version."""

    def __init__(self) -> None:
        self.pipeline, self.info = store.load(INFO.tag)
        TASK.check(self.pipeline)
        self.version = self.info.tag
        self.metrics = ServiceMetrics(self.info, SCHEMA, TASK)
        self.batcher: MicroBatcher[dict, Any] = MicroBatcher(self._predict_rows, MAX_BATCH_ROWS)

    def _predict_rows(self, rows: list[dict[str, Any]]) -> list[Any]:
        """The one place the model is called: /predict, /predict_batch and V2 infer all come
        here through the micro-batcher, so every model call records the same metrics.

        One output per row: a regressor's float; a classifier's (label, probabilities in
        class order or None)."""
        frame = rows_to_frame(SCHEMA, rows)
        self.metrics.observe_call(len(frame))
        scores = score(self.pipeline, TASK, frame)
        self.metrics.observe_scored(scores, out_of_range_counts(SCHEMA, frame))
        if not TASK.is_classifier:
            return scores.values.tolist()
        if scores.proba is None:
            return [(label, None) for label in scores.values]
        return list(zip(scores.values, scores.proba.tolist(), strict=True))

    def _answer(self, output: Any) -> BaseModel:
        if not TASK.is_classifier:
            return Prediction(prediction=output, model_version=self.version)
        label, proba = output
        if proba is None:
            return Prediction(label=label, model_version=self.version)
        return Prediction(label=label, probabilities=dict(zip(KEYS, proba, strict=True)),
                          model_version=self.version)

    @bentoml.api(route="/predict")
    async def predict(self, row: Row, /) -> Prediction:  # type: ignore[valid-type]
        """Predict one row. Concurrent requests are merged into one model call."""
        return self._answer(await self.batcher.submit(row.__dict__))

    @bentoml.api(route="/predict_batch", input_spec=RowList)
    async def predict_batch(self, rows: Rows, /) -> list[Prediction]:  # type: ignore[valid-type]
        """Predict a list of rows (at most `SKSERVE_MAX_BATCH_ROWS`, default 1000).

        Lists from concurrent requests are merged into one model call; if that call fails,
        each request is re-run alone, so only a request with a row the model cannot score
        fails."""
        outputs = await self.batcher.submit_many([row.__dict__ for row in rows])
        return [self._answer(output) for output in outputs]


bentoml.asgi_app(v2.app(V2_MODEL, lambda: bentoml.get_current_service().batcher.submit_many),
                 path="/")(SKServe)
SKServe.add_asgi_middleware(
    EdgeMiddleware,
    model_version=INFO.tag,
    metadata=json.dumps(metadata_document(INFO), default=str).encode(),
    openapi=openapi_document,
    max_body_bytes=MAX_BODY_BYTES,
    drain_file=os.environ.get("SKSERVE_DRAIN_FILE") or None,
)
