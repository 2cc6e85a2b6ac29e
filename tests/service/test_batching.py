"""The micro-batcher that merges concurrent single-row requests (pure asyncio, no server)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from skserve.batching import MicroBatcher


def test_concurrent_rows_share_model_calls():
    calls: list[list[int]] = []
    gate = threading.Event()

    def predict(rows: list[int]) -> list[int]:
        gate.wait(timeout=5)  # hold the first call so the rest queue up behind it
        calls.append(rows)
        return [r * 10 for r in rows]

    async def scenario():
        batcher = MicroBatcher(predict, max_batch_size=64)
        tasks = [asyncio.create_task(batcher.submit(0))]
        await asyncio.sleep(0.05)  # row 0 is now inside predict, blocked on the gate
        tasks += [asyncio.create_task(batcher.submit(i)) for i in range(1, 50)]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(*tasks)

    results = asyncio.run(scenario())
    assert results == [i * 10 for i in range(50)]
    assert sorted(r for call in calls for r in call) == list(range(50))
    assert len(calls) == 2 and calls[0] == [0]  # the first alone, the other 49 together


def test_cap_splits_large_queues():
    calls: list[int] = []
    gate = threading.Event()

    def predict(rows):
        gate.wait(timeout=5)
        calls.append(len(rows))
        return rows

    async def scenario():
        batcher = MicroBatcher(predict, max_batch_size=8)
        tasks = [asyncio.create_task(batcher.submit(i)) for i in range(21)]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(*tasks)

    assert asyncio.run(scenario()) == list(range(21))
    assert max(calls) <= 8 and sum(calls) == 21


def test_errors_reach_every_waiter_and_the_batcher_recovers():
    def predict(rows):
        if "bad" in rows:
            raise ValueError("boom")
        return rows

    async def scenario():
        batcher = MicroBatcher(predict)
        with pytest.raises(ValueError, match="boom"):
            await batcher.submit("bad")
        return await batcher.submit("good")

    assert asyncio.run(scenario()) == "good"


def test_a_short_output_is_an_error_not_a_hang():
    async def scenario():
        batcher = MicroBatcher(lambda rows: rows[:-1])
        return await asyncio.wait_for(batcher.submit(1), timeout=5)

    with pytest.raises(RuntimeError, match="0 outputs for 1"):
        asyncio.run(scenario())


def test_a_failing_row_fails_only_its_own_request():
    """A merged call that raises is re-run row by row: rows merged with a bad one still get
    their answers, and the happy path stays one call per batch."""
    calls: list[list[int]] = []
    gate = threading.Event()

    def predict(rows: list[int]) -> list[int]:
        gate.wait(timeout=5)
        calls.append(list(rows))
        if any(r % 7 == 3 for r in rows):
            raise ValueError(f"cannot score {[r for r in rows if r % 7 == 3]}")
        return [r * 10 for r in rows]

    async def scenario():
        batcher = MicroBatcher(predict, max_batch_size=64)
        tasks = [asyncio.create_task(batcher.submit(i)) for i in range(20)]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(scenario())
    for i, result in enumerate(results):
        if i % 7 == 3:
            assert isinstance(result, ValueError) and str([i]) in str(result)
        else:
            assert result == i * 10
    merged = [c for c in calls if len(c) > 1]
    assert len(merged) == 1 and sorted(merged[0]) == list(range(20))
    assert sorted(c[0] for c in calls if len(c) == 1) == list(range(20))  # each row once more


def test_healthy_batches_are_not_re_run():
    calls: list[int] = []

    def predict(rows):
        calls.append(len(rows))
        return rows

    async def scenario():
        batcher = MicroBatcher(predict)
        return await asyncio.gather(*(batcher.submit(i) for i in range(30)))

    assert asyncio.run(scenario()) == list(range(30))
    assert sum(calls) == 30


def test_a_failing_request_fails_alone_and_lists_stay_whole():
    """Requests of several rows merge into one call, each gets its own rows back in order;
    when the merged call raises, each request is re-run alone and only the one holding the
    bad row fails."""
    calls: list[list[int]] = []
    gate = threading.Event()

    def predict(rows: list[int]) -> list[int]:
        gate.wait(timeout=5)
        calls.append(list(rows))
        if 13 in rows:
            raise ValueError("cannot score 13")
        return [r * 10 for r in rows]

    async def scenario():
        batcher = MicroBatcher(predict, max_batch_size=64)
        units = [list(range(i * 5, i * 5 + 5)) for i in range(6)]  # 13 is in units[2]
        tasks = [asyncio.create_task(batcher.submit_many(u)) for u in units]
        await asyncio.sleep(0.05)
        gate.set()
        return units, await asyncio.gather(*tasks, return_exceptions=True)

    units, results = asyncio.run(scenario())
    for unit, result in zip(units, results, strict=True):
        if 13 in unit:
            assert isinstance(result, ValueError)
        else:
            assert list(result) == [r * 10 for r in unit]
    assert calls[0] == [r for u in units for r in u]  # one merged call first
    assert sorted(calls[1:]) == sorted(units)  # then each request alone, whole
