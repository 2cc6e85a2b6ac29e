"""BentoML 1.4, as its documentation shows: a single-row API and a batchable one (adaptive
batching, up to 64 rows or 1000 ms), 2 workers, access log off.

    bentoml serve bentoml_service:Peer    # POST /predict {"row": {...}}
                                          # POST /predict_batchable {"rows": [{...}]}
"""

from __future__ import annotations

from datetime import datetime

import bentoml
from common import FEATURES, predict
from pydantic import create_model

TYPES = {"datetime": datetime, "float": float, "int": int, "category": str}
Row = create_model("Row", **{f["name"]: (TYPES[f["dtype"]], ...) for f in FEATURES})


@bentoml.service(name="peer", workers=2, logging={"access": {"enabled": False}})
class Peer:
    @bentoml.api(route="/predict")
    def predict(self, row: Row) -> float:  # type: ignore[valid-type]
        return predict([row.model_dump()])[0]

    @bentoml.api(route="/predict_batchable", batchable=True, max_batch_size=64,
                 max_latency_ms=1000)
    def predict_batchable(self, rows: list[Row]) -> list[float]:  # type: ignore[valid-type]
        return predict([row.model_dump() for row in rows])
