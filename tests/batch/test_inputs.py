"""What a row is: planning (`scan`) and reading (`read_minibatches`) agree on every file."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from skserve.batch import inputs
from skserve.batch.inputs import read_minibatches, scan
from skserve.batch.plan import plan_minibatches

from .conftest import BadInputs

QUIRKY = (
    b"\xef\xbb\xbfa,b,c\r\n"  # a byte-order mark and CRLF line ends
    b"1,2,3\r\n"
    b"\r\n"  # a blank line: not a row
    b'4,"x\r\ny",6\r\n'  # a quoted line break: one row
    b"7,8,9,10\r\n"  # one field too many
    b"11,12\r\n"  # one field too few
    b'"13",14,"15"\r\n'
    b"16,17,18"  # no newline at the end
)
ROWS = [("1", "2", "3"), ("4", "x\r\ny", "6"), None, None, ("13", "14", "15"),
        ("16", "17", "18")]  # None: a malformed record, read as a bad row in its place


def _rows(pieces) -> list:
    out = []
    for piece in pieces:
        assert piece.error is None, piece.error
        for i, row in enumerate(piece.frame.itertuples(index=False)):
            out.append(None if piece.read_errors[i] else tuple(row))
    return out


@pytest.mark.parametrize("block", [1 << 20, 32, 16])
@pytest.mark.parametrize("size", [1, 2, 4, 100])
def test_csv_rows_are_records_and_the_count_is_what_reading_gives(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int, size: int) -> None:
    """Small parser blocks put malformed records at every chunk boundary; every mini-batch
    size cuts them differently. The rows and their numbers must not move."""
    monkeypatch.setattr(inputs, "CSV_BLOCK_BYTES", block)
    path = tmp_path / "quirky.csv"
    path.write_bytes(QUIRKY)
    listing = [scan(path)]
    assert listing[0].rows == len(ROWS)
    pieces = list(read_minibatches(plan_minibatches(listing, size)))
    assert _rows(pieces) == ROWS
    errors = [e for p in pieces for e in p.read_errors]
    # `line` counts records, the header as line 1: the blank line and the quoted line
    # break before it do not count
    assert "malformed CSV record (line 4): expected 3 fields, saw 4: '7,8,9,10'" in errors
    assert any(e.startswith("malformed CSV record (line 5): expected 3 fields, saw 2")
               for e in errors)


def test_a_quote_left_open_makes_the_rest_of_the_file_one_bad_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the parser's block, Arrow cannot resynchronise after an open quote: the rows
    before it are rows, the rest of the file is one bad row (not an unreadable file)."""
    monkeypatch.setattr(inputs, "CSV_BLOCK_BYTES", 64)
    path = tmp_path / "open-quote.csv"
    path.write_text("a,b\n" + "1,2\n" * 40 + '3,"4\n' + "5,6\n" * 40)
    listed = scan(path)
    pieces = list(read_minibatches(plan_minibatches([listed], 7)))
    rows = _rows(pieces)
    assert listed.rows == len(rows) and rows[-1] is None and 1 <= rows.count(None) <= 1
    assert rows[:-1] == [("1", "2")] * (len(rows) - 1) and len(rows) <= 41
    assert "the rest of the file (from line" in pieces[-1].read_errors[-1]


def test_a_header_longer_than_a_block_is_unreadable_not_empty(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "CSV_BLOCK_BYTES", 16)
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"column_{i}" for i in range(10)) + "\n" + "1," * 9 + "1\n")
    assert scan(path).unreadable


@pytest.mark.parametrize(("name", "data"), [
    ("zero.csv", b""), ("zero.parquet", b""), ("header.csv", b"a,b\n"),
    ("header-no-newline.csv", b"a,b"), ("blank.csv", b"\n\n\r\n")])
def test_empty_files_have_no_rows(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert (scan(path).rows, scan(path).unreadable) == (0, None)


def test_unreadable_files_are_named_not_raised(bad_inputs: BadInputs, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    unraisable: list = []  # where Python would print "Exception ignored in ..." tracebacks
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    for path, fragment in bad_inputs.unreadable.items():
        listed = scan(Path(path))
        assert listed.unreadable and fragment in listed.unreadable, listed
        assert listed.unreadable.isprintable() and len(listed.unreadable) < 260
    # Arrow could not decode the garbage's malformed records for our handler: that is the
    # one reason above, not also a traceback on stderr
    assert unraisable == []
    (tmp_path / "dup.csv").write_text("a,b,a\n1,2,3\n")
    assert "repeats column(s) ['a']" in scan(tmp_path / "dup.csv").unreadable
    assert "No such file" in scan(tmp_path / "vanished.csv").unreadable
    batches = plan_minibatches([scan(tmp_path / "vanished.csv")], 10)
    assert [(b.rows, b.unreadable is not None) for b in batches] == [(0, True)]
    (piece,) = read_minibatches(batches)
    assert piece.frame is None and piece.error.startswith("unreadable file: ")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_that_vanishes_or_shrinks_after_planning_fails_the_rest_of_its_minibatches(
        tmp_path: Path, reference: pd.DataFrame, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    write = (lambda f, p: f.to_csv(p, index=False)) if suffix == ".csv" else (
        lambda f, p: f.to_parquet(p, row_group_size=50))
    write(reference.iloc[:200], path)
    batches = plan_minibatches([scan(path)], 50)
    write(reference.iloc[:120], path)  # shrinks between planning and reading
    pieces = list(read_minibatches(batches))
    assert [p.error is None for p in pieces] == [True, True, False, False]
    assert "fewer rows than when the job was planned" in pieces[2].error
    path.unlink()  # gone
    pieces = list(read_minibatches(batches))
    assert all(p.frame is None and "could not read" in p.error for p in pieces)
