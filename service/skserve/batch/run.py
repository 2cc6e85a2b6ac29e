"""`skserve batch run`: score CSV/Parquet files in mini-batches, resumably, one shard of many.

I/O lives here and in `inputs` (what a row is, reading); the decisions (plan, shard,
progress, threshold) are pure functions in `plan`. The output folder holds, for one shard:

    <output>/<output_file_name>      every scored row's key and prediction (append_row)
    <output>/logs/job_progress.txt   a line per progress tick: mini-batches, rows/s, ETA
    <output>/logs/job_error.txt      a line per failed mini-batch or mini-batch with bad rows
    <output>/logs/errors.jsonl       every bad or failed row and unreadable file: where,
                                     why, its values (empty when nothing failed)
    <output>/logs/job_result.json    status, counts, durations, model, output checksum
    <output>/state/                  the plan's fingerprint and one record per finished
                                     mini-batch: what a restart resumes from

With `--instance-count N` each instance writes the same under `<output>/shard-I-of-N/`, and
the last one to finish (or `skserve batch merge`) joins them into `<output>/`.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import InputNotFound, InvalidInput, JobFailed
from ..outputs import Scores, Task, proba_column
from . import output as out
from .inputs import Piece, read_minibatches, resolve_inputs, scan
from .plan import (
    InputFile,
    MiniBatch,
    Progress,
    ScoringOptions,
    failed_items,
    plan_fingerprint,
    plan_minibatches,
    shard,
    shard_dir_name,
    threshold_exceeded,
)
from .worker import Scored

OUTPUT_ACTIONS = ("append_row", "summary_only")
EXIT_THRESHOLD = 3  # the job ran but failed: more bad rows than --error-threshold allows


@dataclass(frozen=True)
class RunOptions(ScoringOptions):
    """The knobs of an Azure ML batch deployment, plus where to read and write."""

    inputs: list[str]
    output: Path
    model: str = "demand:latest"
    instance_index: int = 0
    progress_interval: float = 1.0
    # On stderr: None = a bar on a terminal, elsewhere (a log, a pipe, a Kubernetes Job) a
    # plain progress line every `log_progress_interval` seconds; True = the bar; False = nothing.
    progress_bar: bool | None = None
    log_progress_interval: float = 10.0
    merge: bool = True  # the last shard to finish merges all shards

    def validate(self) -> None:
        if self.output_action not in OUTPUT_ACTIONS:
            raise InvalidInput(f"--output-action must be one of {OUTPUT_ACTIONS}")
        if not self.output_file_name.lower().endswith((".csv", ".parquet")):
            raise InvalidInput("--output-file-name must end in .csv or .parquet")
        if "/" in self.output_file_name:
            raise InvalidInput("--output-file-name is a file name, not a path")
        for name in ("mini_batch_size", "max_concurrency_per_instance", "instance_count"):
            if getattr(self, name) < 1:
                raise InvalidInput(f"--{name.replace('_', '-')} must be at least 1")
        if self.max_retries < 0:
            raise InvalidInput("--max-retries must be 0 or more")
        if self.error_threshold < -1:
            raise InvalidInput("--error-threshold must be -1 (ignore failures) or 0 or more")


class ThresholdExceeded(JobFailed):
    """More rows failed than --error-threshold allows."""


# ---------------------------------------------------------------- per mini-batch records


LABEL_ARROW = {"string": pa.string(), "integer": pa.int64(), "boolean": pa.bool_(),
               "number": pa.float64()}


def prediction_fields(task: Task) -> list[pa.Field]:
    """A regressor's `prediction` (float64); a classifier's `label` (in the labels' own type:
    string, int64, bool or float64) and, with predict_proba, one float64 column per class
    in class order, named by `outputs.proba_column` (`proba_<key>`, percent-encoded)."""
    if not task.is_classifier:
        return [pa.field("prediction", pa.float64())]
    probas = [pa.field(proba_column(k), pa.float64()) for k in task.keys] if task.has_proba \
        else []
    return [pa.field("label", LABEL_ARROW[task.label_type]), *probas]


def output_schema(id_column: str | None, task: Task) -> pa.Schema:
    """The columns of every append_row output, shard and merged, rows or none: the key
    (`file`, `row`, or the id column) and the prediction (`prediction_fields`). An id
    column named like a prediction column is refused (InvalidInput)."""
    keys = ([pa.field(id_column, pa.string())] if id_column else
            [pa.field("file", pa.dictionary(pa.int32(), pa.string())),
             pa.field("row", pa.int64())])
    predictions = prediction_fields(task)
    if id_column in {f.name for f in predictions}:
        raise InvalidInput(f"--id-column {id_column!r} is also a prediction column of this "
                           "model's output; rename the id column")
    return pa.schema([*keys, *predictions])


def task_of(result: dict[str, Any]) -> Task:
    """The output task a job_result.json records (results written before tasks: regression)."""
    recorded = result.get("task") or {"kind": "regression"}
    return Task(recorded["kind"], tuple(recorded.get("classes", ())),
                bool(recorded.get("has_proba", False)))


def _keys(mb: MiniBatch, frame: pd.DataFrame | None, id_column: str | None) -> dict[str, Any]:
    """Each row's key: its id (None where it has none) or its file and row number."""
    if id_column:
        if frame is None or id_column not in frame.columns:
            return {id_column: np.full(mb.rows, None, dtype=object)}
        ids = frame[id_column].reset_index(drop=True).astype("string")
        return {id_column: ids.to_numpy(dtype=object, na_value=None)}
    return {"file": np.full(mb.rows, mb.file, dtype=object),
            "row": np.arange(mb.start, mb.stop, dtype=np.int64)}


