"""The OpenAPI document a client builds requests from: BentoML's, completed.

BentoML documents the /predict and /predict_batch bodies but gives no examples, leaves out
the routes the edge answers (/metadata) and knows nothing of mounted apps (the V2
protocol). `complete_openapi` adds an example request and answer to every prediction route,
documents /metadata with the real document as its example, and adds the V2 paths.
"""

from __future__ import annotations

import copy
from typing import Any

METADATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["model", "name", "version", "task", "target", "features", "classes",
                 "class_keys", "max_batch_rows", "max_body_bytes"],
    "properties": {
        "model": {"type": "string", "description": "the model tag, name:version"},
        "name": {"type": "string"},
        "version": {"type": "string"},
        "task": {"type": "string", "enum": ["regression", "classification"]},
        "target": {"type": "string", "description": "what the model predicts"},
        "classes": {"type": "array", "description": "a classifier's labels in their own JSON "
                    "type, in predict_proba column order (empty for a regressor)"},
        "class_keys": {"type": "array", "items": {"type": "string"}, "description":
                       "the keys of `probabilities` for `classes`, in the same order: the "
                       "label if it is text, else its JSON text"},
        "has_proba": {"type": "boolean"},
        "features": {"type": "array", "description": "the input columns as training saw "
                     "them: name, dtype, min, max, categories, nullable",
                     "items": {"type": "object"}},
        "input_example": {"type": "object", "description": "a valid /predict body"},
        "family": {"type": ["string", "null"]},
        "metrics": {"type": ["object", "null"]},
        "max_batch_rows": {"type": "integer"},
        "max_body_bytes": {"type": "integer"},
    },
}


def _example(operation: dict[str, Any], request: Any, answer: Any) -> None:
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        body["example"] = request
    responses = operation.get("responses", {})
    ok = (responses.get("200") or responses.get(200) or {}).get("content", {})  # BentoML: int
    if "application/json" in ok:
        ok["application/json"]["example"] = answer


def complete_openapi(document: dict[str, Any], row: dict[str, Any], answer: dict[str, Any],
                     metadata: dict[str, Any], v2_paths: dict[str, Any]) -> dict[str, Any]:
    """`document` with examples (`row` for /predict, `[row]` for /predict_batch, `answer`
    and `[answer]` as their answers), GET /metadata and the V2 paths. Returns a new dict."""
    doc = copy.deepcopy(document)
    paths = doc.setdefault("paths", {})
    if "post" in paths.get("/predict", {}):
        _example(paths["/predict"]["post"], row, answer)
    if "post" in paths.get("/predict_batch", {}):
        _example(paths["/predict_batch"]["post"], [row], [answer])
    paths["/metadata"] = {"get": {
        "summary": "the model: identity, task, classes, input features, limits",
        "tags": ["Service APIs"],
        "responses": {"200": {"description": "the model's metadata", "content": {
            "application/json": {"schema": METADATA_SCHEMA, "example": metadata}}}}}}
    paths.update(copy.deepcopy(v2_paths))
    return doc
