"""The pure core: mini-batch plans, shards, progress math, the error threshold."""

from __future__ import annotations

import hashlib
import json

import pytest

from skserve.batch.plan import (
    InputFile,
    Progress,
    failed_items,
    plan_fingerprint,
    plan_minibatches,
    shard,
    shard_range,
    threshold_exceeded,
)


def test_minibatches_cover_every_row_once_and_never_span_files() -> None:
    files = [InputFile("a", 10), InputFile("b", 0), InputFile("c", 7)]
    batches = plan_minibatches(files, 4)
    assert [(b.file, b.start, b.stop) for b in batches] == [
        ("a", 0, 4), ("a", 4, 8), ("a", 8, 10), ("c", 0, 4), ("c", 4, 7)]
    assert [b.index for b in batches] == list(range(5))
    with pytest.raises(ValueError):
        plan_minibatches(files, 0)


@pytest.mark.parametrize("total", [0, 1, 5, 17, 100])
@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_shards_are_disjoint_balanced_and_cover(total: int, count: int) -> None:
    ranges = [shard_range(total, count, i) for i in range(count)]
    covered = [i for r in ranges for i in r]
    assert covered == list(range(total))  # in order, no gap, no overlap
    sizes = [len(r) for r in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_shard_picks_the_instances_block_and_rejects_bad_indexes() -> None:
    batches = plan_minibatches([InputFile("a", 100)], 10)
    assert [b.index for b in shard(batches, 3, 1)] == [3, 4, 5]
    with pytest.raises(ValueError):
        shard(batches, 3, 3)
    with pytest.raises(ValueError):
        shard(batches, 0, 0)


def test_an_unreadable_file_is_one_minibatch_of_no_rows_counting_one_failed_item() -> None:
    files = [InputFile("a", 5), InputFile("bad", 0, unreadable="not Parquet"),
             InputFile("c", 3)]
    batches = plan_minibatches(files, 4)
    assert [(b.file, b.rows, b.unreadable) for b in batches] == [
        ("a", 4, None), ("a", 1, None), ("bad", 0, "not Parquet"), ("c", 3, None)]
    assert failed_items(0, 0, unreadable=True) == 1
    assert failed_items(4, 1, unreadable=False) == 3


def test_fingerprint_changes_with_files_and_settings() -> None:
    files = [InputFile("a", 10)]
    base = plan_fingerprint(files, {"mini_batch_size": 5})
    assert base == plan_fingerprint([InputFile("a", 10)], {"mini_batch_size": 5})
    assert base != plan_fingerprint([InputFile("a", 11)], {"mini_batch_size": 5})
    assert base != plan_fingerprint(files, {"mini_batch_size": 6})
    assert base != plan_fingerprint([InputFile("a", 0, "gone")], {"mini_batch_size": 5})
    # a readable file's fingerprint is what it was before `unreadable` existed, so
    # folders of jobs started by an older version still resume
    before = {"files": [{"path": "a", "rows": 10}], "settings": {"mini_batch_size": 5}}
    assert base == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()


def test_progress_rate_and_eta_ignore_resumed_rows() -> None:
    p = Progress(10, 6, 1, rows_total=1000, rows_done=600, elapsed_s=2.0, rows_resumed=400)
    assert p.rows_per_s == pytest.approx(100.0)  # 200 rows scored in 2 s
    assert p.eta_s == pytest.approx(4.0)  # 400 rows left at 100 rows/s
    assert "6/10" in p.line() and "1 failed" in p.line()
    assert Progress(1, 0, 0, 10, 0, 0.0).eta_s is None
    assert Progress(1, 1, 0, 10, 10, 1.0).eta_s == 0.0


@pytest.mark.parametrize(("failed", "threshold", "exceeded"), [
    (0, -1, False), (10**9, -1, False), (0, 0, False), (1, 0, True), (5, 5, False), (6, 5, True)])
def test_error_threshold(failed: int, threshold: int, exceeded: bool) -> None:
    assert threshold_exceeded(failed, threshold) is exceeded
