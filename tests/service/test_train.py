"""Training: chronological split, model families, baselines, determinism, metadata."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time

import numpy as np
import pandas as pd
import pytest

from skserve import store
from skserve.train import chronological_split, model_metadata, select_model
from tests.conftest import SKSERVE, small_dataset


@pytest.fixture(scope="module")
def dataset():
    return small_dataset()


@pytest.fixture(scope="module")
def selection(dataset):
    return select_model(dataset, seed=3, n_iter=1, holdout_weeks=1, cv_splits=2)


def test_holdout_is_the_latest_weeks(dataset):
    train, holdout = chronological_split(dataset, holdout_weeks=1)
    assert train["timestamp"].max() < holdout["timestamp"].min()
    assert len(holdout) == 7 * 48
    assert len(train) + len(holdout) == len(dataset.frame)


def test_leaderboard_has_three_families_and_two_baselines(selection):
    names = [e.model for e in selection.leaderboard]
    assert set(names) == {"ridge", "random_forest", "hist_gradient_boosting",
                          "baseline_mean", "baseline_profile"}
    rmses = [e.metrics["rmse"] for e in selection.leaderboard]
    assert rmses == sorted(rmses)
    for entry in selection.leaderboard:
        assert entry.metrics["rmse"] > 0 and entry.metrics["mae"] > 0
        assert entry.predict_us_per_row > 0
        assert (entry.metrics["cv_rmse"] is None) == entry.baseline


def test_winner_is_the_best_model_and_beats_both_baselines(selection):
    models = [e for e in selection.leaderboard if not e.baseline]
    assert selection.winner is min(models, key=lambda e: e.metrics["rmse"])
    for base in (e for e in selection.leaderboard if e.baseline):
        assert selection.winner.metrics["rmse"] < base.metrics["rmse"]


def test_same_seed_same_model(dataset, selection):
    again = select_model(dataset, seed=3, n_iter=1, holdout_weeks=1, cv_splits=2)
    assert again.winner.params == selection.winner.params
    X = dataset.frame[selection.schema.names].iloc[:200]
    np.testing.assert_array_equal(again.pipeline.predict(X), selection.pipeline.predict(X))


def test_metadata_carries_schema_metrics_lineage_and_versions(dataset, selection):
    meta = model_metadata(selection, dataset, seed=3)
    assert meta["schema"]["target"] == "Demand"
    assert meta["dataset"]["sha256"] == dataset.sha256 and len(dataset.sha256) == 64
    assert meta["metrics"]["rmse"] == selection.winner.metrics["rmse"]
    assert meta["task"] == "regression" and "classes" not in meta and meta["has_proba"] is False
    assert set(meta["metrics"]) == {"rmse", "mae", "r2", "mape", "cv_rmse"}
    assert {"scikit-learn", "pandas", "bentoml", "python"} <= set(meta["packages"])
    assert meta["params"] == selection.winner.params
    json.dumps(meta)  # storable as-is


def test_a_model_that_cannot_beat_the_baselines_is_refused(dataset):
    noisy = dataset.frame.copy()
    noisy["Demand"] = np.random.default_rng(0).normal(size=len(noisy))
    from dataclasses import replace

    with pytest.raises(RuntimeError, match="does not beat"):
        select_model(replace(dataset, frame=noisy), seed=1, n_iter=1, holdout_weeks=1,
                     cv_splits=2)


def test_cli_trains_on_a_user_csv(tmp_path, dataset):
    """`skserve train --data` on a file with a category column and missing values."""
    frame = dataset.frame.copy()
    frame["site"] = np.where(frame.index % 3 == 0, "north", "south")
    frame.loc[frame.index % 17 == 0, "Temperature"] = np.nan
    path = tmp_path / "load.csv"
    frame.rename(columns={"timestamp": "when", "Demand": "load"}).to_csv(path, index=False)
    board = tmp_path / "board.json"
    out = subprocess.run(
        [SKSERVE, "train", "--data", str(path), "--target", "load", "--time-column", "when",
         "--name", "userload", "--version", "v1", "--n-iter", "1", "--holdout-weeks", "1",
         "--leaderboard", str(board), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout)["model"] == "userload:v1"
    assert "leaderboard" in out.stderr and "baseline_profile" in out.stderr
    # stderr is a pipe, not a terminal: one plain progress line per step, with elapsed time
    steps = re.findall(r"^search (\d+)/(\d+) at (\d+\.\d) s: (\S+)", out.stderr, re.M)
    assert [int(n) for n, *_ in steps] == list(range(1, len(steps) + 1))
    assert {int(total) for _, total, *_ in steps} == {len(steps)} and len(steps) >= 4
    seconds = [float(t) for _, _, t, _ in steps]
    assert seconds == sorted(seconds) and seconds[-1] > 0
    assert steps[0][3] == "ridge" and steps[-1][3] == "refit"
    assert re.search(rf"^search done: {len(steps)} steps in \d+\.\d s$", out.stderr, re.M)
    assert "\x1b[" not in out.stderr  # no live display: it needs cursor control
    info = store.get_info("userload:v1")
    site = info.schema.feature("site")
    assert site.dtype == "category" and site.categories == ["north", "south"]
    assert info.schema.feature("Temperature").nullable
    assert json.loads(board.read_text())["model"] == "userload:v1"
    pipeline, _ = store.load("userload:v1")
    sample = frame.rename(columns={"timestamp": "when"}).drop(columns=["Demand"]).iloc[:3]
    sample["when"] = pd.to_datetime(sample["when"])
    assert pipeline.predict(sample).shape == (3,)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "missing.csv", "--target", "y"], "not found"),
        (["--target", "y"], "--target needs --data"),
    ],
)
def test_cli_train_errors_are_clear(tmp_path, args, message):
    out = subprocess.run([SKSERVE, "train", *args], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert out.returncode != 0 and message in out.stderr


def test_cli_names_a_wrong_target_column(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_csv(path, index=False)
    out = subprocess.run([SKSERVE, "train", "--data", str(path), "--target", "price"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "'price'" in out.stderr


def _progress_output(stream_is_tty: bool) -> str:
    """What `search_progress` writes for three steps, to a pseudo-terminal or to a pipe."""
    from skserve.cli import search_progress

    read_fd, write_fd = os.openpty() if stream_is_tty else os.pipe()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(read_fd, 4096)
            except OSError:  # the pty's other end closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    with open(write_fd, "w", encoding="utf-8", closefd=True) as stream:
        assert stream.isatty() is stream_is_tty
        with search_progress(3, stream) as step:
            for label in ("ridge {'alpha': 1.0}", "random_forest {}", "refit ridge"):
                step(label)
                time.sleep(0.3)  # a few refreshes of the bar (10 per second)
    reader.join(10)
    os.close(read_fd)
    return b"".join(chunks).decode(errors="replace")


def test_training_progress_is_a_bar_on_a_terminal(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    out = _progress_output(stream_is_tty=True)
    assert "\x1b[2K" in out and "━" in out  # a live bar, its line erased and redrawn
    assert "random_forest" in out and "search 1/3" not in out


def test_training_progress_is_plain_lines_elsewhere():
    out = _progress_output(stream_is_tty=False)
    lines = out.splitlines()
    assert [line.split(" at ")[0] for line in lines[:3]] == [
        "search 1/3", "search 2/3", "search 3/3"]
    assert lines[1].endswith("s: random_forest {}")
    assert re.fullmatch(r"search done: 3 steps in \d+\.\d s", lines[3])
    assert "\x1b[" not in out
