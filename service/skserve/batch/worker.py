"""Scoring one mini-batch: validate, predict, retry, time out. Runs in the job's process at
concurrency 1 and in each pool process above that (each loads the model once)."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..console import set_thread_env

set_thread_env()  # before scikit-learn loads OpenMP in a pool process

from .. import outputs  # noqa: E402
from ..outputs import Scores, Task  # noqa: E402
from .validate import check_frame  # noqa: E402

if TYPE_CHECKING:
    from .inputs import Piece

_STATE: dict[str, Any] = {}


def init(model_tag: str, id_column: str | None) -> None:
    """Load the pipeline once per process."""
    from threadpoolctl import threadpool_limits

    from .. import store

    pipeline, info = store.load(model_tag)
    threadpool_limits(limits=1)
    task = Task.of(info)
    task.check(pipeline)
    _STATE.update(pipeline=pipeline, schema=info.schema, id_column=id_column, tag=info.tag,
                  task=task)


@dataclass
class Scored:
    """What comes back for one mini-batch: predictions for the good rows, reasons for bad
    ones, or the error that failed the whole mini-batch after its retries."""

    index: int
    predictions: Scores | None
    good: np.ndarray | None
    reasons: np.ndarray | None
    error: str | None = None
    attempts: int = 1
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


class MiniBatchTimeout(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise MiniBatchTimeout in this thread after `seconds` (SIGALRM; main thread only —
    elsewhere there is no timeout). Interrupts Python code; a long C call is interrupted
    when it returns to the interpreter."""
    usable = seconds > 0 and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise MiniBatchTimeout(f"mini-batch took longer than the timeout of {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _predict(frame: pd.DataFrame) -> Scores:
    task: Task = _STATE["task"]
    if len(frame) == 0:  # scikit-learn refuses an empty frame
        return Scores(np.empty(0) if not task.is_classifier else [],
                      np.empty((0, len(task.classes))) if task.has_proba else None)
    return outputs.score(_STATE["pipeline"], task, frame)


def score(piece: Piece, max_retries: int, timeout: float) -> Scored:
    """Validate once (bad rows are deterministic, retrying cannot fix them), then predict with
    up to `max_retries` retries, each attempt bounded by `timeout` seconds."""
    start = time.perf_counter()
    index = piece.mb.index
    checked = check_frame(_STATE["schema"], piece.frame, _STATE["id_column"], text=piece.text,
                          read_errors=piece.read_errors)
    validated = time.perf_counter()
    error = None
    attempts = 0
    for attempts in range(1, max_retries + 2):
        try:
            with _deadline(timeout):
                predictions = _predict(checked.frame)
            done = time.perf_counter()
            return Scored(index, predictions, checked.good, checked.reasons, None, attempts,
                          done - start,
                          {"validate": validated - start, "predict": done - validated})
        except MiniBatchTimeout as exc:
            error = f"timeout: {exc}"
        except Exception as exc:
            last = traceback.format_exception_only(exc)[-1].strip()
            error = f"predict failed: {last}"
    return Scored(index, None, checked.good, checked.reasons, error, attempts,
                  time.perf_counter() - start)
