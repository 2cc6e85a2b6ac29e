"""Batch inputs: which files, how many rows each holds, and the rows of each mini-batch.

What a row is. Planning (`scan`) and reading (`read_minibatches`) run the same parser, so
they always agree, and the plan's row numbers are the keys of the output:

- Parquet: a record; the count is the footer's.
- CSV: a record after the header line, as Arrow's CSV reader splits them (RFC 4180: a
  quoted field may hold commas, quotes and line breaks). Blank lines are not rows. A
  record with too many or too few fields is still a row: a bad one, read as all-missing,
  with the reader's reason. So is a record with a field that is not UTF-8 text. Arrow's
  reader cannot go on past a quote left open (it runs to the end of the file) or a
  malformed record that is not UTF-8 text: from that block on, the rest of the file is one
  bad row (in the first block, the file is unreadable). Every field is read as text;
  `validation.Rule.check_column(text=True)` parses it.
- An empty file (0 bytes, only a header, only blank lines) has 0 rows.
- A file that cannot be read at all (not Parquet, a CSV header that is not UTF-8 text or
  repeats a column, gone, no permission) has no rows we can number: `scan` returns it with
  `unreadable` set, and the plan counts it as one failed item (see `plan.plan_minibatches`).

A file that becomes unreadable after planning (deleted, truncated, corrupt data pages)
fails the mini-batches it could not deliver, each with all its rows.
"""

from __future__ import annotations

import bisect
import glob
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import InputNotFound, InvalidInput
from ..validation import short
from .plan import InputFile, MiniBatch

SUFFIXES = (".csv", ".parquet", ".pq")
# What reading a file can raise when the file, not skserve, is at fault.
UNREADABLE = (OSError, ValueError, pa.ArrowException)
CSV_BLOCK_BYTES = 1 << 20  # Arrow's default; the unit the CSV reader parses at a time


def resolve_inputs(inputs: list[str]) -> list[Path]:
    """Files from files, folders (searched recursively) and globs, sorted, de-duplicated."""
    found: set[Path] = set()
    for spec in inputs:
        path = Path(spec)
        if path.is_file():
            found.add(path)
        elif path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file()
                         and p.suffix.lower() in SUFFIXES and not p.name.startswith("."))
        elif glob.has_magic(spec):
            found.update(Path(p) for p in glob.glob(spec, recursive=True)
                         if Path(p).is_file() and Path(p).suffix.lower() in SUFFIXES)
        else:
            raise InputNotFound(f"input not found: {spec}")
    files = sorted(found, key=str)
    if not files:
        raise InputNotFound(f"no .csv or .parquet files in {inputs}")
    for f in files:
        if f.suffix.lower() not in SUFFIXES:
            raise InvalidInput(f"{f}: unsupported file type (use .csv or .parquet)")
    return files


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def unreadable_reason(exc: BaseException) -> str:
    """One printable line, at most about 200 characters, saying why a file could not be
    read (a parser's message may quote the file's bytes)."""
    lines = str(exc).strip().splitlines()
    text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in (lines or [""])[0])
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def scan(path: Path) -> InputFile:
    """The file's data-row count for the plan, or why it cannot be read at all."""
    try:
        if path.stat().st_size == 0:
            return InputFile(str(path), 0)
        if is_parquet(path):
            return InputFile(str(path), pq.ParquetFile(path).metadata.num_rows)
        columns = _csv_columns(path)
        if not columns:
            return InputFile(str(path), 0)
        rows = sum(len(table) for table, _ in _csv_chunks(path, columns, [columns[0]]))
        return InputFile(str(path), rows)
    except UNREADABLE as exc:
        return InputFile(str(path), 0, unreadable=unreadable_reason(exc))


# ---------------------------------------------------------------- CSV


class _ReaderNoise:
    """Arrow calls the invalid-row handler with the record's text decoded as UTF-8; when it
    is not, the decode fails inside Arrow, which reports it as unraisable (a traceback on
    stderr) and then fails the read. The read failure is what we report: silence the
    tracebacks of our handlers, pass any other on."""

    def __enter__(self) -> None:
        self.previous = sys.unraisablehook

        def hook(unraisable: Any) -> None:
            if not isinstance(unraisable.object, _Malformed):
                self.previous(unraisable)

        sys.unraisablehook = hook

    def __exit__(self, *exc: object) -> None:
        sys.unraisablehook = self.previous


