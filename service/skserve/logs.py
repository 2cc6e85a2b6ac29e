"""Server logs: one line per event, JSON when a log pipeline reads them.

Format: `SKSERVE_LOG_FORMAT` = `json` (one JSON object per line, what Kubernetes log
pipelines parse), `text` (readable, for a terminal) or `auto` (the default: text when stderr
is a terminal, JSON otherwise). Level: `SKSERVE_LOG_LEVEL` (default INFO) for skserve's and
BentoML's own loggers; other libraries log at WARNING and above. Everything goes to stderr.

A client's mistake (any 4xx) is one INFO line from the `skserve.http` logger, written by the
HTTP edge (`skserve.edge`): method, path, status and the offending fields, never the values
and never a traceback. Server faults (5xx, a model that raises) keep BentoML's ERROR record
with its traceback; in JSON the traceback is the `exc_info` field of that one line.
"""

from __future__ import annotations

import logging
import logging.config
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from .errors import InvalidInput

FORMATS = ("auto", "json", "text")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
HTTP_LOGGER = "skserve.http"
# BentoML's `log_exception` logs every exception of an API call here, client errors included.
BENTOML_API_LOGGER = "bentoml._internal.server.http_app"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def resolve(env: Mapping[str, str] | None = None,
            stream: TextIO | None = None) -> tuple[str, str]:
    """The (format, level) that `env` asks for; `auto` becomes `text` on a terminal.

    Raises InvalidInput for a value outside `FORMATS` / `LEVELS`."""
    env = os.environ if env is None else env
    fmt = (env.get("SKSERVE_LOG_FORMAT") or "auto").lower()
    level = (env.get("SKSERVE_LOG_LEVEL") or "INFO").upper()
    if fmt not in FORMATS:
        raise InvalidInput(f"SKSERVE_LOG_FORMAT={fmt!r}: use one of {', '.join(FORMATS)}")
    if level not in LEVELS:
        raise InvalidInput(f"SKSERVE_LOG_LEVEL={level!r}: use one of {', '.join(LEVELS)}")
    if fmt == "auto":
        fmt = "text" if (stream or sys.stderr).isatty() else "json"
    return fmt, level


def logging_config(fmt: str, level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` document: one stderr handler on the root logger."""
    formatters = {
        "json": {"()": "pythonjsonlogger.json.JsonFormatter",
                 "fmt": "%(levelname)s %(name)s %(message)s",
                 "rename_fields": {"levelname": "level", "name": "logger"},
                 "timestamp": "time"},
        "text": {"format": TEXT_FORMAT, "datefmt": DATE_FORMAT},
    }
    return {
        "version": 1,
        # BentoML's loggers already exist when this runs; keep them, re-plumb them.
        "disable_existing_loggers": False,
        "formatters": {fmt: formatters[fmt]},
        "filters": {"client_errors": {"()": ClientErrorTracebacks}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": fmt}},
        "loggers": {
            "skserve": {"level": level},
            "bentoml": {"level": level, "handlers": [], "propagate": True},
            BENTOML_API_LOGGER: {"filters": ["client_errors"]},
            "uvicorn.error": {"level": "WARNING", "handlers": [], "propagate": True},
            "circus": {"level": "WARNING", "handlers": [], "propagate": True},
        },
        "root": {"level": "WARNING", "handlers": ["stderr"]},
    }


def configure(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Apply the format and level `env` asks for to this process; returns them.

    BentoML configures logging itself (text on stdout, in each process, with no setting for
    the format) before it imports the service module, and has no hook for a handler of our
    own; the service module calls this at import, after BentoML, which replaces BentoML's
    handlers through the standard `dictConfig` rather than patching BentoML."""
    fmt, level = resolve(env)
    logging.config.dictConfig(logging_config(fmt, level))
    return fmt, level


def is_client_error(exc: BaseException | None) -> bool:
    """Whether this exception of an API call is a client's doing: a pydantic
    ValidationError or a BentoMLException with a 4xx code (BentoML answers both with that
    4xx), or a client that hung up before sending its whole body (BentoML answers 500; the
    edge turns it into 499)."""
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError
    from starlette.requests import ClientDisconnect

    if isinstance(exc, ValidationError | ClientDisconnect):
        return True
    return isinstance(exc, BentoMLException) and int(exc.error_code) < 500


class ClientErrorTracebacks(logging.Filter):
    """Drops BentoML's ERROR record (with its ~24-line traceback) for a client's mistake;
    the edge logs that request as one line. Everything else passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and is_client_error(record.exc_info[1]))


def log_client_error(method: str, path: str, status: int, detail: Any,
                     truncated: bool = False, limit: int = 5) -> None:
    """One INFO line for a 4xx answer: method, path, status and the first `limit` offending
    fields with their error types, from the answer's pydantic-style `detail` list (which
    holds only its first errors when `truncated`)."""
    errors = ([e for e in detail if isinstance(e, dict) and "loc" in e]
              if isinstance(detail, list) else [])
    fields = [_loc(e["loc"]) for e in errors[:limit]]
    types = [str(e.get("type", "")) for e in errors[:limit]]
    shown = ", ".join(f"{f} ({t})" if t else f for f, t in zip(fields, types, strict=True))
    more = ""
    if len(errors) > limit or (truncated and errors):
        more = f" and {len(errors) - len(fields)}{'+' if truncated else ''} more"
    logging.getLogger(HTTP_LOGGER).info(
        "%s %s %d%s", method, path, status, f": {shown}{more}" if shown else "",
        extra={"method": method, "path": path, "status": status, "fields": fields,
               "errors": types})


def _loc(loc: Any) -> str:
    """`[1, "Temperature"]` → `[1].Temperature`; an empty location is the whole body."""
    if not isinstance(loc, list) or not loc:
        return "body"
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
