"""Bring an existing scikit-learn model into the model store (`skserve import`).

Formats, each read with its own library: skops files (loaded through skops' trusted-type
audit), joblib and pickle files (only when the user trusts them: unpickling runs code), and
MLflow model folders with the `sklearn` flavor (their `MLmodel` read with MLflow's API; the
model file inside is then one of the above and gets the same checks).

The schema comes from, in order: the MLflow signature, a sample of real rows (`--sample`),
the estimator's `feature_names_in_`. Before anything is stored the model must predict on the
rows the service would build from that schema (the sample's, the MLflow input example, or a
row built from the schema), so a model that cannot serve is refused here, not at serving
time. The metadata written is the one `skserve train` writes, plus `source` and
`input_example` (docs/models.md).
"""

from __future__ import annotations

import hashlib
import math
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .data import read_table
from .errors import InputNotFound, InvalidInput, Unavailable
from .extras import require
from .outputs import model_input
from .schema import Feature, FeatureSchema, infer_features, rows_to_frame
from .train import (
    TASKS,
    aligned_proba,
    objective,
    package_versions,
    without_nones,
)

SKOPS_SUFFIXES = (".skops",)
JOBLIB_SUFFIXES = (".joblib", ".jbl")
PICKLE_SUFFIXES = (".pkl", ".pickle")
DEFAULT_TARGET = "prediction"
# MLflow column types → skserve dtypes. Booleans become 0/1 integers, as in training.
MLFLOW_DTYPES = {"double": "float", "float": "float", "long": "int", "integer": "int",
                 "boolean": "int", "string": "category", "datetime": "datetime"}


@dataclass(frozen=True)
class Loaded:
    """A model file read and trusted: the estimator and where it came from."""

    estimator: Any
    format: str  # skops | joblib | pickle | mlflow
    path: Path
    sha256: str
    sklearn_version: str | None
    mlflow: MlflowModel | None = None


@dataclass(frozen=True)
class MlflowModel:
    """What an MLflow model folder says about its sklearn model."""

    serialization_format: str
    features: list[Feature] | None  # from a column-based signature
    target: str | None  # the signature's output column name, if it has one
    input_example: dict[str, Any] | None
    created: str | None
    mlflow_version: str | None
    sklearn_version: str | None  # the flavor's record of the version that saved it
    trusted_types: list[str] = field(default_factory=list)  # the MLmodel's own list


@dataclass(frozen=True)
class Imported:
    """A model ready for the store: the estimator, its metadata and labels."""

    estimator: Any
    metadata: dict[str, Any]
    labels: dict[str, str]
    notes: list[str]


def sha256_of(path: Path) -> str:
    """A file's sha256; for a folder, the sha256 of "relative path, NUL, file sha256, newline"
    over its files in sorted path order (so any changed, added or removed file changes it)."""
    if path.is_file():
        return _file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{_file_sha256(file)}\n".encode())
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def detect_format(path: Path) -> str:
    """skops | joblib | pickle | mlflow, from the path; refuses anything else."""
    if path.is_dir():
        if (path / "MLmodel").is_file():
            return "mlflow"
        raise InvalidInput(f"{path}: a folder without an MLmodel file (skserve imports MLflow "
                           "model folders, .skops, .joblib and .pkl files)")
    suffix = path.suffix.lower()
    for fmt, suffixes in (("skops", SKOPS_SUFFIXES), ("joblib", JOBLIB_SUFFIXES),
                          ("pickle", PICKLE_SUFFIXES)):
        if suffix in suffixes:
            return fmt
    raise InvalidInput(f"{path}: unknown model format {suffix!r} (skserve imports .skops, "
                       ".joblib, .pkl files and MLflow model folders)")