def _predictions_table(keys: dict[str, Any], good: np.ndarray, scores: Scores,
                       mb: MiniBatch, schema: pa.Schema) -> pa.Table:
    cols: dict[str, Any] = {}
    for name, values in keys.items():
        chosen = values[good]
        if name == "file":
            cols[name] = pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(len(chosen), dtype=np.int32)), pa.array([mb.file]))
        else:
            cols[name] = chosen
    predicted = schema.names[len(keys):]  # prediction or label, then any proba_ columns
    cols[predicted[0]] = scores.values
    for j, name in enumerate(predicted[1:]):
        cols[name] = scores.proba[:, j]  # type: ignore[index]
    return pa.table(cols, schema=schema)


def _json_value(value: Any) -> Any:
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value


def _error_records(piece: Piece, keys: dict[str, Any], rows: np.ndarray,
                   reasons: np.ndarray) -> list[dict[str, Any]]:
    """One errors.jsonl record per bad or failed row, every record with the same fields:
    where (mini-batch, file, row, CSV line, key), why, and the row's values as read."""
    mb, frame = piece.mb, piece.frame
    records = []
    for i in np.flatnonzero(rows):
        row = mb.start + int(i)
        record: dict[str, Any] = {"minibatch": mb.index, "file": mb.file, "row": row,
                                  "line": row + 2 if piece.text else None}
        for name, values in keys.items():
            record[name] = _json_value(values[i])
        record["reason"] = reasons[i]
        record["values"] = (None if frame is None else
                            {k: _json_value(v) for k, v in frame.iloc[int(i)].items()})
        records.append(record)
    return records


def _unreadable_record(mb: MiniBatch, id_column: str | None, reason: str) -> dict[str, Any]:
    """The errors.jsonl record of an unreadable file: no row, no line, no values."""
    return {"minibatch": mb.index, "file": mb.file, "row": None, "line": None,
            **({id_column: None} if id_column else {}), "reason": reason, "values": None}


# ---------------------------------------------------------------- progress


