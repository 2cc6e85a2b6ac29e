"""`skserve import` with real files: skops, joblib, pickle, MLflow folders (saved here by
MLflow itself), models from scikit-learn 1.6.1 (tests/fixtures, made by
tests/fixtures/make_old_sklearn_models.py), and an imported regressor served by a real
`skserve serve` and scored by `skserve batch run`."""

from __future__ import annotations

import json
import pickle
import subprocess
import urllib.request
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
import skops.io
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from skserve import store
from skserve.data import load_titanic
from skserve.errors import InvalidInput
from skserve.importer import import_model, sha256_of
from skserve.outputs import Task, model_input, score
from skserve.schema import request_model
from tests.conftest import SKSERVE, small_dataset, start_server, stop_server
from tests.service.test_http import call, post

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TITANIC_FEATURES = ["pclass", "sex", "age", "sibsp", "parch"]


class ClipAge(TransformerMixin, BaseEstimator):
    """A user's own pipeline step: a type skops cannot know is safe."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.clip(np.asarray(X, dtype=float), 0, 90)


def skserve_import(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SKSERVE, "import", *map(str, args)], capture_output=True, text=True,
                          timeout=180)


def titanic_classifier():
    """A notebook-style pipeline: one-hot categories, imputed ages, logistic regression."""
    frame = load_titanic().frame
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["pclass", "sex"]),
            (SimpleImputer(strategy="median"), ["age", "sibsp", "parch"])),
        LogisticRegression(max_iter=1000))
    return model.fit(frame[TITANIC_FEATURES], frame["survived"])


@pytest.fixture(scope="module")
def titanic_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "titanic_sample.csv"
    load_titanic().frame.sample(300, random_state=0).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The same fitted Titanic pipeline saved as skops, joblib and pickle."""
    folder = tmp_path_factory.mktemp("models")
    model = titanic_classifier()
    paths = {"skops": folder / "titanic.skops", "joblib": folder / "titanic.joblib",
             "pickle": folder / "titanic.pkl"}
    skops.io.dump(model, paths["skops"])
    joblib.dump(model, paths["joblib"])
    paths["pickle"].write_bytes(pickle.dumps(model))
    return paths


