"""The FastAPI + uvicorn baseline for `make bench-serve`: the same stored model and request
model as skserve, served the plain way (one pandas row, one `predict` per request).

    SKSERVE_MODEL=demand:latest uvicorn baseline_fastapi:app --app-dir loadtest --workers 2
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from skserve import store
from skserve.schema import request_model, rows_to_frame

PIPELINE, INFO = store.load(os.environ.get("SKSERVE_MODEL", store.DEFAULT_MODEL))
Row = request_model(INFO.schema)
app = FastAPI(title="baseline")


@app.get("/readyz")
def readyz() -> dict:
    return {"ok": True}


@app.get("/metadata")
def metadata() -> dict:
    return {"model": INFO.tag, "features": [f.__dict__ for f in INFO.schema.features]}


@app.post("/predict")
def predict(row: Row) -> dict:  # type: ignore[valid-type]
    frame = rows_to_frame(INFO.schema, [row.__dict__])
    return {"prediction": float(PIPELINE.predict(frame)[0]), "model_version": INFO.tag}