class Reporter:
    """job_progress lines every `interval` seconds and, on stderr, either a progress bar (on a
    terminal) or the same line through `say` every `log_interval` seconds (a log shows the
    job moving, without a line a second)."""

    def __init__(self, path: Path, interval: float, bar: bool, total_rows: int,
                 say: Callable[[str], None] | None = None, log_interval: float = 10.0):
        self.path = path
        self.interval = interval
        self.last = 0.0
        self.say = say
        self.log_interval = log_interval
        self.last_said = time.perf_counter()  # the first line once a log interval has passed
        self.cost_s = 0.0  # time spent on progress and logs, reported in job_result
        self._bar = None
        if bar:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar

            from ..console import stderr_console

            self._bar = Bar(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                            console=stderr_console(), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("rows", total=total_rows, rate="")

    def update(self, progress: Progress, force: bool = False) -> None:
        now = time.perf_counter()
        if self.say is not None and not force and now - self.last_said >= self.log_interval:
            self.last_said = now
            self.say(f"progress: {progress.line()}")
        if not force and now - self.last < self.interval:
            return
        self.last = now
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with open(self.path, "a") as fh:
            fh.write(f"{stamp} {progress.line()}\n")
        if self._bar is not None:
            self._bar.update(self._task, completed=progress.rows_done,
                             rate=f"{progress.rows_per_s:,.0f} rows/s")
        self.cost_s += time.perf_counter() - now

    def log_error(self, path: Path, line: str) -> None:
        start = time.perf_counter()
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with open(path, "a") as fh:
            fh.write(f"{stamp} {line}\n")
        self.cost_s += time.perf_counter() - start

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


# ---------------------------------------------------------------- the job


@dataclass
class _Totals:
    done: int = 0
    failed_minibatches: int = 0
    files_unreadable: int = 0
    rows_done: int = 0
    rows_scored: int = 0
    rows_bad: int = 0
    rows_failed: int = 0  # what error_threshold counts: plan.failed_items of each record
    resumed: int = 0
    rows_resumed: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, record: dict[str, Any]) -> None:
        # records written before unreadable files were counted have neither key
        record.setdefault("unreadable", False)
        record.setdefault("failed", record["rows"] - record["scored"])
        self.done += 1
        self.failed_minibatches += int(record["error"] is not None)
        self.files_unreadable += int(record["unreadable"])
        self.rows_done += record["rows"]
        self.rows_scored += record["scored"]
        self.rows_bad += record["bad"]
        self.rows_failed += record["failed"]
        self.records.append(record)