def load_model(path: Path, *, trust: list[str], trust_pickle: bool,
               warn: Callable[[str], None]) -> Loaded:
    """Read a model file or MLflow folder with the format's own library.

    skops: refuses types skops does not trust by default unless each is named in `trust`.
    joblib/pickle (also inside an MLflow folder): refused unless `trust_pickle`, and then a
    warning that unpickling runs the file's code. A different scikit-learn version is a
    warning naming both; a file that cannot be loaded at all is InvalidInput."""
    if not path.exists():
        raise InputNotFound(f"model not found: {path}")
    fmt = detect_format(path)
    mlflow_model = None
    model_file, file_format = path, fmt
    if fmt == "mlflow":
        model_file, mlflow_model = read_mlflow(path)
        # a cloudpickle file is a pickle that names cloudpickle's functions: pickle reads it
        file_format = {"cloudpickle": "pickle"}.get(mlflow_model.serialization_format,
                                                    mlflow_model.serialization_format)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimator = _load_file(model_file, file_format, trust, trust_pickle, warn,
                                   mlflow_model)
        except (InvalidInput, Unavailable):
            raise
        except Exception as exc:
            saved = _saved_version(caught, mlflow_model)
            raise InvalidInput(f"{model_file}: cannot load the model ({type(exc).__name__}: "
                               f"{exc}){version_hint(saved)}") from exc
    saved_with = _saved_version(caught, mlflow_model)
    installed = _installed_sklearn()
    if saved_with and saved_with != installed:
        warn(f"warning: {path} was saved with scikit-learn {saved_with}; this is scikit-learn "
             f"{installed}. Predictions may differ from the original: check them, or re-save "
             f"the model with scikit-learn {installed}.")
    if not callable(getattr(estimator, "predict", None)):
        raise InvalidInput(f"{path}: the file holds a {type(estimator).__name__}, not a model "
                           "with a predict method")
    return Loaded(estimator, fmt, path, sha256_of(path), saved_with or installed,
                  mlflow_model)


def _installed_sklearn() -> str:
    import sklearn

    return sklearn.__version__


def _version_warnings(caught: list[warnings.WarningMessage]) -> list[Any]:
    from sklearn.exceptions import InconsistentVersionWarning

    return [w.message for w in caught if isinstance(w.message, InconsistentVersionWarning)]


def _saved_version(caught: list[warnings.WarningMessage],
                   mlflow_model: MlflowModel | None) -> str | None:
    """The scikit-learn version the model was saved with: from scikit-learn's own
    InconsistentVersionWarning (every estimator's state carries the version), else what the
    MLmodel records, else None (the installed one: no estimator complained)."""
    found = _version_warnings(caught)
    if found:
        return str(found[0].original_sklearn_version)
    return mlflow_model.sklearn_version if mlflow_model else None


def version_hint(saved: str | None) -> str:
    """What to do about a model that fails under this scikit-learn, when another version
    saved it ("" when the versions agree or are unknown)."""
    installed = _installed_sklearn()
    if not saved or saved == installed:
        return ""
    return (f"; it was saved with scikit-learn {saved} and this is {installed}: "
            f"load it with scikit-learn {saved} and save it again as skops, or retrain it")


def _load_file(path: Path, fmt: str, trust: list[str], trust_pickle: bool,
               warn: Callable[[str], None], mlflow_model: MlflowModel | None) -> Any:
    if fmt == "skops":
        return _load_skops(path, trust, mlflow_model)
    if not trust_pickle:
        raise InvalidInput(
            f"{path} is a {fmt} file: loading it runs whatever code the file names, so skserve "
            "loads it only if you trust where it came from: add --trust-pickle. Safer: save "
            "the model with skops (skops.io.dump) and import the .skops file.")
    warn(f"warning: loading {path} with {'joblib' if fmt == 'joblib' else 'pickle'} runs any "
         "code the file names (--trust-pickle): do this only for files you trust")
    if fmt == "joblib":
        import joblib

        return joblib.load(path)
    with path.open("rb") as f:
        return pickle.load(f)


def _load_skops(path: Path, trust: list[str], mlflow_model: MlflowModel | None) -> Any:
    require(f"importing {path.name}", "skops")
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    unknown = [t for t in untrusted if t not in trust]
    if unknown:
        hint = ""
        if mlflow_model and mlflow_model.trusted_types:
            hint = (f" (the MLmodel lists {mlflow_model.trusted_types} as trusted; skserve "
                    "does not take a model's word for it)")
        flags = " ".join(f"--trust {t}" for t in unknown)
        raise InvalidInput(f"{path}: the file names types skops does not trust by default: "
                           f"{', '.join(unknown)}{hint}. If you trust them, add: {flags}")
    return skops.io.load(path, trusted=untrusted)


