"""FastAPI + uvicorn, the plain way: a pydantic row, one DataFrame and one `predict` per
request (a sync route: FastAPI runs it in its thread pool).

    uvicorn fastapi_app:app --workers 2     # POST /predict {"timestamp": ..., ...}
"""

from __future__ import annotations

from datetime import datetime

from common import FEATURES, predict
from fastapi import FastAPI
from pydantic import create_model

TYPES = {"datetime": datetime, "float": float, "int": int, "category": str}
Row = create_model("Row", **{f["name"]: (TYPES[f["dtype"]], ...) for f in FEATURES})
app = FastAPI(title="peer")


@app.get("/readyz")
def readyz() -> dict:
    return {"ok": True}


@app.post("/predict")
def predict_one(row: Row) -> dict:  # type: ignore[valid-type]
    return {"prediction": predict([row.model_dump()])[0]}
