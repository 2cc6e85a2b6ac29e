"""Files a batch job writes: atomic part files per mini-batch, the merged output, checksums.

Every file is written to a temporary name in the same folder and renamed into place, so a
reader (or a restarted job) sees either nothing or a complete file, never half of one.
Files are created with the process's umask (0644 under the usual 022), like any other tool
writing into a shared output folder. An output with no rows still has its columns: a CSV
header line, a Parquet schema.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path next to `path`, renamed to it when the block succeeds.

    The data is fsync'ed before the rename, so a power cut leaves the old file or the new
    one. A temp file left by a killed process starts with `.tmp-` and is ignored. It is
    created 0666 less the umask (tempfile.mkstemp would make it 0600, and the rename would
    keep that)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}.{secrets.token_hex(8)}"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
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
    """One part or output table, CSV or Parquet by the file name, atomically (with its
    header or schema even when it has no rows)."""
    with atomic_path(path) as tmp:
        _write(tmp, path.name, table)


def _write(tmp: Path, name: str, table: pa.Table) -> None:
    if is_parquet(name):
        pq.write_table(table, tmp)
    else:
        pacsv.write_csv(table, tmp)


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        for record in records:
            fh.write(json.dumps(record, default=str) + "\n")


def concat_files(parts: list[Path], dest: Path, schema: pa.Schema | None = None) -> int:
    """Concatenate part files into `dest` (CSV: one header; Parquet: one schema; JSON Lines:
    as they are), streaming, atomically. Returns the number of parts joined.

    CSV and Parquet outputs need `schema`, the output's columns: parts with no rows add
    nothing (even one with no columns, as older versions wrote), and with no rows at all
    `dest` still has the header or schema."""
    if dest.name.endswith(".jsonl"):
        with atomic_path(dest) as tmp, open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        return len(parts)
    assert schema is not None, "CSV and Parquet outputs need their schema"
    with atomic_path(dest) as tmp:
        if is_parquet(dest.name):
            with pq.ParquetWriter(tmp, schema) as writer:
                for part in parts:
                    table = pq.read_table(part)
                    if table.num_rows:
                        writer.write_table(table.cast(schema))
        else:
            _write(tmp, dest.name, schema.empty_table())  # the header
            with open(tmp, "ab") as out:
                for part in parts:
                    if part.stat().st_size:
                        with open(part, "rb") as src:
                            src.readline()
                            shutil.copyfileobj(src, out, 1 << 20)
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