def read_mlflow(folder: Path) -> tuple[Path, MlflowModel]:
    """Read an MLflow model folder's `MLmodel` with MLflow's API: the sklearn flavor's model
    file and serialization format, the signature as features, the input example."""
    require("importing an MLflow model folder", "mlflow")
    from mlflow.models import Model

    model = Model.load(str(folder))
    flavor = model.flavors.get("sklearn")
    if flavor is None:
        raise InvalidInput(f"{folder}/MLmodel: no sklearn flavor (flavors: "
                           f"{sorted(model.flavors)}); skserve imports scikit-learn models")
    if flavor.get("code"):
        raise InvalidInput(f"{folder}: the model ships its own code ({flavor['code']}); skserve "
                           "does not put a model's code on the import path. Install that code "
                           "as a package and import the model again.")
    fmt = flavor.get("serialization_format", "pickle")
    if fmt not in ("skops", "pickle", "cloudpickle"):
        raise InvalidInput(f"{folder}/MLmodel: unknown serialization_format {fmt!r}")
    features, target = _signature_features(folder, model)
    example = None
    if model.saved_input_example_info:
        loaded = model.load_input_example(str(folder))
        if isinstance(loaded, pd.DataFrame) and len(loaded):
            example = json_row(loaded.iloc[0])
        elif isinstance(loaded, dict):
            example = {k: _json_value(v) for k, v in loaded.items()}
    created = None
    if model.utc_time_created:  # "2026-11-30 15:57:06.307311", UTC without an offset
        stamp = datetime.fromisoformat(str(model.utc_time_created)).replace(tzinfo=UTC)
        created = stamp.isoformat(timespec="seconds")
    info = MlflowModel(fmt, features, target, example, created, model.mlflow_version,
                       flavor.get("sklearn_version"), list(flavor.get("skops_trusted_types") or []))
    return folder / flavor["pickled_model"], info


def _signature_features(folder: Path, model: Any) -> tuple[list[Feature] | None, str | None]:
    """Features from a column-based signature (None for none or a tensor signature); ranges
    and categories are not in a signature, so they stay unknown here."""
    signature = model.signature
    if signature is None or signature.inputs is None or signature.inputs.is_tensor_spec():
        return None, None
    features = []
    for col in signature.inputs.inputs:
        kind = getattr(col.type, "name", str(col.type))
        if col.name is None or kind not in MLFLOW_DTYPES:
            raise InvalidInput(f"{folder}/MLmodel: signature input {col.name!r} has type "
                               f"{kind!r}, which skserve cannot serve as a table column")
        dtype = MLFLOW_DTYPES[kind]
        categories = [0, 1] if kind == "boolean" else None
        features.append(Feature(col.name, dtype, None, None, categories,  # type: ignore[arg-type]
                                nullable=not col.required))
    outputs = signature.outputs
    target = None
    if outputs is not None and not outputs.is_tensor_spec() and len(outputs.inputs) == 1:
        target = outputs.inputs[0].name
    return features, target


