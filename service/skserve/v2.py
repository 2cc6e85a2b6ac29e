"""The Open Inference Protocol ("V2" REST of KServe, MLServer, Triton and Seldon) beside /predict.

Routes (mounted into the BentoML app, so the edge's body limit, 415, drain and logs apply):

    GET  /v2                                       server metadata
    GET  /v2/health/live, /v2/health/ready         200 when live / ready
    GET  /v2/models/{name}[/versions/{version}]         model metadata: inputs from the schema
    GET  /v2/models/{name}[/versions/{version}]/ready   200 when the model can answer
    POST /v2/models/{name}[/versions/{version}]/infer   predictions

An infer request has one input per feature column, as MLServer's pandas codec sends a table:
`name` = the feature, `shape` = [n] or [n, 1] (the same n for all), `datatype` = BYTES for
text and timestamps, FP16/FP32/FP64 or an INT/UINT type for numbers (an int feature takes a
float type too when the values are integral), `data` flat or nested by row. Every value goes
through `validation.Rule.check`, the rules of /predict; JSON null is a missing value where
the feature allows one. Inputs may also come in the binary tensor data extension (Triton's,
which `tritonclient` uses by default): the JSON header's length in the
`Inference-Header-Content-Length` header, each such input's raw little-endian bytes (BYTES:
4-byte length, then the UTF-8 text, per element) after it, their size in
`parameters.binary_data_size`; binary data has no null, and a NaN is refused as on
/predict (send an input with missing values as JSON). Outputs are always JSON. The answer's
outputs (all, or those named in `outputs`):

- `predict`: shape [n]; FP64 predictions of a regressor, or a classifier's labels in their
  own type (BYTES for text, INT64, BOOL, FP64);
- `predict_proba` (classifiers with predict_proba): FP64, shape [n, classes], row-major, the
  columns in the order of the output's `parameters.classes` (a JSON array written as text:
  the protocol allows only scalar parameter values); the model metadata says it too.

Rows go through the service's micro-batcher, so V2 calls merge with /predict and
/predict_batch calls and record the same metrics. A bad request is a 4xx with the protocol's
body `{"error": "..."}` (plus `detail`, where each fault is, for the edge's log line); an
unknown model or version is a 404.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydantic_core
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import __version__
from .outputs import Task
from .schema import FeatureSchema
from .validation import Invalid, Rule

FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
INT_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
ACCEPTED = {"float": FLOAT_TYPES | INT_TYPES, "int": INT_TYPES | FLOAT_TYPES,
            "category": frozenset({"BYTES"}), "datetime": frozenset({"BYTES"})}
ADVERTISED = {"float": "FP64", "int": "INT64", "category": "BYTES", "datetime": "BYTES"}
LABEL_TYPES = {"string": "BYTES", "integer": "INT64", "boolean": "BOOL", "number": "FP64"}
MAX_ERRORS = 20  # faults named in one answer
NUMPY_TYPES = {"BOOL": "?", "INT8": "i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
               "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
               "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}
SERVER_FAULT = "An unexpected error has occurred, please check the server log."
log = logging.getLogger("skserve.v2")


class V2Error(Exception):
    """A request the protocol refuses: its status, message and where each fault is."""

    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.detail = detail or [{"loc": ["body"], "type": "v2_request", "msg": message}]


@dataclass(frozen=True)
class Model:
    """What the protocol needs to know of the served model."""

    name: str
    version: str
    schema: FeatureSchema
    task: Task
    max_rows: int

    @property
    def rules(self) -> dict[str, Rule]:
        return {f.name: Rule.of(f) for f in self.schema.features}

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """The output tensors' metadata."""
        if not self.task.is_classifier:
            return [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
        outputs: list[dict[str, Any]] = [
            {"name": "predict", "datatype": LABEL_TYPES[self.task.label_type], "shape": [-1]}]
        if self.task.has_proba:
            outputs.append({"name": "predict_proba", "datatype": "FP64",
                            "shape": [-1, len(self.task.classes)],
                            "parameters": {"classes": json.dumps(list(self.task.classes))}})
        return outputs

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "versions": [self.version], "platform": "scikit-learn",
                "inputs": [{"name": f.name, "datatype": ADVERTISED[f.dtype], "shape": [-1, 1]}
                           for f in self.schema.features],
                "outputs": self.outputs}