@pytest.fixture(scope="module")
def mlflow_models(tmp_path_factory) -> dict[str, Path]:
    """Real MLflow model folders (sklearn flavor, signature and input example), saved by
    mlflow.sklearn.save_model in skops and cloudpickle formats."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    folder = tmp_path_factory.mktemp("mlflow")
    frame = load_titanic().frame
    X = frame[TITANIC_FEATURES]
    model = titanic_classifier()
    with warnings.catch_warnings():  # MLflow's hint about integer columns and missing values
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(X, model.predict(X))
    out = {}
    for fmt in ("skops", "cloudpickle"):
        out[fmt] = folder / fmt
        extra = {"skops_trusted_types": ["numpy.dtype"]} if fmt == "skops" else {}
        mlflow.sklearn.save_model(model, out[fmt], serialization_format=fmt,
                                  signature=signature, input_example=X.iloc[:2],
                                  pip_requirements=["scikit-learn"], **extra)
    return out


def test_skops_classifier_is_refused_until_its_types_are_named(files, titanic_csv):
    refused = skserve_import(files["skops"], "--name", "titanic-skops", "--sample", titanic_csv)
    assert refused.returncode == 2, refused.stderr
    assert "types skops does not trust by default: numpy.dtype" in refused.stderr
    assert "add: --trust numpy.dtype" in refused.stderr and "Traceback" not in refused.stderr
    assert "titanic-skops" not in skserve_models()


def skserve_models() -> str:
    return subprocess.run([SKSERVE, "models"], capture_output=True, text=True,
                          timeout=60).stdout


def test_skops_classifier_imports_with_the_contract(files, titanic_csv):
    """The metadata a trained classifier has, plus where the file came from."""
    out = skserve_import(files["skops"], "--name", "titanic-skops", "--version", "v1",
                         "--sample", titanic_csv, "--target", "survived",
                         "--trust", "numpy.dtype", "--json")
    assert out.returncode == 0, out.stderr
    assert "checked: the model predicts on the 300 sample rows" in out.stderr
    info = store.get_info("titanic-skops:v1")
    meta = info.metadata
    assert info.task == "classification" and info.labels["task"] == "classification"
    assert info.classes == ["died", "survived"] and meta["has_proba"] is True
    assert meta["family"] == "LogisticRegression" and meta["params"]["max_iter"] == 1000
    source = meta["source"]
    assert source["format"] == "skops" and source["schema_from"] == "sample"
    assert source["sha256"] == sha256_of(files["skops"]) == json.loads(out.stdout)["source"][
        "sha256"]
    assert source["sklearn_version"] == sklearn.__version__
    assert source["ranges_from"] == "sample" and source["metrics_on"] == "sample"
    sample = pd.read_csv(titanic_csv)
    schema = info.schema
    assert schema.names == TITANIC_FEATURES and schema.target == "survived"
    assert schema.feature("sex").categories == ["female", "male"]
    age = schema.feature("age")
    assert age.nullable and age.min == sample["age"].min() and age.max == sample["age"].max()
    first = sample.iloc[0]
    assert meta["input_example"] == {
        "pclass": first["pclass"], "sex": first["sex"],
        "age": None if pd.isna(first["age"]) else first["age"],
        "sibsp": int(first["sibsp"]), "parch": int(first["parch"])}
    # metrics on the labelled sample, computed here the same way
    model = skops.io.load(files["skops"], trusted=["numpy.dtype"])
    accuracy = float((model.predict(sample[TITANIC_FEATURES]) == sample["survived"]).mean())
    assert meta["metrics"]["accuracy"] == pytest.approx(accuracy)
    assert {"log_loss", "roc_auc", "brier", "macro_f1"} <= set(meta["metrics"])
    assert meta["dataset"]["rows"] == 300 and meta["leaderboard"] == []
    assert {"scikit-learn", "skops", "bentoml"} <= set(meta["packages"])
    assert meta["imported_at"] and "trained_at" not in meta
    row = [r for r in skserve_models().splitlines() if r.startswith("titanic-skops:v1 ")]
    assert row and row[0].split()[1:5] == ["classification", "LogisticRegression",
                                          f"log_loss={meta['metrics']['log_loss']:.4g}",
                                          "skops"]


def test_a_type_from_user_code_must_be_named(tmp_path):
    """A pipeline step defined in this module: skops lists it as untrusted; imported only
    when the user names it (and still refused without the other unknown type)."""
    frame = load_titanic().frame
    model = make_pipeline(SimpleImputer(), ClipAge(), LogisticRegression())
    model.fit(frame[["age", "sibsp", "parch"]], frame["survived"])
    path = tmp_path / "clip.skops"
    skops.io.dump(model, path)
    ours = f"{__name__}.ClipAge"
    with pytest.raises(InvalidInput, match=f"numpy.dtype, {ours}") as refused:
        import_model(path)
    assert f"--trust {ours}" in str(refused.value)
    with pytest.raises(InvalidInput, match=f"types skops does not trust by default: {ours}\\."):
        import_model(path, trust=["numpy.dtype"])
    imported = import_model(path, trust=["numpy.dtype", ours])
    assert imported.metadata["source"]["schema_from"] == "feature_names_in_"
    assert isinstance(imported.estimator[1], ClipAge)


@pytest.mark.parametrize("fmt", ["joblib", "pickle"])
def test_pickles_need_trust_pickle(files, fmt, titanic_csv):
    refused = skserve_import(files[fmt], "--name", f"titanic-{fmt}")
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "add --trust-pickle" in lines[0] and "skops" in lines[0]
    assert "runs whatever code the file names" in lines[0]
    out = skserve_import(files[fmt], "--name", f"titanic-{fmt}", "--version", "v1",
                         "--trust-pickle", "--sample", titanic_csv)
    assert out.returncode == 0, out.stderr
    assert f"warning: loading {files[fmt]} with {fmt} runs any code" in out.stderr
    meta = store.get_info(f"titanic-{fmt}:v1").metadata
    assert meta["source"]["format"] == fmt and meta["classes"] == ["died", "survived"]
    assert meta["source"]["sha256"] == sha256_of(files[fmt])


def test_names_only_schema_refuses_a_model_that_needs_text(files):
    """feature_names_in_ alone makes every input a float without range; the Titanic
    pipeline one-hot encodes text, so the row built from that schema fails and the import
    is refused with the flag that gives real types."""
    with pytest.raises(InvalidInput, match="cannot predict on a row built from the schema") as e:
        import_model(files["joblib"], trust_pickle=True)
    assert "add --sample FILE" in str(e.value)


def test_a_model_without_feature_names_needs_a_sample(tmp_path, titanic_csv):
    frame = load_titanic().frame.dropna()
    model = LogisticRegression().fit(frame[["age", "sibsp"]].to_numpy(), frame["survived"])
    path = tmp_path / "array.skops"
    skops.io.dump(model, path)
    out = skserve_import(path, "--name", "arrays", "--trust", "numpy.dtype")
    assert out.returncode == 2
    assert "no MLflow signature and no feature_names_in_" in out.stderr
    assert "Add --sample FILE.csv" in out.stderr
    # the inputs go by position: a sample with other columns is refused by their count
    with pytest.raises(InvalidInput, match=r"fitted on an array of 2 column\(s\) "
                       r"\(n_features_in_\), and the sample has 6 input column\(s\)") as e:
        import_model(path, trust=["numpy.dtype"], sample_path=titanic_csv)
    assert "if one of them is the target, name it with --target" in str(e.value)
    sample = tmp_path / "two.csv"
    frame[["age", "sibsp", "survived"]].iloc[:50].to_csv(sample, index=False)
    with warnings.catch_warnings():
        # scikit-learn's "X has feature names, but ... was fitted without feature names"
        # would come on every call of the service: the check gives the model an array
        warnings.simplefilter("error")
        imported = import_model(path, trust=["numpy.dtype"], sample_path=sample,
                                target="survived")
    assert [f.name for f in imported_schema(imported).features] == ["age", "sibsp"]
    assert "the sample's columns are taken as its inputs in file order: ['age', 'sibsp']" \
        in " ".join(imported.notes)
    assert imported.metadata["metrics"]["accuracy"] == pytest.approx(
        (model.predict(frame[["age", "sibsp"]].iloc[:50].to_numpy())
         == frame["survived"].iloc[:50]).mean())


def test_an_array_fitted_model_is_scored_on_values_without_warnings():
    """outputs.score (the service's and batch's one model call) gives an estimator fitted on
    a bare array the frame's values, so scikit-learn does not warn on every call; a model
    fitted on named columns still gets the frame."""
    frame = load_titanic().frame.dropna().iloc[:200]
    x, y = frame[["age", "sibsp"]], frame["survived"]
    on_array = LogisticRegression().fit(x.to_numpy(), y)
    on_frame = LogisticRegression().fit(x, y)
    task = Task("classification", ("died", "survived"), has_proba=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = score(on_array, task, x)
        assert score(on_frame, task, x).values == on_frame.predict(x).tolist()
    assert scores.values == on_array.predict(x.to_numpy()).tolist()
    np.testing.assert_array_equal(scores.proba, on_array.predict_proba(x.to_numpy()))
    assert model_input(on_frame, x) is x and isinstance(model_input(on_array, x), np.ndarray)


def imported_schema(imported):
    from skserve.schema import FeatureSchema

    return FeatureSchema.from_dict(imported.metadata["schema"])


def test_a_model_that_cannot_predict_on_the_sample_is_refused(files, tmp_path):
    sample = load_titanic().frame.iloc[:40].copy()
    missing = tmp_path / "missing.csv"
    sample.drop(columns=["sex"]).to_csv(missing, index=False)
    out = skserve_import(files["skops"], "--name", "broken", "--trust", "numpy.dtype",
                         "--sample", missing)
    assert out.returncode == 2 and "lacks the model's input column(s) ['sex']" in out.stderr
    # every column there, but ages as text: the imputer cannot take them
    sample["age"] = "unknown"
    wrong = tmp_path / "wrong.csv"
    sample.to_csv(wrong, index=False)
    out = skserve_import(files["skops"], "--name", "broken", "--trust", "numpy.dtype",
                         "--sample", wrong)
    assert out.returncode == 2, out.stderr
    assert "the model cannot predict on the 40 sample rows" in out.stderr
    assert "refusing to import it" in out.stderr and "Traceback" not in out.stderr


def test_a_classifier_forced_to_regression_is_refused(files, titanic_csv):
    with pytest.raises(InvalidInput, match="not numbers: is it a classifier"):
        import_model(files["skops"], trust=["numpy.dtype"], task="regression",
                     sample_path=titanic_csv)


def test_mlflow_skops_model_uses_signature_and_example(mlflow_models, titanic_csv):
    folder = mlflow_models["skops"]
    refused = skserve_import(folder, "--name", "titanic-mlflow")
    assert refused.returncode == 2
    assert "the MLmodel lists ['numpy.dtype'] as trusted" in refused.stderr
    assert "--trust numpy.dtype" in refused.stderr

    out = skserve_import(folder, "--name", "titanic-mlflow", "--version", "v1",
                         "--trust", "numpy.dtype")
    assert out.returncode == 0, out.stderr
    assert "ranges, categories and drift counts are unknown" in out.stderr
    assert "checked: the model predicts on the MLflow input example" in out.stderr
    meta = store.get_info("titanic-mlflow:v1").metadata
    source = meta["source"]
    assert source["format"] == "mlflow" and source["serialization_format"] == "skops"
    assert source["schema_from"] == "mlflow_signature" and "ranges_from" not in source
    assert source["sha256"] == sha256_of(folder) != sha256_of(folder / "model.skops")
    assert source["sklearn_version"] == sklearn.__version__ and source["mlflow_version"]
    features = {f["name"]: f for f in meta["schema"]["features"]}
    assert {n: f["dtype"] for n, f in features.items()} == {
        "pclass": "category", "sex": "category", "age": "float", "sibsp": "int",
        "parch": "int"}
    assert features["age"]["nullable"] and not features["sex"]["nullable"]
    assert "min" not in features["age"] and "categories" not in features["sex"]
    assert meta["input_example"] == {"pclass": "1st", "sex": "female", "age": 29.0,
                                     "sibsp": 0, "parch": 0}
    assert meta["classes"] == ["died", "survived"]
    assert meta["trained_at"].endswith("+00:00") and meta["trained_at"] <= meta["imported_at"]
    # what the service accepts: the example; any text where no levels are known; no nulls
    # where the signature requires a value
    row_model = request_model(store.get_info("titanic-mlflow:v1").schema)
    row_model.model_validate(meta["input_example"])
    row_model.model_validate({**meta["input_example"], "pclass": "4th", "age": None})
    with pytest.raises(ValueError, match="sex"):
        row_model.model_validate({**meta["input_example"], "sex": None})

    # a sample fills in what the signature cannot say
    out = skserve_import(folder, "--name", "titanic-mlflow", "--version", "v2",
                         "--trust", "numpy.dtype", "--sample", titanic_csv)
    assert out.returncode == 0, out.stderr
    schema = store.get_info("titanic-mlflow:v2").schema
    assert schema.feature("sex").categories == ["female", "male"]
    assert schema.feature("age").max == pd.read_csv(titanic_csv)["age"].max()
    assert schema.feature("sibsp").dtype == "int"


@pytest.mark.slow
def test_an_mlflow_model_serves_its_input_example_as_the_openapi_example(mlflow_models):
    """The MLflow folder imported with its signature alone, then a real `skserve serve`:
    /docs.json's example requests (/predict, /predict_batch, V2 infer) are the MLflow input
    example's first row, and the service answers it as the saved pipeline does."""
    folder = mlflow_models["skops"]
    out = skserve_import(folder, "--name", "mlflow-served", "--version", "v1",
                         "--trust", "numpy.dtype")
    assert out.returncode == 0, out.stderr
    example = {"pclass": "1st", "sex": "female", "age": 29.0, "sibsp": 0, "parch": 0}
    server = start_server("mlflow-served:v1")
    try:
        paths = json.loads(call(server.url + "/docs.json")[2])["paths"]

        def request_example(path: str) -> object:
            return paths[path]["post"]["requestBody"]["content"]["application/json"][
                "example"]

        assert request_example("/predict") == example
        assert request_example("/predict_batch") == [example]
        infer = request_example("/v2/models/mlflow-served/infer")
        assert {i["name"]: i["data"] for i in infer["inputs"]} == \
            {k: [v] for k, v in example.items()}
        status, _, answer = post(server, "/predict", example)
        assert status == 200, answer
    finally:
        stop_server(server)
    model = skops.io.load(folder / "model.skops", trusted=["numpy.dtype"])
    x = pd.DataFrame([example])
    assert answer["label"] == model.predict(x)[0]
    assert list(answer["probabilities"].values()) == pytest.approx(
        model.predict_proba(x)[0].tolist(), abs=1e-12)