class Job:
    """One shard of a batch job in one output folder."""

    def __init__(self, opts: RunOptions):
        opts.validate()
        self.opts = opts
        self.root = Path(opts.output)
        self.dir = (self.root if opts.instance_count == 1
                    else self.root / shard_dir_name(opts.instance_index, opts.instance_count))
        self.logs = self.dir / "logs"
        self.state = self.dir / "state"
        self.parquet = out.is_parquet(opts.output_file_name)
        self.task = Task("regression")  # the model's, set once its info is read
        self.schema = output_schema(opts.id_column, self.task)

    def part(self, index: int, kind: str) -> Path:
        ext = {"pred": ".parquet" if self.parquet else ".csv", "errors": ".jsonl",
               "done": ".json"}[kind]
        return self.state / "parts" / f"{index:08d}.{kind}{ext}"

    def settings(self, model_tag: str) -> dict[str, Any]:
        o = self.opts
        return {"model": model_tag, "mini_batch_size": o.mini_batch_size,
                "instance_count": o.instance_count, "output_action": o.output_action,
                "output_file_name": o.output_file_name, "id_column": o.id_column}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_job(opts: RunOptions, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or resume) one shard; returns the job_result document.

    Raises ThresholdExceeded (after writing job_result) when failures pass the threshold."""
    from .. import store

    say = say or (lambda message: None)
    t0 = time.perf_counter()
    started_at = _now()
    job = Job(opts)
    info = store.get_info(opts.model)
    job.task = Task.of(info)
    job.schema = output_schema(opts.id_column, job.task)
    files = resolve_inputs(opts.inputs)
    listing = [scan(f) for f in files]
    everything = plan_minibatches(listing, opts.mini_batch_size)
    mine = shard(everything, opts.instance_count, opts.instance_index)
    fingerprint = plan_fingerprint(listing, job.settings(info.tag))

    job.logs.mkdir(parents=True, exist_ok=True)
    (job.state / "parts").mkdir(parents=True, exist_ok=True)
    out.remove_temp_files(job.dir)
    state_file = job.state / "plan.json"
    if state_file.exists():
        previous = out.read_json(state_file)
        if previous["fingerprint"] != fingerprint:
            raise InvalidInput(
                f"{job.dir} holds a different job (other inputs, model or options: plan "
                f"{previous['fingerprint'][:12]} vs {fingerprint[:12]}); use another --output "
                "or delete that folder")
    else:
        out.write_json(state_file, {"fingerprint": fingerprint, "settings": job.settings(info.tag),
                                    "files": [asdict(f) for f in listing],
                                    "created_at": started_at})

    totals = _Totals()
    pending: list[MiniBatch] = []
    for mb in mine:
        marker = job.part(mb.index, "done")
        if marker.exists():
            totals.add(out.read_json(marker))
        else:
            pending.append(mb)
    totals.resumed, totals.rows_resumed = totals.done, totals.rows_done
    rows_total = sum(mb.rows for mb in mine)
    t_plan = time.perf_counter()
    if totals.resumed:
        say(f"resuming: {totals.resumed} of {len(mine)} mini-batches already done")
    say(f"scoring {rows_total:,} rows ({len(mine)} mini-batch(es) of up to "
        f"{opts.mini_batch_size:,}) from {len(files)} file(s) with {info.tag}, "
        f"concurrency {opts.max_concurrency_per_instance}"
        + (f", shard {opts.instance_index + 1}/{opts.instance_count}"
           if opts.instance_count > 1 else ""))

    bar = sys.stderr.isatty() if opts.progress_bar is None else opts.progress_bar
    lines = opts.progress_bar is None and not bar
    reporter = Reporter(job.logs / "job_progress.txt", opts.progress_interval, bar, rows_total,
                        say if lines else None, opts.log_progress_interval)
    error_log = job.logs / "job_error.txt"
    if totals.resumed:
        reporter.log_error(error_log, f"resumed with {totals.resumed} mini-batches done")

    def progress() -> Progress:
        return Progress(len(mine), totals.done, totals.failed_minibatches, rows_total,
                        totals.rows_done, time.perf_counter() - t_plan, totals.rows_resumed)

    failure: str | None = None
    try:
        if threshold_exceeded(totals.rows_failed, opts.error_threshold):
            raise ThresholdExceeded(_threshold_message(totals, opts.error_threshold, job.logs))
        for piece, scored in _score_all(pending, info, opts):
            record = _commit(job, piece, scored, opts)
            totals.add(record)
            if record["error"] or record["bad"]:
                reporter.log_error(error_log, _error_line(record))
            reporter.update(progress())
            if threshold_exceeded(totals.rows_failed, opts.error_threshold):
                raise ThresholdExceeded(_threshold_message(totals, opts.error_threshold, job.logs))
    except ThresholdExceeded as exc:
        failure = str(exc)
        reporter.log_error(error_log, f"job failed: {failure}")
    finally:
        reporter.update(progress(), force=True)
        reporter.close()
    t_score = time.perf_counter()

    result = _finalize(job, info, listing, mine, totals, fingerprint, failure)
    t_end = time.perf_counter()
    result.update(started_at=started_at, finished_at=_now(), durations_s={
        "total": round(t_end - t0, 4), "plan": round(t_plan - t0, 4),
        "score": round(t_score - t_plan, 4), "finalize": round(t_end - t_score, 4),
        "progress_and_logs": round(reporter.cost_s, 4)})
    out.write_json(job.logs / "job_result.json", result)
    if failure:
        raise ThresholdExceeded(failure)
    if opts.instance_count > 1 and opts.merge:
        merged = try_merge(job.root, opts.output_file_name)
        result["merged"] = merged is not None
    return result


def _threshold_message(totals: _Totals, threshold: int, logs: Path) -> str:
    files = (f" (each of the {totals.files_unreadable} unreadable file(s) counts as one)"
             if totals.files_unreadable else "")
    return (f"{totals.rows_failed} rows failed{files}, more than --error-threshold "
            f"{threshold}; see {logs / 'job_error.txt'} and {logs / 'errors.jsonl'} (the "
            "finished mini-batches are kept: rerun with a higher threshold to resume)")


def _error_line(record: dict[str, Any]) -> str:
    if record["unreadable"]:
        return f"mini-batch {record['index']} ({record['file']}): {record['error']}"
    where = f"mini-batch {record['index']} ({record['file']} rows {record['start']}-" \
            f"{record['stop'] - 1})"
    if record["error"]:
        return f"{where} failed after {record['attempts']} attempt(s): {record['error']}"
    return f"{where}: {record['bad']} bad row(s), first: {record['first_reason']}"


def _score_all(pending: list[MiniBatch], info: Any, opts: RunOptions
               ) -> Iterator[tuple[Piece, Scored]]:
    """Score the pending mini-batches: in this process at concurrency 1, else in a pool of
    processes with at most two mini-batches in flight per process (bounded memory). A
    mini-batch that could not be read fails here, without a model call."""
    from . import worker

    pieces = read_minibatches(pending)
    if opts.max_concurrency_per_instance == 1:
        worker.init(info.tag, opts.id_column)
        for piece in pieces:
            yield piece, (_unread(piece) if piece.frame is None else
                          worker.score(piece, opts.max_retries, opts.timeout))
        return
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["skserve.batch.worker"])
    limit = 2 * opts.max_concurrency_per_instance
    with cf.ProcessPoolExecutor(opts.max_concurrency_per_instance, mp_context=ctx,
                                initializer=worker.init,
                                initargs=(info.tag, opts.id_column)) as pool:
        inflight: dict[cf.Future, Piece] = {}
        source = iter(pieces)
        exhausted = False
        try:
            while inflight or not exhausted:
                while not exhausted and len(inflight) < limit:
                    piece = next(source, None)
                    if piece is None:
                        exhausted = True
                    elif piece.frame is None:
                        yield piece, _unread(piece)
                    else:
                        inflight[pool.submit(worker.score, piece, opts.max_retries,
                                             opts.timeout)] = piece
                if not inflight:
                    continue
                done, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: inflight[f].mb.index):
                    piece = inflight.pop(future)
                    yield piece, future.result()
        finally:
            for future in inflight:
                future.cancel()


def _unread(piece: Piece) -> Scored:
    """The result of a mini-batch whose rows could not be read: failed, nothing tried."""
    return Scored(piece.mb.index, None, None, None, piece.error, attempts=0)


def _commit(job: Job, piece: Piece, scored: Scored, opts: RunOptions) -> dict[str, Any]:
    """Write one mini-batch's outputs, then its record: the record is the commit point."""
    mb = piece.mb
    unreadable = mb.unreadable is not None
    keys = _keys(mb, piece.frame, opts.id_column)
    failed = scored.error is not None
    good = scored.good if scored.good is not None else np.zeros(mb.rows, dtype=bool)
    reasons = (scored.reasons.copy() if scored.reasons is not None
               else np.full(mb.rows, "", dtype=object))
    bad_rows = ~good if scored.good is not None else np.zeros(mb.rows, dtype=bool)
    error_rows = np.ones(mb.rows, dtype=bool) if failed else bad_rows
    if failed:  # every row failed: bad rows keep their own reason first
        reasons = np.array([f"{r}; {scored.error}" if r else scored.error for r in reasons],
                           dtype=object)
    if unreadable:
        out.write_jsonl(job.part(mb.index, "errors"),
                        [_unreadable_record(mb, opts.id_column, piece.error or "")])
    elif error_rows.any():
        out.write_jsonl(job.part(mb.index, "errors"),
                        _error_records(piece, keys, error_rows, reasons))
    scores = scored.predictions if not failed and scored.predictions is not None \
        else Scores(np.empty(0))
    if opts.output_action == "append_row" and not failed:
        table = _predictions_table(keys, good, scores, mb, job.schema)
        out.write_table(job.part(mb.index, "pred"), table)
    record = {
        "index": mb.index, "file": mb.file, "start": mb.start, "stop": mb.stop,
        "rows": mb.rows, "scored": len(scores), "bad": int(bad_rows.sum()),
        "failed": failed_items(mb.rows, len(scores), unreadable), "unreadable": unreadable,
        "error": scored.error, "attempts": scored.attempts, "seconds": round(scored.seconds, 5),
        "first_reason": scored.error if unreadable else next((r for r in reasons if r), None),
        **_statistics(job.task, scores),
    }
    out.write_json(job.part(mb.index, "done"), record)
    return record


