"""Kubernetes API errors as skserve's typed errors, shared by the batch and rollout edges."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import InvalidInput, Unavailable


class ApiError(Exception):
    """An API answer the caller handles itself (a 404 or a 409 compare-and-swap conflict)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@contextmanager
def api_errors(what: str, handled: tuple[int, ...] = ()) -> Iterator[None]:
    """API errors as typed errors the CLI prints on one line: statuses in `handled` raise
    ApiError for the caller; 400/404/409/422 are bad input (a refused or unknown object),
    anything else (403, 5xx, no connection) means the cluster could not do it."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as exc:
        try:
            message = json.loads(exc.body or "{}").get("message") or exc.reason
        except ValueError:
            message = exc.reason
        if exc.status in handled:
            raise ApiError(exc.status, f"{what}: {message}") from None
        kind = InvalidInput if exc.status in (400, 404, 409, 422) else Unavailable
        raise kind(f"{what}: {message} (HTTP {exc.status})") from None
    except HTTPError as exc:
        raise Unavailable(f"{what}: the Kubernetes API did not answer: {exc}") from None