# ------------------------------------------------------------------ the request (pure)


def _fault(loc: list[Any], kind: str, msg: str) -> dict[str, Any]:
    return {"loc": loc, "type": kind, "msg": msg}


def _rows_of(tensor: dict[str, Any], name: str, n: int | None) -> tuple[int, list[Any]]:
    """A column tensor's row count and flat values; V2Error naming the input if its shape
    or data do not make a column."""
    shape, data = tensor.get("shape"), tensor.get("data")
    if not (isinstance(shape, list) and 1 <= len(shape) <= 2
            and all(type(d) is int and d >= 0 for d in shape)
            and (len(shape) == 1 or shape[1] == 1)):
        raise V2Error(400, f"input {name!r}: shape {shape!r} is not a column: use [n] or [n, 1]",
                      [_fault(["inputs", name, "shape"], "shape", "use [n] or [n, 1]")])
    rows = shape[0]
    if n is not None and rows != n:
        raise V2Error(400, f"input {name!r}: {rows} rows, other inputs have {n}",
                      [_fault(["inputs", name, "shape"], "shape", f"{rows} rows, not {n}")])
    if not isinstance(data, list):
        raise V2Error(400, f"input {name!r}: data must be a list",
                      [_fault(["inputs", name, "data"], "data", "not a list")])
    flat = [v for item in data for v in item] if data and isinstance(data[0], list) else data
    if len(flat) != rows or any(isinstance(v, list) for v in flat):
        raise V2Error(400, f"input {name!r}: data holds {len(flat)} values for shape {shape}",
                      [_fault(["inputs", name, "data"], "data", "does not match the shape")])
    return rows, flat


def _typed(value: Any, datatype: str) -> bool:
    """Whether a JSON value is of the tensor's datatype (null: a missing value)."""
    if value is None:
        return True
    if datatype == "BYTES":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if datatype in INT_TYPES else isinstance(value, int | float)