def _csv_columns(path: Path) -> list[str]:
    """The header's column names ([] when the file holds no header at all)."""
    read = pacsv.ReadOptions(use_threads=False, block_size=CSV_BLOCK_BYTES)
    parse = pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=_Malformed())
    try:
        with _ReaderNoise():
            reader = pacsv.open_csv(path, read_options=read, parse_options=parse)
    except pa.ArrowInvalid as exc:
        # Only blank lines, or a header with no newline; but a first record longer than a
        # block says the same, and that file is not empty.
        if "Empty CSV file" in str(exc) and path.stat().st_size < CSV_BLOCK_BYTES:
            return []
        raise
    names = reader.schema.names
    reader.close()
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInput(f"the header repeats column(s) {repeated}")
    if any("\n" in n or "\r" in n for n in names):
        raise InvalidInput("the header runs across lines (a quote left open?)")
    return names


class _Malformed:
    """The invalid-row handler: remembers each malformed record by its row number."""

    def __init__(self) -> None:
        self.rows: list[int] = []  # data-row numbers, sorted
        self.reasons: dict[int, str] = {}

    def __call__(self, row: Any) -> str:
        index = row.number - 2  # Arrow numbers records from 1, the header included
        bisect.insort(self.rows, index)
        self.reasons[index] = (f"malformed CSV record (line {index + 2}): expected "
                               f"{row.expected_columns} fields, saw {row.actual_columns}: "
                               f"{short(row.text)}")
        return "skip"


def _csv_chunks(path: Path, columns: list[str], include: list[str] | None = None
                ) -> Iterator[tuple[pa.Table, dict[int, str]]]:
    """The file's rows in order, in chunks: the rows as binary columns, and the reasons of
    the malformed records in the chunk (all-null rows in their place), by row number."""
    read = pacsv.ReadOptions(use_threads=False, block_size=CSV_BLOCK_BYTES)
    malformed = _Malformed()
    parse = pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=malformed)
    convert = pacsv.ConvertOptions(
        column_types={c: pa.binary() for c in columns}, include_columns=include,
        null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True)
    names = include or columns
    pos = 0  # the next row number
    taken = 0  # malformed rows already placed
    empty = pa.table({c: pa.nulls(0, pa.binary()) for c in names})
    with _ReaderNoise():
        reader = pacsv.open_csv(path, read_options=read, parse_options=parse,
                                convert_options=convert)
        batches = iter(reader)
        while True:
            try:
                batch = next(batches, None)
            except UNREADABLE as exc:
                # Arrow cannot go on (a quote left open runs past its block; a malformed
                # record that is not UTF-8): the rest of the file is one bad row.
                del malformed.rows[taken:]
                malformed.rows.append(pos)
                malformed.reasons[pos] = (f"the rest of the file (from line {pos + 2}) "
                                          f"cannot be read: {unreadable_reason(exc)}")
                break
            if batch is None:
                break
            # The parser has reported every malformed record of this batch's block: place
            # them between the valid rows by their numbers.
            end = pos + batch.num_rows
            upto = taken
            while upto < len(malformed.rows) and malformed.rows[upto] < end:
                end += 1
                upto += 1
            table = pa.Table.from_batches([batch])
            if upto > taken:
                table, reasons = _with_placeholders(table, pos, end, malformed, taken, upto)
            else:
                reasons = {}
            if len(table):
                yield table, reasons
            pos, taken = end, upto
    rest = malformed.rows[taken:]
    if rest:  # malformed records after the last valid one
        yield _with_placeholders(empty, pos, pos + len(rest), malformed, taken,
                                 len(malformed.rows))


def _with_placeholders(table: pa.Table, start: int, stop: int, malformed: _Malformed,
                       first: int, last: int) -> tuple[pa.Table, dict[int, str]]:
    """`table`'s valid rows spread over rows [start, stop), all-null rows where the
    malformed records malformed.rows[first:last] were."""
    bad = np.zeros(stop - start, dtype=bool)
    numbers = malformed.rows[first:last]
    bad[np.asarray(numbers, dtype=np.int64) - start] = True
    take = np.zeros(stop - start, dtype=np.int64)
    take[~bad] = np.arange(len(table))
    return table.take(pa.array(take, mask=bad)), {n: malformed.reasons[n] for n in numbers}


