"""Files a batch job writes: atomic part files per mini-batch, the merged output, checksums.

Every file is written to a temporary name in the same folder and renamed into place, so a
reader (or a restarted job) sees either nothing or a complete file, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path next to `path`, renamed to it when the block succeeds.

    The data is fsync'ed before the rename, so a power cut leaves the old file or the new
    one. A temp file left by a killed process starts with `.tmp-` and is ignored."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: Path, doc: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def is_parquet(name: str) -> bool:
    return name.lower().endswith((".parquet", ".pq"))


def write_table(path: Path, table: pa.Table) -> None:
    """One part or output table, CSV or Parquet by the file name, atomically."""
    with atomic_path(path) as tmp:
        if is_parquet(path.name):
            pq.write_table(table, tmp)
        else:
            pacsv.write_csv(table, tmp)


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        for record in records:
            fh.write(json.dumps(record, default=str) + "\n")


def _copy_csv_body(src: BinaryIO, dst: BinaryIO, keep_header: bool) -> None:
    if not keep_header:
        src.readline()
    shutil.copyfileobj(src, dst, 1 << 20)


def concat_files(parts: list[Path], dest: Path) -> int:
    """Concatenate part files into `dest` (CSV: one header; Parquet: one schema; JSON Lines:
    as they are), streaming, atomically. Returns the number of parts joined."""
    with atomic_path(dest) as tmp:
        if is_parquet(dest.name):
            writer: pq.ParquetWriter | None = None
            try:
                for part in parts:
                    table = pq.read_table(part)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table.cast(writer.schema))
                if writer is None:  # no rows at all: still a readable, empty file
                    pq.write_table(pa.table({}), tmp)
            finally:
                if writer is not None:
                    writer.close()
        else:
            header_written = False
            with open(tmp, "wb") as out:
                for part in parts:
                    with open(part, "rb") as src:
                        is_csv = not part.name.endswith(".jsonl")
                        if is_csv and part.stat().st_size == 0:
                            continue
                        _copy_csv_body(src, out, keep_header=not (is_csv and header_written))
                        header_written = header_written or is_csv
    return len(parts)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_temp_files(folder: Path) -> int:
    """Delete temporaries a killed run left behind; returns how many."""
    n = 0
    if folder.exists():
        for tmp in folder.rglob(".tmp-*"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                n += 1
    return n
