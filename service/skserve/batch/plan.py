"""Pure planning: which rows form which mini-batch, which shard scores it, progress math.

Everything here is a function of file listings and row counts, so the same arguments give the
same plan on every restart and on every instance: that is what makes resume and sharding
safe without any coordination between processes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InvalidInput


@dataclass(frozen=True, kw_only=True)
class ScoringOptions:
    """The knobs of an Azure ML batch deployment, shared by `batch run` and `batch invoke`."""

    mini_batch_size: int = 10_000
    max_concurrency_per_instance: int = 1
    instance_count: int = 1
    output_action: str = "append_row"
    output_file_name: str = "predictions.csv"
    error_threshold: int = -1
    max_retries: int = 3
    timeout: float = 30.0
    id_column: str | None = None


@dataclass(frozen=True)
class InputFile:
    """One input file and its data-row count (header excluded), or why it cannot be read
    (`batch.inputs` says what a row is)."""

    path: str
    rows: int
    unreadable: str | None = None


@dataclass(frozen=True)
class MiniBatch:
    """Rows [start, stop) of one file; `index` is global over the whole job, all shards.

    An unreadable file is one mini-batch of no rows with `unreadable` set: it is the one
    failed item that file counts for (see `failed_items`)."""

    index: int
    file: str
    start: int
    stop: int
    unreadable: str | None = None

    @property
    def rows(self) -> int:
        return self.stop - self.start


def failed_items(rows: int, scored: int, unreadable: bool) -> int:
    """What one mini-batch counts against `error_threshold`: its rows that were not scored
    (bad rows, or all of them when the mini-batch failed), or 1 for an unreadable file.

    Azure ML's error_threshold counts failed items: records for tabular input, files for
    file input. A file we cannot read has no records we can count (a corrupt Parquet footer,
    a CSV header that is not text), so it counts as the one item we know failed: the file.
    Its rows are not scored, and job_result lists it under `files_unreadable`.
    """
    return 1 if unreadable else rows - scored


def plan_minibatches(files: list[InputFile], mini_batch_size: int) -> list[MiniBatch]:
    """Cut every file into mini-batches of at most `mini_batch_size` rows, files in order;
    an unreadable file is one mini-batch of no rows that only records its failure.

    A mini-batch never spans two files, so each one is read from one place and its keys
    (file, row number) come straight from its bounds.
    """
    if mini_batch_size < 1:
        raise InvalidInput(f"mini_batch_size must be at least 1, got {mini_batch_size}")
    batches: list[MiniBatch] = []
    for f in files:
        if f.unreadable is not None:
            batches.append(MiniBatch(len(batches), f.path, 0, 0, f.unreadable))
            continue
        for start in range(0, f.rows, mini_batch_size):
            batches.append(MiniBatch(len(batches), f.path, start, min(start + mini_batch_size,
                                                                      f.rows)))
    return batches


def shard_range(total: int, instance_count: int, instance_index: int) -> range:
    """The contiguous block of mini-batch indexes instance `instance_index` of `instance_count`
    scores. Blocks differ in size by at most one, never overlap and together cover 0..total."""
    if instance_count < 1:
        raise InvalidInput(f"instance_count must be at least 1, got {instance_count}")
    if not 0 <= instance_index < instance_count:
        raise InvalidInput(f"instance_index must be in 0..{instance_count - 1}, "
                         f"got {instance_index}")
    return range(total * instance_index // instance_count,
                 total * (instance_index + 1) // instance_count)


def shard(batches: list[MiniBatch], instance_count: int, instance_index: int) -> list[MiniBatch]:
    """This instance's mini-batches (contiguous, so each instance reads few files)."""
    block = shard_range(len(batches), instance_count, instance_index)
    return batches[block.start:block.stop]


def plan_fingerprint(files: list[InputFile], settings: dict[str, Any]) -> str:
    """A digest of everything that decides mini-batch boundaries and their outputs.

    A restart resumes only when it matches, so parts from a different plan are never mixed in.
    """
    doc = {"files": [{k: v for k, v in asdict(f).items() if v is not None} for f in files],
           "settings": settings}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Progress:
    """A snapshot of a running shard, for job_progress and the progress bar."""

    minibatches_total: int
    minibatches_done: int
    minibatches_failed: int
    rows_total: int
    rows_done: int
    elapsed_s: float
    rows_resumed: int = 0

    @property
    def rows_per_s(self) -> float:
        """Throughput of this run only: rows skipped on resume took no time here."""
        scored = self.rows_done - self.rows_resumed
        return scored / self.elapsed_s if self.elapsed_s > 0 and scored > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate; None until there is a rate to go by."""
        rate = self.rows_per_s
        if self.rows_done >= self.rows_total:
            return 0.0
        if rate <= 0:
            return None
        return (self.rows_total - self.rows_done) / rate

    @property
    def fraction(self) -> float:
        return 1.0 if self.rows_total == 0 else self.rows_done / self.rows_total

    def line(self) -> str:
        """One human line: what job_progress records."""
        eta = "?" if self.eta_s is None else f"{self.eta_s:.0f}s"
        return (f"mini-batches {self.minibatches_done}/{self.minibatches_total} done, "
                f"{self.minibatches_failed} failed; rows {self.rows_done}/{self.rows_total} "
                f"({self.fraction:.1%}); {self.rows_per_s:,.0f} rows/s; "
                f"elapsed {self.elapsed_s:.1f}s; ETA {eta}")


def threshold_exceeded(failed_rows: int, error_threshold: int) -> bool:
    """Azure's rule: -1 ignores every failure; otherwise the job fails once failures exceed
    the threshold (a threshold of 0 tolerates none)."""
    return error_threshold >= 0 and failed_rows > error_threshold


def shard_dir_name(instance_index: int, instance_count: int) -> str:
    """Folder of one shard's files inside the output folder when there are several."""
    return f"shard-{instance_index:05d}-of-{instance_count:05d}"
