"""skserve's locustfile plus a raw record of every latency Locust measured, one file per
Locust process in $SKSERVE_TEST_LATENCY_DIR (`version<TAB>ms` lines): the exact client-side
values the gate's histograms are checked against in test_real_run.py."""

import os
from pathlib import Path
from typing import Any

from locust import events

from skserve.loadtest.shapes import SkserveShape
from skserve.loadtest.users import SkserveUser

__all__ = ["SkserveShape", "SkserveUser"]
_out: list[Any] = []


@events.request.add_listener
def _record(response_time: float, response: Any = None, **_: Any) -> None:
    if not _out:
        path = Path(os.environ["SKSERVE_TEST_LATENCY_DIR"]) / f"{os.getpid()}.tsv"
        _out.append(path.open("a", buffering=1))
    version = getattr(response, "headers", None) and response.headers.get("x-model-version")
    _out[0].write(f"{version or 'unknown'}\t{response_time!r}\n")
