"""`skserve batch run` on real files, in this process and as real subprocesses."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skserve.batch.output import sha256_file
from skserve.batch.run import RunOptions, ThresholdExceeded, run_job

from .conftest import BAD_CSV_ROWS, BadInputs

SKSERVE = str(Path(sys.executable).with_name("skserve"))


def _run_cli(*args: str, env: dict | None = None, timeout: float = 120
             ) -> subprocess.CompletedProcess:
    return subprocess.run([SKSERVE, "batch", "run", "--no-progress", *args],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def _keys(path: Path) -> list[tuple[str, int]]:
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    return list(zip(frame["file"].astype(str), frame["row"].astype(int), strict=True))


def _all_keys(folder: Path) -> set[tuple[str, int]]:
    keys = set()
    for f in sorted(folder.iterdir()):
        n = len(pd.read_parquet(f)) if f.suffix == ".parquet" else len(pd.read_csv(f))
        keys.update((str(f), i) for i in range(n))
    return keys


def test_append_row_scores_good_rows_once_and_reports_bad_ones(
        mixed_inputs: Path, tmp_path: Path, trained_model: str, reference: pd.DataFrame) -> None:
    from skserve import store

    out = tmp_path / "out"
    result = run_job(RunOptions([str(mixed_inputs)], out, trained_model, mini_batch_size=600,
                                progress_bar=False))
    assert result["status"] == "succeeded"
    c = result["counts"]
    assert (c["rows_total"], c["rows_scored"], c["rows_bad"]) == (4000, 3996, 4)
    assert c["minibatches_total"] == 5 + 3  # 2500 rows / 600, then 1500 / 600

    frame = pd.read_csv(out / "predictions.csv")
    keys = list(zip(frame["file"], frame["row"], strict=True))
    expected = _all_keys(mixed_inputs) - {(str(mixed_inputs / "b.csv"), r) for r in BAD_CSV_ROWS}
    assert len(keys) == len(set(keys)) and set(keys) == expected
    assert result["output_sha256"] == sha256_file(out / "predictions.csv")

    # the same numbers as the pipeline on the same rows, in one call
    pipeline, _ = store.load(trained_model)
    parquet_rows = frame[frame["file"].str.endswith("a.parquet")].sort_values("row")
    direct = pipeline.predict(reference.iloc[:2500][["timestamp", "WorkDay", "Temperature"]])
    np.testing.assert_allclose(parquet_rows["prediction"].to_numpy(), direct, rtol=1e-9)

    errors = [json.loads(line) for line in (out / "logs" / "errors.jsonl").read_text().splitlines()]
    assert {e["row"]: e["reason"].split(":")[0] for e in errors} == BAD_CSV_ROWS
    assert all(e["file"].endswith("b.csv") and e["values"] for e in errors)
    assert "4 bad row(s)" in (out / "logs" / "job_error.txt").read_text()
    assert "8/8 done" in (out / "logs" / "job_progress.txt").read_text()
    on_disk = json.loads((out / "logs" / "job_result.json").read_text())
    assert on_disk["model"] == trained_model and on_disk["durations_s"]["total"] > 0


def test_past_the_error_threshold_the_cli_fails_with_exit_3(
        mixed_inputs: Path, tmp_path: Path, trained_model: str) -> None:
    out = tmp_path / "out"
    args = ["--input", str(mixed_inputs / "b.csv"), "--output", str(out), "--model",
            trained_model, "--mini-batch-size", "500", "--json"]
    failed = _run_cli(*args, "--error-threshold", "3")
    assert failed.returncode == 3, failed.stderr
    assert "4 rows failed, more than --error-threshold 3" in failed.stderr
    assert f"see {out / 'logs' / 'job_error.txt'} and {out / 'logs' / 'errors.jsonl'}" \
        in failed.stderr
    assert json.loads(failed.stdout)["status"] == "failed"
    assert not (out / "predictions.csv").exists()
    # at the threshold it passes, resuming the mini-batches the failed run finished
    ok = _run_cli(*args, "--error-threshold", "4")
    assert ok.returncode == 0, ok.stderr
    result = json.loads(ok.stdout)
    assert result["counts"]["rows_scored"] == 1496
    assert result["counts"]["minibatches_resumed"] >= 1


def test_parquet_output_keyed_by_an_id_column_and_summary_only(
        tmp_path: Path, trained_model: str, reference: pd.DataFrame) -> None:
    src = tmp_path / "in.csv"
    frame = reference.iloc[:900].assign(id=[f"k{i:04d}" for i in range(900)])
    frame.to_csv(src, index=False)
    out = tmp_path / "out"
    run_job(RunOptions([str(src)], out, trained_model, mini_batch_size=250, id_column="id",
                       output_file_name="scores.parquet", progress_bar=False))
    scores = pd.read_parquet(out / "scores.parquet")
    assert list(scores.columns) == ["id", "prediction"]
    assert scores["id"].tolist() == frame["id"].tolist()

    summary = run_job(RunOptions([str(src)], tmp_path / "sum", trained_model,
                                 mini_batch_size=250, output_action="summary_only", id_column="id",
                                 progress_bar=False))
    assert summary["output_file"] is None
    assert not list((tmp_path / "sum").glob("*.csv"))
    stats = summary["summary"][str(src)]
    assert stats["scored"] == 900
    assert stats["mean"] == pytest.approx(scores["prediction"].mean())
    assert stats["min"] == pytest.approx(scores["prediction"].min())


def test_shards_do_not_overlap_and_the_last_one_merges(
        mixed_inputs: Path, tmp_path: Path, trained_model: str) -> None:
    out = tmp_path / "out"
    results = [run_job(RunOptions([str(mixed_inputs)], out, trained_model, mini_batch_size=300,
                                  instance_count=3, instance_index=i, progress_bar=False))
               for i in (2, 0, 1)]
    assert [r.get("merged") for r in results] == [False, False, True]
    shard_keys = [set(_keys(Path(r["output_file"]))) for r in results]
    assert not (shard_keys[0] & shard_keys[1] or shard_keys[1] & shard_keys[2]
                or shard_keys[0] & shard_keys[2])
    merged = _keys(out / "predictions.csv")
    assert len(merged) == len(set(merged)) == 3996
    assert set(merged) == set().union(*shard_keys)
    assert merged == sorted(merged, key=lambda k: (k[0], k[1]))  # shard order = input order
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["rows_scored"] == 3996 and len(manifest["shards"]) == 3
    assert manifest["output_sha256"] == sha256_file(out / "predictions.csv")


def test_a_changed_job_does_not_reuse_an_output_folder(
        mixed_inputs: Path, tmp_path: Path, trained_model: str) -> None:
    out = tmp_path / "out"
    run_job(RunOptions([str(mixed_inputs / "a.parquet")], out, trained_model,
                       mini_batch_size=1000, progress_bar=False))
    with pytest.raises(ValueError, match="holds a different job"):
        run_job(RunOptions([str(mixed_inputs / "a.parquet")], out, trained_model,
                           mini_batch_size=999, progress_bar=False))


def test_a_failing_model_fails_its_minibatches_after_retries_and_the_job_goes_on(
        tmp_path: Path, failing_model: str, reference: pd.DataFrame) -> None:
    """A real model that raises on non-workday rows: exactly the mini-batches holding one
    fail, each after 1 + --max-retries attempts; the others are scored (pool processes)."""
    frame = reference.iloc[:48 * 10]
    src = tmp_path / "ten-days.parquet"
    frame.to_parquet(src)
    run = _run_cli("--input", str(src), "--output", str(tmp_path / "out"), "--model",
                   failing_model, "--mini-batch-size", "48", "--max-retries", "1",
                   "--max-concurrency-per-instance", "2", "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    holidays = {d for d in range(10) if (frame["WorkDay"].iloc[d * 48:(d + 1) * 48] == 0).any()}
    assert 0 < len(holidays) < 10  # the data has both kinds of day
    c = result["counts"]
    assert (c["minibatches_failed"], c["rows_failed"]) == (len(holidays), 48 * len(holidays))
    assert c["rows_scored"] == 48 * (10 - len(holidays))
    parts = tmp_path / "out" / "state" / "parts"
    for day in range(10):
        record = json.loads((parts / f"{day:08d}.done.json").read_text())
        assert (record["error"] is not None) is (day in holidays), record
        assert record["attempts"] == (2 if day in holidays else 1)
    errors = [json.loads(line) for line in
              (tmp_path / "out" / "logs" / "errors.jsonl").read_text().splitlines()]
    assert {e["row"] // 48 for e in errors} == holidays and len(errors) == c["rows_failed"]
    assert all("unknown categories" in e["reason"] for e in errors)
    assert "failed after 2 attempt(s)" in (tmp_path / "out" / "logs" / "job_error.txt"
                                           ).read_text()
    scored = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert set(scored["row"] // 48) == set(range(10)) - holidays


def test_a_minibatch_slower_than_the_timeout_is_cut_off_retried_then_counted(
        tmp_path: Path, slow_model: str, reference: pd.DataFrame) -> None:
    """A real forest slower than --timeout, in pool processes: each attempt is cut off at
    the timeout (far sooner than the model would finish), retried once, counted; with
    --error-threshold 0 the job stops with exit 3. The timeout is a twentieth of the fastest
    of three warm predicts measured here, so the test holds on a slow machine as on a fast
    one."""
    from skserve import store

    frame = reference.iloc[:4000]
    src = tmp_path / "in.parquet"
    frame.to_parquet(src)
    pipeline, info = store.load(slow_model)

    def predict_seconds() -> float:
        start = time.perf_counter()
        pipeline.predict(frame.iloc[:2000][info.schema.names])
        return time.perf_counter() - start

    before = [predict_seconds() for _ in range(3)]
    run = _run_cli("--input", str(src), "--output", str(tmp_path / "out"), "--model",
                   slow_model, "--mini-batch-size", "2000", "--max-retries", "1",
                   "--timeout", f"{min(before) / 20:.4f}", "--error-threshold", "0",
                   "--max-concurrency-per-instance", "2", "--json")
    full = max([*before, predict_seconds()])  # the slowest whole predict seen around it
    assert run.returncode == 3, run.stderr
    assert "rows failed, more than --error-threshold 0" in run.stderr
    assert json.loads(run.stdout)["status"] == "failed"
    records = [json.loads(p.read_text()) for p in
               (tmp_path / "out" / "state" / "parts").glob("*.done.json")]
    assert records and all(r["error"].startswith("timeout") for r in records)
    # two attempts, each cut at a twentieth of a predict: well under one whole predict
    assert all(r["attempts"] == 2 and r["seconds"] < full for r in records), (records, full)
    assert "timeout" in (tmp_path / "out" / "logs" / "job_error.txt").read_text()


def test_sigkill_mid_run_then_rerun_scores_every_row_exactly_once(
        tmp_path: Path, slow_model: str, bad_inputs: BadInputs) -> None:
    """The whole process group (job and pool processes) killed as a pod would be, with bad
    input among the files; the rerun resumes, and every good row is scored once and every
    bad row or unreadable file reported once."""
    out = tmp_path / "out"
    args = [SKSERVE, "batch", "run", "--no-progress", "--input", str(bad_inputs.folder),
            "--output", str(out), "--model", slow_model, "--mini-batch-size", "20",
            "--max-concurrency-per-instance", "2"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    parts = out / "state" / "parts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.exists() and len(list(parts.glob("*.done.json"))) >= 8:
            break
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stderr.close()
    done_before = len(list(parts.glob("*.done.json")))
    total = 300 // 20 + 500 // 20 + 1 + 2 + 3  # good, malformed, bad pages, unreadable
    assert 8 <= done_before < total
    assert not (out / "predictions.csv").exists()

    # concurrency is not part of the plan: the rerun resumes in one process
    rerun = [*args[:-1], "1", "--json"]
    again = subprocess.run(rerun, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr and "Exception ignored" not in again.stderr
    result = json.loads(again.stdout)
    assert result["counts"]["minibatches_resumed"] >= done_before
    assert result["counts"]["minibatches_total"] == total
    _assert_exactly_once(out, bad_inputs, result["counts"])


def _assert_exactly_once(out: Path, bad: BadInputs, counts: dict) -> None:
    """Every good row scored once, every bad row and unreadable file reported once."""
    keys = _keys(out / "predictions.csv")
    assert len(keys) == len(set(keys)) and set(keys) == bad.good
    errors = [json.loads(line) for line in (out / "logs" / "errors.jsonl").read_text()
              .splitlines()]
    rows = [(e["file"], e["row"]) for e in errors if e["row"] is not None]
    assert len(rows) == len(set(rows)) and set(rows) == set(bad.bad)
    for e in errors:
        if e["row"] is None:
            assert bad.unreadable[e["file"]] in e["reason"], e
        else:
            assert bad.bad[(e["file"], e["row"])] in e["reason"], e
            csv = e["file"].endswith(".csv")  # records, the header as line 1
            assert e["line"] == (e["row"] + 2 if csv else None), e
    unreadable = sorted(e["file"] for e in errors if e["row"] is None)
    assert unreadable == sorted(bad.unreadable)
    assert counts["files_unreadable"] == len(bad.unreadable)
    assert counts["rows_failed"] == len(bad.bad) + len(bad.unreadable)
    assert counts["minibatches_failed"] >= 1 + len(bad.unreadable)  # the bad data pages
    assert counts["rows_scored"] == len(bad.good)


def test_every_kind_of_bad_input_counts_once_across_shards_and_processes(
        tmp_path: Path, trained_model: str, bad_inputs: BadInputs) -> None:
    """Three shards (one with two scoring processes) over good files, empty ones, malformed
    records and unreadable files: the merge holds every good row once, errors.jsonl every
    bad row and unreadable file once, and error_threshold counts each of them."""
    failures = len(bad_inputs.bad) + len(bad_inputs.unreadable)
    out = tmp_path / "out"

    def run(index: int, threshold: int) -> dict:
        return run_job(RunOptions([str(bad_inputs.folder)], out, trained_model,
                                  mini_batch_size=64, instance_count=3, instance_index=index,
                                  max_concurrency_per_instance=2 if index == 1 else 1,
                                  error_threshold=threshold, progress_bar=False))

    results = {}
    for index in (0, 1, 2):
        try:
            results[index] = run(index, failures - 1)
        except ThresholdExceeded as exc:
            assert "unreadable file(s) counts as one" in str(exc) or "rows failed" in str(exc)
    assert len(results) < 3  # some shard saw too many failures for the threshold
    for index in (0, 1, 2):  # rerun at the threshold: resumes, all succeed, the last merges
        results[index] = run(index, failures)
    assert results[2]["merged"]
    manifest = json.loads((out / "manifest.json").read_text())
    _assert_exactly_once(out, bad_inputs, manifest["counts"])
    merged = subprocess.run([SKSERVE, "batch", "merge", str(out), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert merged.returncode == 0, merged.stderr
    assert json.loads(merged.stdout)["output_sha256"] == sha256_file(out / "predictions.csv")


@pytest.mark.parametrize("name", ["predictions.csv", "scores.parquet"])
def test_outputs_have_their_columns_even_with_no_rows_and_merge_from_any_mix(
        tmp_path: Path, trained_model: str, reference: pd.DataFrame, name: str) -> None:
    """Issue 9: a header-only CSV scored to a 0-byte file; 50 rows over 2 instances left an
    empty shard with no Parquet schema, and the merge failed."""
    header_only = tmp_path / "header.csv"
    reference.iloc[:0].to_csv(header_only, index=False)
    empty = run_job(RunOptions([str(header_only)], tmp_path / "empty", trained_model,
                               output_file_name=name, progress_bar=False))
    fifty = tmp_path / "fifty.csv"
    reference.iloc[:50].to_csv(fifty, index=False)
    for index in (0, 1):
        run_job(RunOptions([str(fifty)], tmp_path / "sharded", trained_model,
                           output_file_name=name, instance_count=2, instance_index=index,
                           id_column=None, progress_bar=False))
    cli = subprocess.run([SKSERVE, "batch", "merge", str(tmp_path / "sharded")],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr

    read = pd.read_parquet if name.endswith(".parquet") else pd.read_csv
    expected = ["file", "row", "prediction"]
    nothing = read(empty["output_file"])
    assert list(nothing.columns) == expected and len(nothing) == 0
    shards = [read(p / name) for p in sorted((tmp_path / "sharded").glob("shard-*"))]
    assert [len(s) for s in shards] == [0, 50]
    assert all(list(s.columns) == expected for s in shards)
    merged = read(tmp_path / "sharded" / name)
    assert list(merged.columns) == expected and merged["row"].tolist() == list(range(50))
    assert (tmp_path / "empty" / "logs" / "errors.jsonl").read_text() == ""


@pytest.mark.parametrize("progress_bar", [None, False], ids=["default", "no-progress"])
def test_off_a_terminal_progress_is_a_line_on_stderr_unless_turned_off(
        tmp_path: Path, trained_model: str, reference: pd.DataFrame,
        monkeypatch: pytest.MonkeyPatch, progress_bar: bool | None) -> None:
    """Off a terminal (a log, a pipe, a Job's pod) the job_progress line goes to stderr every
    log_progress_interval seconds (here 0: after every mini-batch); the run used to be silent
    there until it ended. --no-progress (progress_bar=False) shows none."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal, whatever runs pytest
    data = tmp_path / "in.csv"
    reference.iloc[:500].to_csv(data, index=False)
    said: list[str] = []
    run_job(RunOptions([str(data)], tmp_path / "out", trained_model, mini_batch_size=100,
                       progress_bar=progress_bar, log_progress_interval=0), say=said.append)
    progress = [line.split(";")[0] for line in said if line.startswith("progress: ")]
    expected = [f"progress: mini-batches {i}/5 done, 0 failed" for i in range(1, 6)]
    assert progress == (expected if progress_bar is None else [])
    assert sys.stderr.getvalue() == ""  # no bar either


def test_every_file_a_job_writes_follows_the_umask(
        tmp_path: Path, trained_model: str, mixed_inputs: Path) -> None:
    """Issue 9: outputs were 0600 (tempfile.mkstemp's mode survived the rename)."""
    out = tmp_path / "out"
    old = os.umask(0o027)
    try:
        for index in (0, 1):
            run_job(RunOptions([str(mixed_inputs)], out, trained_model, mini_batch_size=700,
                               instance_count=2, instance_index=index,
                               output_file_name="scores.parquet", progress_bar=False))
    finally:
        os.umask(old)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"scores.parquet", "manifest.json", "errors.jsonl",
                                       "job_result.json", "job_progress.txt", "plan.json",
                                       "job_error.txt"}
    assert {p.stat().st_mode & 0o777 for p in files} == {0o640}
    assert {p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_dir()} == {0o750}


