"""`skserve batch run` on real files, in this process and as real subprocesses."""

from __future__ import annotations

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

from .conftest import BAD_CSV_ROWS

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


def test_failing_and_hanging_predict_are_retried_then_counted_not_fatal(
        mixed_inputs: Path, tmp_path: Path, trained_model: str) -> None:
    """Faults are injected with SKSERVE_BATCH_FAULT (the pool processes read it)."""
    src = mixed_inputs / "a.parquet"
    failing = _run_cli("--input", str(src), "--output", str(tmp_path / "f"), "--model",
                       trained_model, "--mini-batch-size", "1000", "--max-retries", "1",
                       "--max-concurrency-per-instance", "2", "--json",
                       env={"SKSERVE_BATCH_FAULT": "raise"})
    assert failing.returncode == 0, failing.stderr
    result = json.loads(failing.stdout)
    assert result["counts"]["minibatches_failed"] == 3 and result["counts"]["rows_failed"] == 2500
    errors = (tmp_path / "f" / "logs" / "errors.jsonl").read_text().splitlines()
    assert len(errors) == 2500
    assert "injected predict failure" in json.loads(errors[0])["reason"]
    assert "failed after 2 attempt(s)" in (tmp_path / "f" / "logs" / "job_error.txt").read_text()

    start = time.monotonic()
    with pytest.raises(ThresholdExceeded):
        os.environ["SKSERVE_BATCH_FAULT"] = "hang"
        try:
            run_job(RunOptions([str(src)], tmp_path / "h", trained_model, mini_batch_size=1000,
                               timeout=0.3, max_retries=1, error_threshold=0,
                               progress_bar=False))
        finally:
            del os.environ["SKSERVE_BATCH_FAULT"]
    assert time.monotonic() - start < 10  # two 0.3 s attempts, then the job stops
    assert "timeout" in (tmp_path / "h" / "logs" / "job_error.txt").read_text()


def test_sigkill_mid_run_then_rerun_scores_every_row_exactly_once(
        tmp_path: Path, trained_model: str, reference: pd.DataFrame) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    reference.iloc[:3000].to_parquet(inputs / "a.parquet", row_group_size=512)
    reference.iloc[3000:6000].to_csv(inputs / "b.csv", index=False)
    out = tmp_path / "out"
    args = [SKSERVE, "batch", "run", "--no-progress", "--input", str(inputs), "--output",
            str(out), "--model", trained_model, "--mini-batch-size", "100"]
    # each mini-batch sleeps 50 ms so the kill lands mid-run, not after the end
    proc = subprocess.Popen(args, env={**os.environ, "SKSERVE_BATCH_FAULT": "slow:0.05"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parts = out / "state" / "parts"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.exists() and len(list(parts.glob("*.done.json"))) >= 12:
            break
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stderr.close()
    done_before = len(list(parts.glob("*.done.json")))
    assert 12 <= done_before < 60
    assert not (out / "predictions.csv").exists()

    again = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=120,
                           env=os.environ)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["counts"]["minibatches_resumed"] >= done_before
    assert "resuming" in again.stderr
    keys = _keys(out / "predictions.csv")
    assert len(keys) == len(set(keys)) == 6000
    assert set(keys) == _all_keys(inputs)