def test_mlflow_cloudpickle_model_needs_trust_pickle(mlflow_models):
    folder = mlflow_models["cloudpickle"]
    with pytest.raises(InvalidInput, match="add --trust-pickle"):
        import_model(folder)
    said: list[str] = []
    imported = import_model(folder, trust_pickle=True, warn=said.append)
    assert any("runs any code" in w for w in said)
    assert imported.metadata["source"]["serialization_format"] == "cloudpickle"
    assert imported.metadata["source"]["schema_from"] == "mlflow_signature"


def test_a_model_from_scikit_learn_1_6_warns_with_both_versions():
    path = FIXTURES / "titanic_numeric_sklearn1.6.1.joblib"
    out = skserve_import(path, "--name", "old-sklearn", "--version", "v1", "--trust-pickle")
    assert out.returncode == 0, out.stderr
    assert (f"was saved with scikit-learn 1.6.1; this is scikit-learn {sklearn.__version__}"
            in out.stderr)
    meta = store.get_info("old-sklearn:v1").metadata
    assert meta["source"]["sklearn_version"] == "1.6.1"
    # the skops file of the same model: skops 0.16 no longer trusts what 0.11 wrote
    skops_path = FIXTURES / "titanic_numeric_sklearn1.6.1.skops"
    said: list[str] = []
    imported = import_model(skops_path, trust=["numpy.dtype"], warn=said.append)
    assert imported.metadata["source"]["sklearn_version"] == "1.6.1"
    assert any("scikit-learn 1.6.1" in w for w in said)