def test_the_issue_cases_from_the_command_line(tmp_path: Path, trained_model: str,
                                              reference: pd.DataFrame) -> None:
    """Issue 9's first two cases: a 0-byte CSV among good ones, and, from the command line,
    a line with one field too many under --error-threshold -1 (which could never finish)."""
    folder = tmp_path / "in"
    folder.mkdir()
    reference.iloc[:30].to_csv(folder / "a.csv", index=False)
    (folder / "b.csv").write_bytes(b"")
    reference.iloc[30:60].to_csv(folder / "c.csv", index=False)
    result = run_job(RunOptions([str(folder)], tmp_path / "o1", trained_model,
                                progress_bar=False))
    assert (result["counts"]["rows_scored"], result["counts"]["rows_failed"]) == (60, 0)

    bad = tmp_path / "three.csv"
    lines = reference.iloc[:3].to_csv(index=False).splitlines()
    lines[2] += ",5"
    bad.write_text("\n".join(lines) + "\n")
    for attempt in (1, 2):  # the rerun resumes and finishes as well
        run = _run_cli("--input", str(bad), "--output", str(tmp_path / "o2"), "--model",
                       trained_model, "--error-threshold", "-1", "--json")
        assert run.returncode == 0, (attempt, run.stderr)
        result = json.loads(run.stdout)
        assert (result["counts"]["rows_scored"], result["counts"]["rows_bad"]) == (2, 1)
    (error,) = [json.loads(line) for line in
                (tmp_path / "o2" / "logs" / "errors.jsonl").read_text().splitlines()]
    assert (error["file"], error["row"], error["line"]) == (str(bad), 1, 3)
    assert "expected 4 fields, saw 5" in error["reason"]
    assert "1 bad row(s)" in (tmp_path / "o2" / "logs" / "job_error.txt").read_text()
