"""`skserve batch run` with classifiers (tests/classifiers.py): the label in its own type and
one probability column per class, CSV and Parquet, zero rows, shards and merge, resume."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skserve import store
from skserve.batch.run import RunOptions, output_schema, run_job
from skserve.errors import InvalidInput
from skserve.outputs import Task, proba_column
from skserve.schema import rows_to_frame
from tests.classifiers import TARGET, import_no_proba, import_pclass, titanic_frame, train_titanic
from tests.conftest import SKSERVE


@pytest.fixture(scope="module")
def passengers(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """400 passengers as CSV (the label column left in, as a scored file often has it) and
    the same rows as Parquet."""
    folder = tmp_path_factory.mktemp("passengers")
    frame = titanic_frame().iloc[:400].reset_index(drop=True)
    frame.iloc[:250].to_csv(folder / "a.csv", index=False)
    frame.iloc[250:].to_parquet(folder / "b.parquet", row_group_size=60)
    return folder, frame


def in_process(tag: str, frame: pd.DataFrame) -> tuple[list, np.ndarray | None]:
    pipeline, info = store.load(tag)
    features = frame[info.schema.names]
    rows = [{k: (None if pd.isna(v) else v) for k, v in r.items()}
            for r in features.to_dict("records")]
    x = rows_to_frame(info.schema, rows)
    proba = pipeline.predict_proba(x) if hasattr(pipeline, "predict_proba") else None
    return pipeline.predict(x).tolist(), proba


@pytest.fixture(scope="module")
def trained_classifier() -> str:
    return train_titanic()


@pytest.mark.parametrize("name", ["scores.csv", "scores.parquet"])
@pytest.mark.parametrize("origin", ["imported", "trained"])
def test_label_and_one_probability_column_per_class(request, tmp_path, passengers, name,
                                                   origin):
    """An imported and a trained classifier (tests/classifiers.py)."""
    classifier_model = request.getfixturevalue(
        "classifier_model" if origin == "imported" else "trained_classifier")
    folder, frame = passengers
    result = run_job(RunOptions([str(folder)], tmp_path / "out", classifier_model,
                                mini_batch_size=64, output_file_name=name, progress_bar=False))
    assert result["status"] == "succeeded" and result["counts"]["rows_scored"] == 400
    assert result["task"] == {"kind": "classification", "classes": ["died", "survived"],
                              "has_proba": True}
    read = pd.read_parquet if name.endswith(".parquet") else pd.read_csv
    scored = read(result["output_file"])
    assert list(scored.columns) == ["file", "row", "label", "proba_died", "proba_survived"]
    labels, proba = in_process(classifier_model, frame)
    assert scored["label"].tolist() == labels
    assert np.allclose(scored[["proba_died", "proba_survived"]].to_numpy(), proba, atol=1e-12)
    summary = result["summary"]
    counts = {k: sum(s["classes"].get(k, 0) for s in summary.values())
              for k in ("died", "survived")}
    assert counts == {k: labels.count(k) for k in ("died", "survived")}
    assert "mean" not in next(iter(summary.values()))


def test_integer_labels_stay_integers_and_booleans_booleans(tmp_path, passengers):
    """Parquet keeps the label's type: int64 for 1/2/3 (columns proba_1..3), bool for a
    classifier of true/false without predict_proba (no probability columns)."""
    _, frame = passengers
    pclass, survival = import_pclass(), import_no_proba()
    as_int = frame.assign(pclass=frame["pclass"].str[0].astype("int64"))  # pclass's target
    as_bool = frame.assign(**{TARGET: frame[TARGET] == "survived"})  # survival's target
    for tag, typed, kind, columns in (
            (pclass, as_int, pa.int64(), ["proba_1", "proba_2", "proba_3"]),
            (survival, as_bool, pa.bool_(), [])):
        source = tmp_path / f"{tag.split(':')[0]}.parquet"
        typed.to_parquet(source)
        out = run_job(RunOptions([str(source)], tmp_path / tag.replace(":", "-"), tag,
                                 output_file_name="p.parquet", progress_bar=False))
        assert out["counts"]["rows_scored"] == len(typed)
        table = pq.read_table(out["output_file"])
        assert table.schema.field("label").type == kind
        assert table.schema.names == ["file", "row", "label", *columns]
        labels, _ = in_process(tag, typed)
        assert table.column("label").to_pylist() == labels


@pytest.mark.parametrize("name", ["scores.csv", "scores.parquet"])
def test_zero_rows_and_shards_keep_the_classifier_columns(tmp_path, classifier_model,
                                                         passengers, name):
    """A header-only input writes the columns; two shards of 30 rows (one empty) merge by
    `skserve batch merge` with the columns from job_result.json (no model needed)."""
    _, frame = passengers
    header = tmp_path / "header.csv"
    frame.iloc[:0].to_csv(header, index=False)
    empty = run_job(RunOptions([str(header)], tmp_path / "empty", classifier_model,
                               output_file_name=name, progress_bar=False))
    read = pd.read_parquet if name.endswith(".parquet") else pd.read_csv
    columns = ["file", "row", "label", "proba_died", "proba_survived"]
    assert list(read(empty["output_file"]).columns) == columns
    thirty = tmp_path / "thirty.csv"
    frame.iloc[:30].to_csv(thirty, index=False)
    for index in (0, 1):
        run_job(RunOptions([str(thirty)], tmp_path / "sharded", classifier_model,
                           output_file_name=name, instance_count=2, instance_index=index,
                           merge=False, progress_bar=False))
    cli = subprocess.run([SKSERVE, "batch", "merge", str(tmp_path / "sharded")],
                         capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "BENTOML_HOME": str(tmp_path / "none")})
    assert cli.returncode == 0, cli.stderr
    merged = read(tmp_path / "sharded" / name)
    assert list(merged.columns) == columns and merged["row"].tolist() == list(range(30))


def test_probability_columns_survive_any_label():
    """`proba_` + the key percent-encoded: distinct, plain, reversible; an id column that
    takes a prediction column's name is refused."""
    labels = ["no show", "a,b", 'say "hi"', "é", "proba_x", "50%", "x/y"]
    names = [proba_column(k) for k in labels]
    assert len(set(names)) == len(names)
    assert all(n.startswith("proba_") and n.isascii() and "," not in n and '"' not in n
               and " " not in n for n in names)
    assert [unquote(n.removeprefix("proba_")) for n in names] == labels
    task = Task("classification", tuple(labels), True)
    assert output_schema(None, task).names[3:] == names
    with pytest.raises(InvalidInput, match="--id-column 'label'"):
        output_schema("label", task)
