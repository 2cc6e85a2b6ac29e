"""The BentoML service: one model version behind validated JSON endpoints.

The request model is generated at import from the stored feature schema of `$SKSERVE_MODEL`,
so any model saved by `skserve train` serves without new code. Start it with `skserve serve`
(which sets the thread and telemetry environment before BentoML's workers start).
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import bentoml
import numpy as np
from _bentoml_sdk.io_models import IORootModel
from pydantic import BaseModel, Field, TypeAdapter

from . import store
from .batching import MicroBatcher
from .metrics import ServiceMetrics
from .schema import out_of_range_counts, request_model, rows_to_frame

MAX_BATCH_ROWS = int(os.environ.get("SKSERVE_MAX_BATCH_ROWS", "1000"))
WORKERS = int(os.environ.get("SKSERVE_WORKERS", "2"))

INFO = store.get_info(os.environ.get("SKSERVE_MODEL", store.DEFAULT_MODEL))
SCHEMA = INFO.schema
Row = request_model(SCHEMA)
Rows = Annotated[list[Row], Field(min_length=1, max_length=MAX_BATCH_ROWS)]  # type: ignore[valid-type]
ROWS = TypeAdapter(Rows)


class RowList(IORootModel[Rows]):  # type: ignore[valid-type]
    """The /predict_batch body: BentoML's root-list input, parsed by one cached validator.

    BentoML's own path runs `json.loads` (a 500 on malformed JSON) and rebuilds the JSON
    schema on every request; here bad JSON is a 400 naming the position.
    """

    __root_input__ = True

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> RowList:
        return cls.model_construct(root=ROWS.validate_json(json_data))


class Prediction(BaseModel):
    prediction: float = Field(description=f"predicted {SCHEMA.target}")
    model_version: str = Field(description="the model tag that made this prediction")


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
        "target": SCHEMA.target,
        "features": [f.__dict__ for f in SCHEMA.features],
        "max_batch_rows": MAX_BATCH_ROWS,
        "labels": info.labels,
    }


class ModelHeaders:
    """ASGI middleware: `x-model-version` on prediction responses, GET /metadata, 415 for a
    body that is not JSON (BentoML would otherwise parse any media type as JSON), and
    `Connection: close` on every response once the drain file exists.

    Draining: Kubernetes' preStop hook creates `$SKSERVE_DRAIN_FILE` and waits before
    SIGTERM. Keep-alive clients would otherwise hold connections to this pod and lose a
    request when SIGTERM closes them; told to close, they reconnect to a pod still serving.
    """

    PREDICT_PATHS = frozenset({"/predict", "/predict_batch"})
    CLOSE = (b"connection", b"close")

    def __init__(self, app: Any, model_version: str, metadata: bytes,
                 drain_file: str | None = None):
        self.app = app
        self.header = (b"x-model-version", model_version.encode())
        self.metadata = metadata
        self.drain_file = drain_file

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        extra = [self.header] if path in self.PREDICT_PATHS or path == "/metadata" else []
        if self.drain_file and os.path.exists(self.drain_file):
            extra.append(self.CLOSE)
        if path == "/metadata" and scope["method"] in ("GET", "HEAD"):
            await self._reply(send, 200, self.metadata, extra)
            return
        if path in self.PREDICT_PATHS and scope["method"] == "POST":
            ctype = dict(scope["headers"]).get(b"content-type", b"application/json")
            if ctype.split(b";")[0].strip().lower() != b"application/json":
                body = json.dumps({
                    "error": "unsupported content type: send application/json",
                    "detail": [{"loc": ["header", "content-type"], "type": "content_type",
                                "msg": f"got {ctype.decode(errors='replace')!r}"}],
                }).encode()
                await self._reply(send, 415, body, extra)
                return
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _reply(send: Any, status: int, body: bytes, extra: list) -> None:
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


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
        self.version = self.info.tag
        self.metrics = ServiceMetrics(self.info, SCHEMA)
        self.batcher: MicroBatcher[Any, float] = MicroBatcher(self._predict_rows, MAX_BATCH_ROWS)
        self.batcher.on_batch = self.metrics.observe_batch

    def _predict_rows(self, rows: list[BaseModel]) -> list[float]:
        """One pipeline call for validated rows; records the drift and output metrics."""
        frame = rows_to_frame(SCHEMA, [row.__dict__ for row in rows])
        values = np.asarray(self.pipeline.predict(frame), dtype=float)
        self.metrics.observe(values, out_of_range_counts(SCHEMA, frame))
        return values.tolist()

    @bentoml.api(route="/predict")
    async def predict(self, row: Row, /) -> Prediction:  # type: ignore[valid-type]
        """Predict one row. Concurrent requests are merged into one model call."""
        value = await self.batcher.submit(row)
        return Prediction(prediction=value, model_version=self.version)

    @bentoml.api(route="/predict_batch", input_spec=RowList, batchable=True,
                 max_batch_size=MAX_BATCH_ROWS, max_latency_ms=10_000)
    def predict_batch(self, rows: Rows, /) -> list[Prediction]:  # type: ignore[valid-type]
        """Predict a list of rows (at most `SKSERVE_MAX_BATCH_ROWS`, default 1000).

        BentoML's adaptive batching merges lists from concurrent requests into one call."""
        return [Prediction(prediction=v, model_version=self.version)
                for v in self._predict_rows(rows)]


SKServe.add_asgi_middleware(
    ModelHeaders,
    model_version=INFO.tag,
    metadata=json.dumps(metadata_document(INFO), default=str).encode(),
    drain_file=os.environ.get("SKSERVE_DRAIN_FILE") or None,
)