def _binary(raw: bytes, datatype: str, name: str) -> list[Any]:
    """One input's values from the binary tensor data extension."""
    if datatype != "BYTES":
        if datatype not in NUMPY_TYPES or len(raw) % np.dtype(NUMPY_TYPES[datatype]).itemsize:
            raise V2Error(400, f"input {name!r}: {len(raw)} bytes are not {datatype} values",
                          [_fault(["inputs", name, "data"], "binary", "wrong size")])
        return np.frombuffer(raw, NUMPY_TYPES[datatype]).tolist()
    values, at = [], 0
    try:
        while at < len(raw):
            (size,) = struct.unpack_from("<I", raw, at)
            if at + 4 + size > len(raw):
                raise ValueError("an element runs past the data")
            values.append(raw[at + 4:at + 4 + size].decode())
            at += 4 + size
    except (struct.error, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise V2Error(400, f"input {name!r}: binary BYTES data is malformed ({exc})",
                      [_fault(["inputs", name, "data"], "binary", "malformed")]) from None
    return values


def _split_binary(body: bytes, header_length: int | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not 0 < header_length <= len(body):
        raise V2Error(400, f"Inference-Header-Content-Length {header_length} does not fit a "
                      f"body of {len(body)} bytes")
    return body[:header_length], body[header_length:]


def _attach_binary(tensors: list[Any], binary: bytes) -> None:
    """Give each input that names a `binary_data_size` its values, in order."""
    at = 0
    for tensor in tensors:
        size = tensor.get("parameters", {}).get("binary_data_size") \
            if isinstance(tensor, dict) and isinstance(tensor.get("parameters"), dict) else None
        if size is None:
            continue
        name = tensor.get("name")
        if type(size) is not int or size < 0 or at + size > len(binary):
            raise V2Error(400, f"input {name!r}: binary_data_size {size!r} does not fit the "
                          f"{len(binary)} bytes after the JSON header",
                          [_fault(["inputs", name, "parameters"], "binary", "wrong size")])
        tensor["data"] = _binary(binary[at:at + size], tensor.get("datatype"), name)
        at += size
    if at != len(binary):
        raise V2Error(400, f"{len(binary) - at} bytes after the JSON header belong to no input")


def parse_infer(body: bytes, model: Model, rules: dict[str, Rule],
                header_length: int | None = None
                ) -> tuple[list[dict[str, Any]], list[str], str | None]:
    """The rows of an infer request (validated, as /predict validates), the outputs asked
    for, and the request's id. `header_length`: the JSON header's size when binary tensor
    data follows it. Raises V2Error (400) naming every fault, up to MAX_ERRORS."""
    body, binary = _split_binary(body, header_length)
    try:
        request = pydantic_core.from_json(body)
    except ValueError as exc:
        raise V2Error(400, f"the body is not JSON: {exc}",
                      [_fault(["body"], "json_invalid", str(exc))]) from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise V2Error(400, "the body must be an object with a list of `inputs`")
    _attach_binary(request["inputs"], binary)
    for key, kind, test in (("id", "a string", str), ("parameters", "an object", dict),
                            ("outputs", "a list", list)):
        if key in request and not isinstance(request[key], test):
            raise V2Error(400, f"`{key}` must be {kind}",
                          [_fault([key], "type", f"must be {kind}")])
    tensors: dict[str, dict[str, Any]] = {}
    for i, tensor in enumerate(request["inputs"]):
        name = tensor.get("name") if isinstance(tensor, dict) else None
        if not isinstance(name, str):
            raise V2Error(400, f"inputs[{i}] has no name",
                          [_fault(["inputs", i, "name"], "missing", "no name")])
        if name not in rules:
            raise V2Error(400, f"input {name!r} is not a feature of {model.name} (features: "
                          f"{', '.join(rules)})", [_fault(["inputs", name], "extra_forbidden",
                                                          "not a feature")])
        if not isinstance(tensor.get("parameters", {}), dict):
            raise V2Error(400, f"input {name!r}: `parameters` must be an object",
                          [_fault(["inputs", name, "parameters"], "type", "not an object")])
        if name in tensors:
            raise V2Error(400, f"input {name!r} is given twice",
                          [_fault(["inputs", name], "duplicate", "given twice")])
        tensors[name] = tensor
    missing = [name for name in rules if name not in tensors]
    if missing:
        raise V2Error(400, f"missing input(s): {', '.join(missing)} (one input per feature)",
                      [_fault(["inputs", name], "missing", "no input") for name in missing])
    n: int | None = None
    columns: dict[str, list[Any]] = {}
    for name, tensor in tensors.items():
        datatype = tensor.get("datatype")
        kind = model.schema.feature(name).dtype
        if datatype not in ACCEPTED[kind]:
            raise V2Error(400, f"input {name!r}: datatype {datatype!r} does not fit a {kind} "
                          f"feature (use {ADVERTISED[kind]})",
                          [_fault(["inputs", name, "datatype"], "datatype",
                                  f"use {ADVERTISED[kind]}")])
        n, columns[name] = _rows_of(tensor, name, n)
    if not n or n > model.max_rows:
        raise V2Error(400, f"{n} rows: between 1 and {model.max_rows} per request",
                      [_fault(["inputs"], "too_long" if n else "too_short",
                              f"1 to {model.max_rows} rows")])
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    faults: list[dict[str, Any]] = []
    for name, values in columns.items():
        rule, datatype = rules[name], tensors[name]["datatype"]
        for i, value in enumerate(values):
            try:
                if not _typed(value, datatype):
                    raise Invalid(value, f"is not {datatype}", "datatype")
                rows[i][name] = rule.check(value)
            except Invalid as exc:
                faults.append(_fault(["inputs", name, i], exc.kind, str(exc)))
                if len(faults) >= MAX_ERRORS:
                    break
        if len(faults) >= MAX_ERRORS:
            break
    if faults:
        named = "; ".join(f"{f['loc'][1]}[{f['loc'][2]}]: {f['msg']}" for f in faults[:3])
        more = f" (and {len(faults) - 3} more)" if len(faults) > 3 else ""
        raise V2Error(400, f"{len(faults)} invalid value(s): {named}{more}", faults)
    names = [o["name"] for o in model.outputs]
    if "outputs" not in request:
        return rows, names, _request_id(request)
    asked = [o.get("name") if isinstance(o, dict) else None for o in request["outputs"]]
    unknown = [a for a in asked if a not in names]
    if unknown:
        raise V2Error(400, f"unknown output(s) {unknown}: this model has {names}",
                      [_fault(["outputs"], "output", f"one of {names}")])
    return rows, [a for a in names if a in asked], _request_id(request)


def _request_id(request: dict[str, Any]) -> str | None:
    return request.get("id")


def infer_answer(model: Model, outputs: Sequence[Any], wanted: list[str],
                 request_id: str | None) -> dict[str, Any]:
    """The infer response for the service's per-row outputs (`SKServe._predict_rows`)."""
    n = len(outputs)
    meta = {o["name"]: o for o in model.outputs}
    tensors = []
    for name in wanted:
        tensor = {"name": name, "datatype": meta[name]["datatype"]}
        if name == "predict":
            data = list(outputs) if not model.task.is_classifier else [o[0] for o in outputs]
            tensor.update(shape=[n], data=data)
        else:
            tensor.update(shape=[n, len(model.task.classes)],
                          data=[p for o in outputs for p in o[1]],
                          parameters=meta[name]["parameters"])
        tensors.append(tensor)
    answer: dict[str, Any] = {"model_name": model.name, "model_version": model.version,
                              "outputs": tensors}
    if request_id is not None:
        answer["id"] = request_id
    return answer


def example_request(model: Model, row: dict[str, Any]) -> dict[str, Any]:
    """An infer request for one row (e.g. the schema's example row)."""
    return {"inputs": [{"name": f.name, "datatype": ADVERTISED[f.dtype], "shape": [1, 1],
                        "data": [row[f.name]]} for f in model.schema.features]}


def openapi_paths(model: Model, row: dict[str, Any], answer: dict[str, Any]
                  ) -> dict[str, Any]:
    """The V2 routes for /docs.json, each with an example; `answer` is this model's /predict
    answer to `row` (`service.documented_answer`)."""
    if model.task.is_classifier:
        outputs = [(answer["label"],)] if "probabilities" not in answer else \
            [(answer["label"], list(answer["probabilities"].values()))]
    else:
        outputs = [answer["prediction"]]
    wanted = [o["name"] for o in model.outputs]
    infer_example = infer_answer(model, outputs, wanted, None)
    error = {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"}, "detail": {"type": "array", "items": {"type": "object"}}}}
    tensor = {"type": "object", "required": ["name", "datatype", "shape", "data"],
              "properties": {"name": {"type": "string"}, "datatype": {"type": "string"},
                             "shape": {"type": "array", "items": {"type": "integer"}},
                             "data": {"type": "array"},
                             "parameters": {"type": "object"}}}

    def get(summary: str, example: dict[str, Any], status: str = "200") -> dict[str, Any]:
        content = {"application/json": {"schema": {"type": "object"}, "example": example}}
        return {"get": {"summary": summary, "tags": ["Open Inference Protocol (V2)"],
                        "responses": {status: {"description": summary, "content": content}}}}

    base = f"/v2/models/{model.name}"
    infer = {"post": {
        "summary": "predict (one input per feature column; outputs predict and, for "
                   "classifiers, predict_proba)",
        "tags": ["Open Inference Protocol (V2)"],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"type": "object", "required": ["inputs"], "properties": {
                "id": {"type": "string"}, "parameters": {"type": "object"},
                "inputs": {"type": "array", "items": tensor},
                "outputs": {"type": "array", "items": {"type": "object"}}}},
            "example": example_request(model, row)}}},
        "responses": {
            "200": {"description": "the outputs", "content": {"application/json": {
                "schema": {"type": "object", "properties": {
                    "model_name": {"type": "string"}, "model_version": {"type": "string"},
                    "id": {"type": "string"},
                    "outputs": {"type": "array", "items": tensor}}},
                "example": infer_example}}},
            "400": {"description": "a bad request", "content": {"application/json": {
                "schema": error, "example": {"error": "missing input(s): age (one input per "
                                                      "feature)"}}}},
            "404": {"description": "another model or version", "content": {
                "application/json": {"schema": error}}}}}}
    return {
        "/v2": get("server metadata", {"name": "skserve", "version": __version__,
                                       "extensions": []}),
        "/v2/health/live": get("live", {"live": True}),
        "/v2/health/ready": get("ready", {"ready": True}),
        base: get("model metadata", model.metadata()),
        f"{base}/versions/{model.version}": get("model metadata", model.metadata()),
        f"{base}/ready": get("model ready", {"name": model.name, "ready": True}),
        f"{base}/infer": infer,
        f"{base}/versions/{model.version}/infer": infer,
    }