def _json_value(value: Any) -> Any:
    """One cell as JSON: None for missing, ISO text for timestamps, plain Python numbers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    return value


def json_row(row: pd.Series) -> dict[str, Any]:
    return {str(k): _json_value(v) for k, v in row.items()}


def load_sample(path: Path, time_column: str | None) -> pd.DataFrame:
    """Rows to describe the schema and check predictions on (CSV or Parquet)."""
    if not path.exists():
        raise InputNotFound(f"sample file not found: {path}")
    frame = read_table(path)
    if frame.empty:
        raise InvalidInput(f"{path}: the sample has no rows")
    if time_column is not None:
        if time_column not in frame.columns:
            raise InvalidInput(f"{path}: time column {time_column!r} not found")
        frame[time_column] = pd.to_datetime(frame[time_column])
    return frame


def build_schema(loaded: Loaded, sample: pd.DataFrame | None, sample_name: str,
                 target: str | None, time_column: str | None,
                 task: str) -> tuple[FeatureSchema, str, list[str]]:
    """The feature schema, where its names came from, and notes for the user."""
    notes: list[str] = []
    mlflow = loaded.mlflow
    named_target = bool(target)
    target = target or (mlflow.target if mlflow else None) or DEFAULT_TARGET
    names_in = getattr(loaded.estimator, "feature_names_in_", None)
    sample_features: dict[str, Feature] = {}
    if mlflow and mlflow.features:
        base, source = mlflow.features, "mlflow_signature"
    elif sample is not None:
        source = "sample"
        if names_in is not None:
            names = [str(n) for n in names_in]
        else:
            names = [c for c in sample.columns if c != target]
            _check_array_inputs(loaded, names, sample_name, named_target)
            notes.append(f"the model was fitted on an array (no column names): the sample's "
                         f"columns are taken as its inputs in file order: {names}")
        _require_columns(sample, names, sample_name)
        base = infer_features(sample[names], time_column)
    elif names_in is not None:
        source = "feature_names_in_"
        base = [Feature(str(n), "float", None, None, None, nullable=False) for n in names_in]
        notes.append("the schema has names only (feature_names_in_): every feature is taken "
                     "as a float without a range or missing values; add --sample FILE to "
                     "describe the real types, ranges and categories")
    else:
        raise InvalidInput(
            f"{loaded.path}: skserve cannot tell the model's input columns: it has no MLflow "
            "signature and no feature_names_in_ (fitted on an array). Add --sample FILE.csv "
            "(or .parquet) with real input rows.")
    names = [f.name for f in base]
    if sample is not None:
        _require_columns(sample, names, sample_name)
        sample_features = {f.name: f for f in infer_features(sample[names], time_column)}
        ignored = [c for c in sample.columns if c not in names and c != target]
        if ignored:
            notes.append(f"sample columns the model does not take, ignored: {ignored}"
                         + ("" if named_target else "; if one is the target, name it with "
                            "--target to get hold-out metrics"))
    features = [_merge(f, sample_features.get(f.name)) for f in base]
    if sample is None and source == "mlflow_signature":
        notes.append("the MLflow signature gives types only: ranges, categories and drift "
                     "counts are unknown (add --sample FILE to take them from real rows)")
    features = [_datetime_range(f, mlflow.input_example if mlflow else None, loaded.path)
                for f in features]
    low = high = None
    if task == "regression" and sample is not None and target in sample.columns:
        y = pd.to_numeric(sample[target], errors="coerce").dropna()
        if len(y):
            low, high = float(y.min()), float(y.max())
    return FeatureSchema(features, target, time_column, low, high), source, notes


def _check_array_inputs(loaded: Loaded, names: list[str], sample_name: str,
                        named_target: bool) -> None:
    """A model fitted on an array takes its inputs by position: the sample must have exactly
    as many input columns as the model was fitted on (`n_features_in_`)."""
    wanted = getattr(loaded.estimator, "n_features_in_", None)
    if wanted is None or wanted == len(names):
        return
    fix = (f"give a sample with the model's {wanted} input column(s) in the order it was "
           "fitted on")
    fix = (f"{fix}, plus the target" if named_target
           else f"if one of them is the target, name it with --target; else {fix}")
    raise InvalidInput(
        f"{sample_name}: the model in {loaded.path} was fitted on an array of {wanted} "
        f"column(s) (n_features_in_), and the sample has {len(names)} input column(s) "
        f"{names}: {fix}")


def _require_columns(sample: pd.DataFrame, names: list[str], sample_name: str) -> None:
    missing = [n for n in names if n not in sample.columns]
    if missing:
        raise InvalidInput(f"{sample_name}: the sample lacks the model's input column(s) "
                           f"{missing}")


def _merge(declared: Feature, seen: Feature | None) -> Feature:
    """A declared feature (its dtype wins) with what real rows show: range, levels, gaps."""
    if seen is None:
        return declared
    numeric = declared.dtype in ("float", "int")
    same_kind = seen.dtype in (("float", "int") if numeric else (declared.dtype,))
    if not same_kind:
        return replace(declared, nullable=declared.nullable or seen.nullable)
    categories = seen.categories if declared.dtype in ("category", "int") else None
    return replace(declared, min=seen.min, max=seen.max, categories=categories,
                   nullable=declared.nullable or seen.nullable)


def _datetime_range(feature: Feature, example: dict[str, Any] | None, path: Path) -> Feature:
    """Timestamps need a range (it bounds what the service accepts): the sample's, else the
    input example's one value; without either the model is refused."""
    if feature.dtype != "datetime" or feature.min is not None:
        return feature
    value = (example or {}).get(feature.name)
    if value is None:
        raise InvalidInput(f"{path}: feature {feature.name!r} is a timestamp and nothing gives "
                           "its range: add --sample FILE with real rows")
    stamp = pd.Timestamp(value).isoformat()
    return replace(feature, min=stamp, max=stamp)


