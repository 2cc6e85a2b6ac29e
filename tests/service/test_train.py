"""Training: chronological split, model families, baselines, determinism, metadata."""

from __future__ import annotations

import json
import subprocess

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
    rmses = [e.rmse for e in selection.leaderboard]
    assert rmses == sorted(rmses)
    for entry in selection.leaderboard:
        assert entry.rmse > 0 and entry.mae > 0 and entry.predict_us_per_row > 0
        assert (entry.cv_rmse is None) == entry.baseline


def test_winner_is_the_best_model_and_beats_both_baselines(selection):
    models = [e for e in selection.leaderboard if not e.baseline]
    assert selection.winner is min(models, key=lambda e: e.rmse)
    for base in (e for e in selection.leaderboard if e.baseline):
        assert selection.winner.rmse < base.rmse


def test_same_seed_same_model(dataset, selection):
    again = select_model(dataset, seed=3, n_iter=1, holdout_weeks=1, cv_splits=2)
    assert again.winner.params == selection.winner.params
    X = dataset.frame[selection.schema.names].iloc[:200]
    np.testing.assert_array_equal(again.pipeline.predict(X), selection.pipeline.predict(X))


def test_metadata_carries_schema_metrics_lineage_and_versions(dataset, selection):
    meta = model_metadata(selection, dataset, seed=3)
    assert meta["schema"]["target"] == "Demand"
    assert meta["dataset"]["sha256"] == dataset.sha256 and len(dataset.sha256) == 64
    assert meta["metrics"]["rmse"] == selection.winner.rmse
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
