"""Merge the rows of concurrent requests into one `predict` call.

Greedy batching: while one batch is being predicted, new requests queue up; when it
finishes, all queued requests (up to a cap on their rows) go in the next call. An idle
server answers at once (no timer to wait out) and a busy one amortises the pipeline's fixed
cost over many rows. A request is a unit: one row for /predict, a list for /predict_batch
and V2 infer; its rows stay together and in order.

A merged call that raises is re-run request by request, so rows the model cannot score fail
only their own request, not the others merged with it (for /predict, whose requests are one
row each, that is row by row). That costs one model call per request of the failed batch,
on the failure path only; the happy path is one call per batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Row = TypeVar("Row")
Out = TypeVar("Out")


class MicroBatcher(Generic[Row, Out]):
    """Runs `predict(rows) -> outputs` (one output per row, in order) in a thread for the
    rows of concurrently submitted requests."""

    def __init__(self, predict: Callable[[list[Row]], Sequence[Out]], max_batch_size: int = 256):
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self._predict = predict
        self._max = max_batch_size
        self._pending: list[tuple[list[Row], asyncio.Future[Sequence[Out]]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, row: Row) -> Out:
        """Queue one row and wait for its output."""
        return (await self.submit_many([row]))[0]

    async def submit_many(self, rows: list[Row]) -> Sequence[Out]:
        """Queue one request's rows (kept together in one model call) and wait for their
        outputs, or the error of the call that scored them alone."""
        future: asyncio.Future[Sequence[Out]] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    def _take(self) -> list[tuple[list[Row], asyncio.Future[Sequence[Out]]]]:
        """The queued requests for the next call: in order, while their rows fit the cap
        (always at least one, whatever its size)."""
        size, n = len(self._pending[0][0]), 1
        while n < len(self._pending) and size + len(self._pending[n][0]) <= self._max:
            size += len(self._pending[n][0])
            n += 1
        batch, self._pending = self._pending[:n], self._pending[n:]
        return batch

    async def _drain(self) -> None:
        while self._pending:
            batch = self._take()
            rows = batch[0][0] if len(batch) == 1 else [r for unit, _ in batch for r in unit]
            try:
                outputs = await asyncio.to_thread(self._call, rows)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                else:  # find the guilty requests: only they fail
                    await asyncio.to_thread(self._one_by_one, batch)
                continue
            start = 0
            for unit, future in batch:
                _settle(future, outputs[start:start + len(unit)])
                start += len(unit)

    def _call(self, rows: list[Row]) -> Sequence[Out]:
        outputs = self._predict(rows)
        if len(outputs) != len(rows):
            raise RuntimeError(f"predict returned {len(outputs)} outputs for {len(rows)}")
        return outputs

    def _one_by_one(self, batch: list[tuple[list[Row], asyncio.Future[Sequence[Out]]]]) -> None:
        """Every request gets its own rows' outputs or error; none hangs."""
        for unit, future in batch:
            try:
                result: Sequence[Out] | BaseException = self._call(unit)
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