def probe_rows(schema: FeatureSchema, sample: pd.DataFrame | None,
               example: dict[str, Any] | None) -> tuple[list[dict[str, Any]], str]:
    """The rows the model must predict on before it is stored, and what they are."""
    if sample is not None:
        rows = [json_row(r) for _, r in sample[schema.names].iterrows()]
        return rows, f"the {len(rows)} sample rows"
    if example is not None:
        return [example], "the MLflow input example"
    row: dict[str, Any] = {}
    for f in schema.features:
        if f.categories:
            row[f.name] = f.categories[0]
        elif f.dtype == "datetime":
            row[f.name] = f.min
        elif f.dtype == "category":
            row[f.name] = ""
        elif f.min is not None and f.max is not None:
            row[f.name] = (float(f.min) + float(f.max)) / 2
        else:
            row[f.name] = 0.0
    return [row], f"a row built from the schema ({row})"


def check_predicts(estimator: Any, schema: FeatureSchema, rows: list[dict[str, Any]],
                   what: str, task: str, classes: list[Any], path: Path,
                   saved_with: str | None = None) -> pd.DataFrame | np.ndarray:
    """Predict on `rows` exactly as the service builds the model's input (returned);
    InvalidInput if the model fails, returns the wrong number of values, or (a regressor)
    returns non-numbers. `saved_with`: the scikit-learn version that saved the model, named
    in the refusal when it is not this one."""
    frame = model_input(estimator, rows_to_frame(schema, rows))
    try:
        pred = np.asarray(estimator.predict(frame))
        if task == "classification" and hasattr(estimator, "predict_proba"):
            aligned_proba(estimator, frame, classes)
    except Exception as exc:
        hint = version_hint(saved_with) or (
            "" if what.startswith("the ") and "sample" in what else
            "; add --sample FILE with real input rows to describe the inputs")
        raise InvalidInput(f"{path}: the model cannot predict on {what} "
                           f"({type(exc).__name__}: {exc}); refusing to import it{hint}"
                           ) from exc
    if len(pred) != len(rows):
        raise InvalidInput(f"{path}: the model returned {len(pred)} values for {len(rows)} rows")
    if task == "regression":
        try:
            values = pred.astype(float)
        except (TypeError, ValueError):
            raise InvalidInput(f"{path}: the model predicts {pred[:3].tolist()}, not numbers: "
                               "is it a classifier? (--task classification)") from None
        if not np.all(np.isfinite(values)):
            raise InvalidInput(f"{path}: the model predicts NaN or infinity on {what}")
    return frame


def resolve_task(estimator: Any, task: str | None, path: Path) -> tuple[str, list[Any]]:
    """The task (scikit-learn's `is_classifier` unless `task` says otherwise) and, for a
    classifier, its `classes_` as JSON values in `predict_proba` column order."""
    from sklearn.base import is_classifier

    if task is not None and task not in TASKS:
        raise InvalidInput(f"unknown task {task!r}: use one of {list(TASKS)}")
    task = task or ("classification" if is_classifier(estimator) else "regression")
    if task == "regression":
        return task, []
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        raise InvalidInput(f"{path}: a classifier needs classes_ (the labels in predict_proba "
                           "order), and this model has none")
    return task, [_json_value(c) for c in classes]


