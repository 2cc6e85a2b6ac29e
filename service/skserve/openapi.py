"""The OpenAPI document a client builds requests from: BentoML's, completed.

BentoML documents the /predict and /predict_batch bodies but gives no examples, leaves out
the routes the edge answers (/metadata) and knows nothing of mounted apps (the V2
protocol). `complete_openapi` adds an example request and answer to every prediction route,
documents /metadata with the real document as its example, and adds the V2 paths.
"""

from __future__ import annotations

import copy
from typing import Any

ROW = "#/components/schemas/Row"  # schema.request_model's name
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


def _openapi_30(schema: Any) -> Any:
    """JSON Schema's `anyOf: [X, {type: null}]` (pydantic's, and `validation.Rule`'s for a
    nullable feature) as OpenAPI 3.0 says it, `X` with `nullable: true`: the document is
    OpenAPI 3.0, which has no null type (clients and schemathesis read it as 3.0)."""
    if isinstance(schema, list):
        return [_openapi_30(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    options = schema.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options and len(options) == 2:
        other = next(o for o in options if o != {"type": "null"})
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return _openapi_30({**rest, **other, "nullable": True})
    return {k: _openapi_30(v) for k, v in schema.items()}


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
    doc = _openapi_30(document)
    paths = doc.setdefault("paths", {})
    rows_schema = {"type": "array", "items": {"$ref": ROW}, "minItems": 1,
                   "maxItems": metadata["max_batch_rows"]}
    for path, body, request, answers in (("/predict", {"$ref": ROW}, row, answer),
                                         ("/predict_batch", rows_schema, [row], [answer])):
        operation = paths.get(path, {}).get("post")
        if operation is not None:
            # BentoML inlines the row's fields and drops a nullable field's null on the way;
            # its `Row` component has them right
            operation["requestBody"]["content"]["application/json"]["schema"] = body
            _example(operation, request, answers)
    paths["/metadata"] = {"get": {
        "summary": "the model: identity, task, classes, input features, limits",
        "tags": ["Service APIs"],
        "responses": {"200": {"description": "the model's metadata", "content": {
            "application/json": {"schema": METADATA_SCHEMA, "example": metadata}}}}}}
    paths.update(copy.deepcopy(v2_paths))
    return doc