def _statistics(task: Task, scores: Scores) -> dict[str, Any]:
    """A mini-batch's predictions in brief: sum, min and max of a regressor's; the rows per
    predicted class (by class key) of a classifier's."""
    if task.is_classifier:
        labels, counts = np.unique(np.asarray(scores.values), return_counts=True)
        keys = dict(zip(task.classes, task.keys, strict=True))
        return {"classes": {keys[label]: n for label, n in zip(labels.tolist(), counts.tolist(),
                                                               strict=True)},
                "pred_sum": 0.0, "pred_min": None, "pred_max": None}  # what _summary adds up
    preds = scores.values
    return {"pred_sum": float(preds.sum()) if len(preds) else 0.0,
            "pred_min": float(preds.min()) if len(preds) else None,
            "pred_max": float(preds.max()) if len(preds) else None}


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per file: rows, scored, failed and the predictions' mean, min and max (regression) or
    rows per predicted class (classification)."""
    per_file: dict[str, dict[str, Any]] = {}
    for r in records:
        s = per_file.setdefault(r["file"], {"rows": 0, "scored": 0, "failed": 0, "sum": 0.0,
                                            "min": None, "max": None})
        s["rows"] += r["rows"]
        s["scored"] += r["scored"]
        s["failed"] += r["failed"]
        for key, n in r.get("classes", {}).items():
            classes = s.setdefault("classes", {})
            classes[key] = classes.get(key, 0) + n
        s["sum"] += r["pred_sum"]
        for key, pick in (("min", min), ("max", max)):
            if r[f"pred_{key}"] is not None:
                s[key] = r[f"pred_{key}"] if s[key] is None else pick(s[key], r[f"pred_{key}"])
    for s in per_file.values():
        total = s.pop("sum")
        if "classes" in s:  # a classifier's labels have no mean, min or max
            del s["min"], s["max"]
        else:
            s["mean"] = total / s["scored"] if s["scored"] else None
    return per_file


def _finalize(job: Job, info: Any, listing: list[InputFile], mine: list[MiniBatch],
              totals: _Totals, fingerprint: str, failure: str | None) -> dict[str, Any]:
    """Join the parts into the output and errors files (atomically) and describe the job.

    Both files are written even with no rows (a header or schema; an empty JSON Lines
    file), so whatever reads them next needs no special case."""
    opts = job.opts
    output_file = sha = None
    done = sorted(r["index"] for r in totals.records)
    if failure is None and opts.output_action == "append_row":
        parts = [job.part(i, "pred") for i in done if job.part(i, "pred").exists()]
        output_file = job.dir / opts.output_file_name
        out.concat_files(parts, output_file, job.schema)
        sha = out.sha256_file(output_file)
    errors_file = job.logs / "errors.jsonl"
    out.concat_files([job.part(i, "errors") for i in done if job.part(i, "errors").exists()],
                     errors_file)
    status = "failed" if failure else "succeeded"
    return {
        "status": status,
        "message": failure or (f"scored {totals.rows_scored:,} of {totals.rows_done:,} rows; "
                               f"{totals.rows_failed:,} failed"),
        "model": info.tag,
        "task": {"kind": job.task.kind, "classes": list(job.task.classes),
                 "has_proba": job.task.has_proba},
        "fingerprint": fingerprint,
        "instance_index": opts.instance_index,
        "instance_count": opts.instance_count,
        "output_action": opts.output_action,
        "output_file": str(output_file) if output_file else None,
        "output_sha256": sha,
        "errors_file": str(errors_file),
        "error_threshold": opts.error_threshold,
        "counts": {
            "files": len({mb.file for mb in mine}),
            "files_in_job": len(listing),
            "minibatches_total": len(mine),
            "minibatches_done": totals.done,
            "minibatches_failed": totals.failed_minibatches,
            "minibatches_resumed": totals.resumed,
            "files_unreadable": totals.files_unreadable,
            "rows_total": sum(mb.rows for mb in mine),
            "rows_scored": totals.rows_scored,
            "rows_bad": totals.rows_bad,
            "rows_failed": totals.rows_failed,
        },
        "summary": _summary(totals.records),
        "options": {k: (str(v) if isinstance(v, Path) else v)
                    for k, v in asdict(opts).items()},
    }


# ---------------------------------------------------------------- shards


def shard_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("shard-*-of-*") if p.is_dir())


def try_merge(root: Path, output_file_name: str | None = None,
              require_all: bool = True) -> dict[str, Any] | None:
    """Join every shard's output into `<root>/<output_file_name>` plus `manifest.json`, if
    every shard has succeeded (None otherwise). Idempotent: shards finishing at the same
    time may both merge; each writes the same bytes and renames atomically."""
    dirs = shard_dirs(root)
    if not dirs:
        raise InputNotFound(f"no shard folders (shard-*-of-*) in {root}")
    count = int(dirs[0].name.rsplit("-", 1)[1])
    results = []
    for i in range(count):
        path = root / shard_dir_name(i, count) / "logs" / "job_result.json"
        doc = out.read_json(path) if path.exists() else None
        if doc is None or doc["status"] != "succeeded":
            if require_all:
                return None
            raise InvalidInput(f"shard {i} of {count} has not succeeded ({path}): run it "
                               "(again) before merging")
        results.append(doc)
    if len({r["fingerprint"] for r in results}) != 1:
        raise InvalidInput(f"the shards in {root} come from different jobs (plan "
                           "fingerprints differ)")
    name = output_file_name or results[0]["options"]["output_file_name"]
    manifest: dict[str, Any] = {"shards": [], "model": results[0]["model"],
                                "fingerprint": results[0]["fingerprint"]}
    if results[0]["output_action"] == "append_row":
        schema = output_schema(results[0]["options"]["id_column"], task_of(results[0]))
        out.concat_files([Path(r["output_file"]) for r in results], root / name, schema)
        manifest["output_file"] = str(root / name)
        manifest["output_sha256"] = out.sha256_file(root / name)
    out.concat_files([Path(r["errors_file"]) for r in results if r["errors_file"]],
                     root / "logs" / "errors.jsonl")
    counts: dict[str, int] = {}
    for r in results:
        manifest["shards"].append({k: r[k] for k in ("instance_index", "output_file",
                                                     "output_sha256", "counts")})
        for key, value in r["counts"].items():
            if key != "files_in_job":
                counts[key] = counts.get(key, 0) + value
    manifest["counts"] = counts
    out.write_json(root / "manifest.json", manifest)
    return manifest
