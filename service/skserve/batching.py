"""Merge rows from concurrent single-row requests into one `predict` call.

Greedy batching: while one batch is being predicted, new rows queue up; when it finishes, all
queued rows (up to a cap) go in the next call. An idle server answers at once (no timer to
wait out) and a busy one amortises the pipeline's fixed cost over many rows.

A merged call that raises is re-run row by row, so a row the model cannot score fails only
its own request, not the others merged with it. That costs one model call per row of the
failed batch, on the failure path only; the happy path is one call per batch as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Row = TypeVar("Row")
Out = TypeVar("Out")


class MicroBatcher(Generic[Row, Out]):
    """Runs `predict(rows) -> outputs` in a thread for groups of concurrently submitted rows."""

    def __init__(self, predict: Callable[[list[Row]], Sequence[Out]], max_batch_size: int = 256):
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self._predict = predict
        self._max = max_batch_size
        self._pending: list[tuple[Row, asyncio.Future[Out]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, row: Row) -> Out:
        """Queue one row and wait for its output."""
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            rows = [row for row, _ in batch]
            try:
                outputs = await asyncio.to_thread(self._call, rows)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                else:  # find the guilty rows: only they fail
                    await asyncio.to_thread(self._one_by_one, batch)
                continue
            for (_, future), output in zip(batch, outputs, strict=True):
                _settle(future, output)

    def _call(self, rows: list[Row]) -> Sequence[Out]:
        outputs = self._predict(rows)
        if len(outputs) != len(rows):
            raise RuntimeError(f"predict returned {len(outputs)} outputs for {len(rows)}")
        return outputs

    def _one_by_one(self, batch: list[tuple[Row, asyncio.Future[Out]]]) -> None:
        """Every waiter gets its own row's output or error; none hangs."""
        for row, future in batch:
            try:
                result: Out | BaseException = self._call([row])[0]
            except Exception as exc:
                result = exc
            future.get_loop().call_soon_threadsafe(_settle, future, result)


def _settle(future: asyncio.Future, result: object) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
