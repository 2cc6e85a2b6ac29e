"""Merge rows from concurrent single-row requests into one `predict` call.

Greedy batching: while one batch is being predicted, new rows queue up; when it finishes, all
queued rows (up to a cap) go in the next call. An idle server answers at once (no timer to
wait out) and a busy one amortises the pipeline's fixed cost over many rows.
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
                outputs = await asyncio.to_thread(self._predict, rows)
                if len(outputs) != len(rows):
                    raise RuntimeError(f"predict returned {len(outputs)} outputs for {len(rows)}")
            except Exception as exc:  # every waiter gets the error, none hangs
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), output in zip(batch, outputs, strict=True):
                if not future.done():
                    future.set_result(output)