def _decode(table: pa.Table, start: int) -> tuple[pa.Table, dict[int, str]]:
    """Binary CSV fields as UTF-8 text; a field that is not makes its row bad."""
    columns = {}
    reasons: dict[int, str] = {}
    for name in table.column_names:
        col = table[name]
        try:
            columns[name] = col.cast(pa.string())
            continue
        except pa.ArrowInvalid:
            pass
        values = col.to_pylist()
        text: list[str | None] = []
        for i, value in enumerate(values):
            try:
                text.append(None if value is None else value.decode("utf-8"))
            except UnicodeDecodeError:
                text.append(None)
                reasons.setdefault(start + i, f"{name}: {short(value)} is not UTF-8 text "
                                              f"(line {start + i + 2})")
        columns[name] = pa.array(text, pa.string())
    return pa.table(columns), reasons


# ---------------------------------------------------------------- mini-batches


@dataclass
class Piece:
    """One mini-batch as read: its rows, or why they could not be read.

    `read_errors` (CSV) holds, per row, "" or why the reader could not read it; `text` says
    the frame holds a CSV file's fields as strings."""

    mb: MiniBatch
    frame: pd.DataFrame | None
    text: bool = False
    read_errors: np.ndarray | None = None
    error: str | None = None


def read_minibatches(batches: list[MiniBatch]) -> Iterator[Piece]:
    """The rows of each mini-batch, in order, streamed: memory holds about one mini-batch
    per file being read, whatever the file's size. A file that fails part-way fails the
    mini-batches it has not delivered; the others are unaffected."""
    by_file: dict[str, list[MiniBatch]] = {}
    for mb in batches:
        if mb.unreadable is not None:
            yield Piece(mb, None, error=f"unreadable file: {mb.unreadable}")
        else:
            by_file.setdefault(mb.file, []).append(mb)
    for name, wanted in by_file.items():
        delivered = 0
        try:
            for piece in _file_pieces(Path(name), wanted):
                delivered += 1
                yield piece
            if delivered < len(wanted):
                raise InvalidInput("the file has fewer rows than when the job was planned")
        except UNREADABLE as exc:
            why = f"could not read rows planned from this file: {unreadable_reason(exc)}"
            for mb in wanted[delivered:]:
                yield Piece(mb, None, text=not is_parquet(Path(name)), error=why)


def _file_pieces(path: Path, wanted: list[MiniBatch]) -> Iterator[Piece]:
    if is_parquet(path):
        pf = pq.ParquetFile(path)
        starts = np.cumsum([0] + [pf.metadata.row_group(i).num_rows
                                  for i in range(pf.metadata.num_row_groups)])
        first = max(0, int(np.searchsorted(starts, wanted[0].start, side="right")) - 1)
        batches = pf.iter_batches(batch_size=65_536,
                                  row_groups=list(range(first, pf.metadata.num_row_groups)))
        chunks = ((pa.Table.from_batches([b]), {}) for b in batches)
        for mb, table, _ in _slices(chunks, int(starts[first]), wanted):
            yield Piece(mb, table.to_pandas())
        return
    columns = _csv_columns(path)
    for mb, table, reasons in _slices(_csv_chunks(path, columns), 0, wanted):
        table, bad_text = _decode(table, mb.start)
        reasons = {**bad_text, **reasons}  # a malformed record's reason comes first
        errors = np.full(mb.rows, "", dtype=object)
        for number, why in reasons.items():
            errors[number - mb.start] = why
        frame = table.to_pandas(types_mapper=pd.ArrowDtype)
        yield Piece(mb, frame, text=True, read_errors=errors)


def _slices(chunks: Iterator[tuple[pa.Table, dict[int, str]]], first_row: int,
            wanted: list[MiniBatch]) -> Iterator[tuple[MiniBatch, pa.Table, dict[int, str]]]:
    """Cut consecutive chunks of a file's rows (from row `first_row`) into the wanted
    mini-batches, in order, holding only the chunks a mini-batch still needs."""
    buffer: list[tuple[pa.Table, dict[int, str]]] = []
    start = first_row  # row number of the first buffered row
    held = 0
    for mb in wanted:
        while start + held < mb.stop:
            chunk = next(chunks, None)
            if chunk is None:
                return
            buffer.append(chunk)
            held += len(chunk[0])
        piece = pa.concat_tables([t for t, _ in buffer]).slice(mb.start - start, mb.rows)
        yield mb, piece, {n: r for _, why in buffer for n, r in why.items()
                          if mb.start <= n < mb.stop}
        while buffer and start + len(buffer[0][0]) <= mb.stop:
            start += len(buffer[0][0])
            held -= len(buffer[0][0])
            buffer.pop(0)