@pytest.mark.parametrize(("fixture", "message"), [
    # a ColumnTransformer names a private class later versions removed: it does not load
    ("titanic_columns", "cannot load the model (AttributeError"),
    # a SimpleImputer loads, but its old state lacks what the new transform reads
    ("titanic_imputer", "cannot predict on a row built from the schema"),
])
def test_a_model_from_another_version_that_cannot_serve_is_refused(fixture, message):
    out = skserve_import(FIXTURES / f"{fixture}_sklearn1.6.1.joblib", "--name", "gone",
                         "--trust-pickle")
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert message in last and "Traceback" not in out.stderr
    # the refusal itself names both versions and what to do (not --sample, which would
    # not help)
    assert (f"it was saved with scikit-learn 1.6.1 and this is {sklearn.__version__}: load "
            "it with scikit-learn 1.6.1 and save it again") in last
    assert "--sample" not in last
    assert "gone" not in skserve_models()


def test_unknown_formats_and_paths_are_refused(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"\0")
    out = skserve_import(tmp_path / "model.onnx", "--name", "x")
    assert out.returncode == 2 and "unknown model format '.onnx'" in out.stderr
    out = skserve_import(tmp_path, "--name", "x")
    assert out.returncode == 2 and "a folder without an MLmodel file" in out.stderr
    out = skserve_import(tmp_path / "nope.skops", "--name", "x")
    assert out.returncode == 2 and "model not found" in out.stderr
    out = skserve_import(tmp_path / "nope.skops", "--name", "Churn Model")
    assert out.returncode == 2 and "model name 'Churn Model'" in out.stderr
    assert "not a valid BentoML tag" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_an_imported_regressor_serves_and_batch_scores(tmp_path):
    """A user's demand regressor (skops) imported with a sample, then a real `skserve serve`
    answers /predict with the model's own numbers and `skserve batch run` scores a file."""
    frame = small_dataset().frame
    X, y = frame[["WorkDay", "Temperature"]], frame["Demand"]
    model = HistGradientBoostingRegressor(max_iter=50, random_state=0).fit(X, y)
    path = tmp_path / "demand.skops"
    skops.io.dump(model, path)
    sample = tmp_path / "demand_sample.csv"
    frame[["WorkDay", "Temperature", "Demand"]].iloc[:500].to_csv(sample, index=False)
    trusted = skops.io.get_untrusted_types(file=path)
    out = skserve_import(path, "--name", "userdemand", "--version", "v1", "--sample", sample,
                         "--target", "Demand", *[a for t in trusted for a in ("--trust", t)])
    assert out.returncode == 0, out.stderr
    assert "integer features taken as closed sets (any other value is refused; " \
        "docs/models.md): WorkDay (2)" in out.stderr, out.stderr
    info = store.get_info("userdemand:v1")
    assert info.task == "regression" and info.schema.target_min == y.iloc[:500].min()
    untargeted = import_model(path, sample_path=sample, trust=trusted)
    assert "sample columns the model does not take, ignored: ['Demand']; if one is the " \
        "target, name it with --target to get hold-out metrics" in untargeted.notes
    assert set(info.metadata["metrics"]) == {"rmse", "mae", "r2", "mape"}

    server = start_server("userdemand:v1")
    try:
        body = json.dumps({"WorkDay": 1, "Temperature": 21.5}).encode()
        request = urllib.request.Request(server.url + "/predict", body,
                                         {"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            answer = json.loads(resp.read())
            assert resp.headers["x-model-version"] == "userdemand:v1"
        expected = model.predict(pd.DataFrame({"WorkDay": [1.0], "Temperature": [21.5]}))[0]
        assert answer["prediction"] == pytest.approx(expected)
    finally:
        stop_server(server)

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    frame[["WorkDay", "Temperature"]].iloc[1000:1600].to_csv(inputs / "rows.csv", index=False)
    run = subprocess.run([SKSERVE, "batch", "run", "--no-progress", "--input", str(inputs),
                          "--output", str(tmp_path / "out"), "--model", "userdemand:v1"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    scored = pd.read_csv(tmp_path / "out" / "predictions.csv").sort_values("row")
    assert len(scored) == 600
    direct = model.predict(frame[["WorkDay", "Temperature"]].iloc[1000:1600].astype(float))
    np.testing.assert_allclose(scored["prediction"].to_numpy(), direct, rtol=1e-9)


def test_ridge_with_feature_names_only_predicts_on_the_built_row(tmp_path):
    """Names only, numbers only: the zero row predicts, the schema says nothing it cannot
    know (no range, no missing values)."""
    frame = small_dataset().frame
    model = Ridge().fit(frame[["WorkDay", "Temperature"]], frame["Demand"])
    path = tmp_path / "ridge.pkl"
    path.write_bytes(pickle.dumps(model))
    imported = import_model(path, trust_pickle=True)
    schema = imported_schema(imported)
    assert [(f.name, f.dtype, f.min, f.nullable) for f in schema.features] == [
        ("WorkDay", "float", None, False), ("Temperature", "float", None, False)]
    assert imported.metadata["task"] == "regression" and "classes" not in imported.metadata
    assert imported.metadata["metrics"] == {} and "input_example" not in imported.metadata
