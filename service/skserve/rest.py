"""/predict and /predict_batch as a lean ASGI app, mounted into BentoML's app with the V2 routes.

These two routes were `@bentoml.api` methods. Profiled under load (py-spy, one row per
request, BENCHMARKS.md "Online serving"), BentoML's per-request API machinery (its
request/response objects, IO descriptors, `inspect.signature` on every call, a second
Starlette router) cost more CPU than the model call it wrapped. Served here as a plain
ASGI callable, a request costs a JSON parse with the generated pydantic model, a
micro-batcher round trip and one `pydantic_core.to_json`. What clients see is unchanged:

- the rows are validated by the same request model (each field checked by
  `validation.Rule`), and a bad one is a 400 with the body BentoML wrote,
  `{"error": "N validation error(s) for Row", "detail": [pydantic's errors, no input values]}`,
  with a `"hint"` naming the other route when a list came to /predict or an object to
  /predict_batch;
- the answer is `Prediction` (`schema.response_model`) as JSON; a model that raises is a
  500 `{"error": ...}` showing no internals, with its traceback logged at ERROR;
- BentoML's middleware still wraps these routes (request metrics, tracing, timeout), and
  so does skserve's edge (body limit, 415, `x-model-version`, drain, one log line per 4xx);
- a client that hangs up before its body arrived is answered 499 (the edge logs it).

Any other path goes to `fallback` (the V2 app).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pydantic_core
from pydantic import BaseModel, ValidationError

JSON_HEADERS = [(b"content-type", b"application/json")]
SERVER_FAULT = b'{"error":"An unexpected error has occurred, please check the server log."}'
GONE = b'{"error":"client closed request","detail":[{"loc":["body"],"type":"client_disconnected"}]}'
log = logging.getLogger("skserve.rest")

Submit = Callable[[list[dict[str, Any]]], Awaitable[Sequence[Any]]]


class ClientGone(Exception):
    """The client hung up before its whole body arrived."""


async def read_body(receive: Any) -> bytes:
    """The request body (the edge has already refused one over the size limit)."""
    message = await receive()
    if message["type"] != "http.request":
        raise ClientGone
    body = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    parts = [body]
    while message.get("more_body", False):
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        parts.append(message.get("body", b""))
    return b"".join(parts)


async def reply(send: Any, status: int, body: bytes, headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


# A list sent to /predict, or one object to /predict_batch: the most common mistake with two
# routes, said with the way out (beside pydantic's "Input should be an object").
WRONG_ROUTE = {
    ("/predict", b"["): "/predict takes one row (a JSON object); send a list to /predict_batch",
    ("/predict_batch", b"{"): "/predict_batch takes a list of rows; send one row to /predict",
}


def invalid(exc: ValidationError, hint: str | None = None) -> bytes:
    """The 400 body for a request pydantic refused, as BentoML wrote it, in pydantic's own
    words ("2 validation errors for Row") and without its documentation links; `hint`, when
    given, is added as `"hint"`."""
    n = exc.error_count()
    body = {"error": f"{n} validation error{'s' if n != 1 else ''} for {exc.title}",
            "detail": exc.errors(include_url=False, include_context=False,
                                 include_input=False)}
    return pydantic_core.to_json({**body, "hint": hint} if hint else body)


def wrong_route(path: str, body: bytes, exc: ValidationError) -> str | None:
    """WRONG_ROUTE's hint when the whole body has the other route's shape, else None."""
    errors = exc.errors(include_url=False)
    if len(errors) != 1 or errors[0]["loc"] != () or \
            errors[0]["type"] not in ("model_type", "list_type"):
        return None
    return WRONG_ROUTE.get((path, body.lstrip()[:1]))


class PredictionRoutes:
    """ASGI app: POST /predict (one row) and POST /predict_batch (a list), else `fallback`.

    `submit()` gives the running service's `MicroBatcher.submit_many` (BentoML creates the
    service after this app); `answer(output)` turns one row's model output into the
    `Prediction` dict."""

    def __init__(self, row_model: type[BaseModel], rows: Callable[[bytes], list[Any]],
                 submit: Callable[[], Submit], answer: Callable[[Any], dict[str, Any]],
                 fallback: Any):
        self.one = row_model.model_validate_json
        self.rows = rows
        self.submit = submit
        self.answer = answer
        self.fallback = fallback

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or path not in ("/predict", "/predict_batch"):
            await self.fallback(scope, receive, send)
            return
        if scope["method"] != "POST":
            await reply(send, 405, b'{"error":"method not allowed: use POST"}',
                        [(b"allow", b"POST")])
            return
        try:
            body = await read_body(receive)
            single = path == "/predict"
            rows = [self.one(body).__dict__] if single else \
                [row.__dict__ for row in self.rows(body)]
        except ClientGone:
            await reply(send, 499, GONE)
            return
        except ValidationError as exc:
            await reply(send, 400, invalid(exc, wrong_route(path, body, exc)))
            return
        try:
            outputs = await self.submit()(rows)
        except Exception:  # the model's fault, not the client's: a 500 with no internals
            log.exception("Exception on %s [POST]", path)
            await reply(send, 500, SERVER_FAULT)
            return
        answer = self.answer
        await reply(send, 200, pydantic_core.to_json(
            answer(outputs[0]) if single else [answer(o) for o in outputs]))