def _params(estimator: Any) -> dict[str, Any]:
    """The final estimator's own parameters that are plain JSON values."""
    final = estimator[-1] if hasattr(estimator, "steps") else estimator
    params = final.get_params(deep=False) if hasattr(final, "get_params") else {}
    return {k: v for k, v in params.items() if isinstance(v, str | int | float | bool)}


def _sample_metrics(estimator: Any, frame: pd.DataFrame | np.ndarray, y: pd.Series, task: str,
                    classes: list[Any]) -> dict[str, float | None]:
    """The task's metrics on the labelled sample (not a hold-out: the model may have been
    trained on these rows)."""
    if task == "regression":
        return objective(task).score(estimator, frame, y.to_numpy(dtype=float), classes)
    truth = y.to_numpy()
    if hasattr(estimator, "predict_proba"):
        return objective(task).score(estimator, frame, truth, classes)
    from sklearn.metrics import accuracy_score, f1_score

    pred = np.asarray(estimator.predict(frame))
    return {"accuracy": float(accuracy_score(truth, pred)),
            "macro_f1": float(f1_score(truth, pred, average="macro", zero_division=0))}


def import_model(path: Path, *, sample_path: Path | None = None, target: str | None = None,
                 time_column: str | None = None, task: str | None = None,
                 trust: list[str] | None = None, trust_pickle: bool = False,
                 warn: Callable[[str], None] = lambda _: None) -> Imported:
    """Load, describe and check a model; everything `store.save` needs. Raises InvalidInput
    (or InputNotFound, Unavailable) naming the file and what to add or fix."""
    loaded = load_model(path, trust=list(trust or []), trust_pickle=trust_pickle, warn=warn)
    sample = load_sample(sample_path, time_column) if sample_path else None
    sample_name = str(sample_path)
    task, classes = resolve_task(loaded.estimator, task, path)
    schema, schema_from, notes = build_schema(loaded, sample, sample_name, target,
                                              time_column, task)
    example = loaded.mlflow.input_example if loaded.mlflow else None
    rows, what = probe_rows(schema, sample, example)
    frame = check_predicts(loaded.estimator, schema, rows, what, task, classes, path,
                           loaded.sklearn_version)
    notes.append(f"checked: the model predicts on {what}")
    if example is None and sample is not None:
        example = rows[0]
    metrics: dict[str, float | None] = {}
    labelled = sample is not None and schema.target in sample.columns
    if labelled:
        y = sample[schema.target]
        keep = y.notna().to_numpy()
        metrics = _sample_metrics(loaded.estimator, frame[keep], y[keep], task, classes)
    source = {
        "format": loaded.format,
        "path": str(path.resolve()),
        "sha256": loaded.sha256,
        "sklearn_version": loaded.sklearn_version,
        "schema_from": schema_from,
        "ranges_from": "sample" if sample is not None else None,
        "metrics_on": "sample" if labelled else None,
        "serialization_format": loaded.mlflow.serialization_format if loaded.mlflow else None,
        "mlflow_version": loaded.mlflow.mlflow_version if loaded.mlflow else None,
    }
    estimator = loaded.estimator
    family = type(estimator[-1] if hasattr(estimator, "steps") else estimator).__name__
    dataset = None
    if sample is not None and sample_path is not None:
        dataset = {"name": sample_path.stem.lower(), "source": sample_name,
                   "sha256": sha256_of(sample_path), "rows": len(sample)}
    metadata = without_nones({
        "schema": schema.to_dict(),
        "task": task,
        "classes": classes or None,
        "has_proba": hasattr(estimator, "predict_proba"),
        "metrics": metrics,
        "family": family,
        "params": _params(estimator),
        "leaderboard": [],
        "dataset": dataset,
        "trained_at": loaded.mlflow.created if loaded.mlflow else None,
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "packages": package_versions(),
        "source": source,
        "input_example": example,
    })
    labels = {"family": family, "task": task, "source": loaded.format}
    if dataset:
        labels["dataset"] = dataset["name"]
    return Imported(estimator, metadata, labels, notes)