# ------------------------------------------------------------------ the routes (I/O)


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body).encode(), status, media_type="application/json")


def _error(exc: V2Error) -> Response:
    return _json(exc.status, {"error": str(exc), "detail": exc.detail})


def app(model: Model, submit: Callable[[], Callable[[list[dict[str, Any]]], Any]]) -> Starlette:
    """The V2 routes as a Starlette app. `submit()` gives the running service's
    `MicroBatcher.submit_many` (BentoML creates the service after this app)."""
    rules = model.rules

    def known(request: Request) -> None:
        params = request.path_params
        if params["name"] != model.name:
            raise V2Error(404, f"model {params['name']!r} is not served here (this server "
                          f"serves {model.name!r})", [_fault(["path", "name"], "not_found",
                                                             "unknown model")])
        if params.get("version", model.version) != model.version:
            raise V2Error(404, f"version {params['version']!r} of {model.name!r} is not served "
                          f"here (this server serves {model.version!r})",
                          [_fault(["path", "version"], "not_found", "unknown version")])

    async def server_metadata(request: Request) -> Response:
        return _json(200, {"name": "skserve", "version": __version__, "extensions": []})

    async def live(request: Request) -> Response:
        return _json(200, {"live": True})

    async def ready(request: Request) -> Response:
        try:
            submit()
        except Exception:
            return _json(503, {"ready": False})
        return _json(200, {"ready": True})

    async def model_metadata(request: Request) -> Response:
        try:
            known(request)
        except V2Error as exc:
            return _error(exc)
        return _json(200, model.metadata())

    async def model_ready(request: Request) -> Response:
        try:
            known(request)
        except V2Error as exc:
            return _error(exc)
        response = await ready(request)
        return _json(response.status_code, {"name": model.name, "ready":
                                            response.status_code == 200})

    async def infer(request: Request) -> Response:
        try:
            known(request)
            length = request.headers.get("inference-header-content-length")
            rows, wanted, request_id = parse_infer(
                await request.body(), model, rules,
                None if length is None else int(length) if length.isdigit() else -1)
        except V2Error as exc:
            return _error(exc)
        try:
            outputs = await submit()(rows)
        except Exception:  # the model's fault, not the client's: a 500 with no internals
            log.exception("Exception on %s [POST]", request.url.path)
            return _json(500, {"error": SERVER_FAULT})
        return _json(200, infer_answer(model, outputs, wanted, request_id))

    routes = [Route("/v2", server_metadata, methods=["GET"]),
              Route("/v2/health/live", live, methods=["GET"]),
              Route("/v2/health/ready", ready, methods=["GET"])]
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [Route(prefix, model_metadata, methods=["GET"]),
                   Route(prefix + "/ready", model_ready, methods=["GET"]),
                   Route(prefix + "/infer", infer, methods=["POST"])]
    return Starlette(routes=routes, exception_handlers={HTTPException: _no_route})


async def _no_route(request: Request, exc: HTTPException) -> Response:
    """What no route answers (the last app of the stack, so any unknown path or method
    ends here): the status Starlette chose (404, or 405 with `allow`), with a JSON body like
    every other error's."""
    what = "method not allowed" if exc.status_code == 405 else "no such route"
    response = _json(exc.status_code, {
        "error": f"{what}: {request.method} {request.url.path}",
        "detail": [{"loc": ["path"], "type": what.replace(" ", "_"),
                    "msg": "the routes are listed at /docs.json"}]})
    response.headers.update(exc.headers or {})
    return response
