"""The OpenAPI document a client builds requests from: BentoML's, completed.

BentoML documents its own routes (probes, /metrics) but knows nothing of mounted apps:
/predict and /predict_batch (`skserve.rest`) and the V2 protocol, nor of the routes the
edge answers (/metadata). `complete_openapi` adds them, each with an example request and
answer, and the request and answer models (`Row`, `Prediction`) as components.
"""

from __future__ import annotations

import copy
from typing import Any

ROW = "#/components/schemas/Row"  # schema.request_model's name
PREDICTION = "#/components/schemas/Prediction"  # schema.response_model's name
ERROR = "#/components/schemas/Error"
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


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "string"},
                   "detail": {"type": "array", "items": {"type": "object"},
                              "description": "each fault: loc (where), type, msg"},
                   "hint": {"type": "string",
                            "description": "the other route, when a list came to /predict "
                                           "or one row to /predict_batch"}}}


def _route(summary: str, body: dict[str, Any], request: Any, answer_schema: dict[str, Any],
           answer: Any) -> dict[str, Any]:
    def error(why: str) -> dict[str, Any]:
        return {"description": why,
                "content": {"application/json": {"schema": {"$ref": ERROR}}}}

    return {"post": {
        "summary": summary, "tags": ["Service APIs"],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": body, "example": request}}},
        "responses": {
            "200": {"description": "the prediction(s)", "content": {"application/json": {
                "schema": answer_schema, "example": answer}}},
            "400": error("a bad row, naming the field (detail[].loc)"),
            "413": error("the body is over the size limit"),
            "415": error("the body is not application/json"),
            "500": error("the model failed on valid input")}}}


def complete_openapi(document: dict[str, Any], schemas: dict[str, Any], row: dict[str, Any],
                     answer: dict[str, Any], metadata: dict[str, Any],
                     v2_paths: dict[str, Any]) -> dict[str, Any]:
    """`document` with /predict and /predict_batch (`row` and `[row]` as their example
    requests, `answer` and `[answer]` as their answers), GET /metadata and the V2 paths.
    `schemas` are the `Row` and `Prediction` JSON Schemas (pydantic's). Returns a new dict."""
    doc = _openapi_30(copy.deepcopy(document))
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components.update(_openapi_30(copy.deepcopy(schemas)))
    components["Error"] = ERROR_SCHEMA
    paths = doc.setdefault("paths", {})
    rows_schema = {"type": "array", "items": {"$ref": ROW}, "minItems": 1,
                   "maxItems": metadata["max_batch_rows"]}
    paths["/predict"] = _route(
        "predict one row (concurrent requests are merged into one model call)",
        {"$ref": ROW}, row, {"$ref": PREDICTION}, answer)
    paths["/predict_batch"] = _route(
        f"predict a list of 1 to {metadata['max_batch_rows']} rows, in order (merged with "
        "concurrent requests; if a merged call fails, each request is re-run alone)",
        rows_schema, [row], {"type": "array", "items": {"$ref": PREDICTION}}, [answer])
    paths["/metadata"] = {"get": {
        "summary": "the model: identity, task, classes, input features, limits",
        "tags": ["Service APIs"],
        "responses": {"200": {"description": "the model's metadata", "content": {
            "application/json": {"schema": METADATA_SCHEMA, "example": metadata}}}}}}
    paths.update(copy.deepcopy(v2_paths))
    return doc
