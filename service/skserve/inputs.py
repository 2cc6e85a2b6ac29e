"""The model's input from validated rows: per transformer arrays where that is proven equal.

Profiled under load (py-spy, BENCHMARKS.md "Online serving"), the fitted pipeline's
`ColumnTransformer` was 42 % of a worker's time at 6-8 rows per model call: per call it
checks the frame's feature names, dispatches its transformers through joblib, selects each
one's columns with pandas indexing and has each transformer convert its selected frame back
to numpy. None of that depends on the rows, so it is a fixed cost per call, and the serving
path can skip it: for a `Pipeline` whose first step is a fitted `ColumnTransformer`,
`serving_path` builds each fitted transformer's columns as one numpy array straight from the
rows, runs that transformer's own steps on it (a nested `Pipeline`'s steps one after the
other, without its per-call checks), stacks the outputs as the `ColumnTransformer` does
(`np.hstack`, in `transformers_` order) and gives the result to the rest of the pipeline
(`pipeline[1:]`, or its model when that is all there is). Every number is still computed by
the stored estimators' own `transform` and `predict`; only the plumbing between them is
skipped.

Proven, or not used. The path is built only when its structure allows it (dense output, a
sparse part such as a default `OneHotEncoder`'s densified as the ColumnTransformer does; no
transformer weights; each transformer's columns named and of one kind, `drop` or a fitted
estimator per entry, the rest of the pipeline fitted without feature names) and, at load,
only if it gives exactly the `ColumnTransformer`'s output (same type, shape, dtype and
values, NaN where it has NaN) with no warning, on probe rows drawn from the feature schema
(a few alone and all in one call). Anything else (an imported plain estimator, pandas
output, text and numbers in one transformer, a transformer that needs a DataFrame or still
checks feature names) is served by the plain pipeline on a DataFrame
(`schema.rows_to_frame`), as before. `passthrough` columns are fine: fitted, they are an
identity `FunctionTransformer`, proven like the rest.

One thing is changed, on a copy: each transformer's first estimator forgets
`feature_names_in_` (a public fitted attribute, "defined only when X has feature names"),
because it now gets a numpy array of exactly those columns in that order, and would
otherwise warn on every call that X has no feature names. The stored pipeline is untouched.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pydantic import ValidationError

from . import trees
from .schema import COLUMN_DTYPES, Feature, FeatureSchema, column, request_model, rows_to_frame

log = logging.getLogger("skserve.inputs")

# The proof at start: rows sampled from the schema plus one with every nullable feature
# missing, all in one call, and the last few (the missing one among them) alone too. Each
# probe call costs a worker's start about 3 ms.
PROBE_ROWS = 32
SINGLE_PROBES = 4


@dataclass(frozen=True)
class ServingPath:
    """How the service scores validated rows: `model` (what `outputs.score` calls) on
    `to_input(rows)`. `kind` is `columns` (per transformer arrays, see the module notes) or
    `frame` (the stored pipeline on a DataFrame); `reason` says why not `columns`."""

    to_input: Callable[[list[dict[str, Any]]], Any]
    model: Any
    kind: str
    reason: str = ""


def frame_path(pipeline: Any, schema: FeatureSchema, reason: str) -> ServingPath:
    """The stored pipeline on a DataFrame with the training dtypes."""
    return ServingPath(lambda rows: rows_to_frame(schema, rows), pipeline, "frame", reason)


def serving_path(pipeline: Any, schema: FeatureSchema) -> ServingPath:
    """The cheapest path proven to give `pipeline`'s own input to its model (module notes);
    the plain pipeline on a DataFrame otherwise; either way with a HistGradientBoosting
    model's trees walked together where that is proven equal (`skserve.trees`). Logs which
    path, and why, at INFO."""
    try:
        path = _column_path(pipeline, schema)
    except _NotEquivalent as why:
        path = frame_path(pipeline, schema, str(why))
    if path.kind == "columns":
        log.info("serving path: per-transformer arrays into the pipeline's model")
    else:
        log.info("serving path: the pipeline on a DataFrame (%s)", path.reason)
    return replace(path, model=trees.faster(path.model))


class _NotEquivalent(Exception):
    """Why the per-transformer path cannot be shown to equal the pipeline's own."""


def _column_path(pipeline: Any, schema: FeatureSchema) -> ServingPath:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) < 2:
        raise _NotEquivalent("not a Pipeline with a model after its first step")
    head = pipeline.steps[0][1]
    if not isinstance(head, ColumnTransformer) or not hasattr(head, "transformers_"):
        raise _NotEquivalent("the first step is not a fitted ColumnTransformer")
    if head.transformer_weights or getattr(head, "sparse_output_", False):
        raise _NotEquivalent("transformer weights or sparse output")
    rest = pipeline[1:]
    if getattr(rest, "feature_names_in_", None) is not None:
        raise _NotEquivalent("the model was fitted on named columns")
    features = {f.name: f for f in schema.features}
    parts = [_part(name, transformer, columns, features, schema)
             for name, transformer, columns in head.transformers_
             if not (isinstance(transformer, str) and transformer == "drop")
             and not _empty(columns)]
    if not parts:
        raise _NotEquivalent("the ColumnTransformer uses no columns")

    def to_input(rows: list[dict[str, Any]]) -> np.ndarray:
        return np.hstack([transform(array(rows)) for array, transform in parts])

    _prove(head, to_input, schema)
    return ServingPath(to_input, rest.steps[0][1] if len(rest.steps) == 1 else rest, "columns")


def _empty(columns: Any) -> bool:
    return isinstance(columns, list | tuple | np.ndarray) and len(columns) == 0


def _part(name: str, transformer: Any, columns: Any, features: dict[str, Feature],
          schema: FeatureSchema) -> tuple[Callable[[list[dict]], np.ndarray], Callable]:
    """(rows → this transformer's input array, its transform) for one fitted entry."""
    from scipy import sparse

    if isinstance(transformer, str):
        raise _NotEquivalent(f"transformer {name!r} is {transformer!r}")
    if not isinstance(columns, list | tuple | np.ndarray) or isinstance(columns, str):
        raise _NotEquivalent(f"transformer {name!r} selects columns by {type(columns).__name__}")
    if any(isinstance(c, bool | np.bool_) for c in columns):
        raise _NotEquivalent(f"transformer {name!r} selects columns by a boolean mask")
    n = len(schema.features)
    names = [schema.features[c].name if isinstance(c, int | np.integer) and -n <= c < n else c
             for c in columns]
    if any(not isinstance(c, str) or c not in features for c in names):
        raise _NotEquivalent(f"transformer {name!r} selects columns outside the schema")
    if len({str(COLUMN_DTYPES[features[c].dtype]) for c in names}) != 1:
        raise _NotEquivalent(f"transformer {name!r} mixes column kinds")
    dtype = features[names[0]].dtype

    def array(rows: list[dict[str, Any]]) -> np.ndarray:
        return np.column_stack([column(dtype, [row[c] for row in rows]) for c in names])

    steps = _steps(transformer)
    own = getattr(transformer, "feature_names_in_", None)
    if own is not None and list(own) != names:
        raise _NotEquivalent(f"transformer {name!r} was fitted on other columns")
    if steps and "feature_names_in_" in vars(steps[0]):
        # the copy of the one estimator that checks the input's column names forgets them
        steps[0] = copy.deepcopy(steps[0])
        del steps[0].feature_names_in_

    def transform(X: Any) -> Any:
        for step in steps:
            X = step.transform(X)
        # a sparse part (OneHotEncoder's default) of a dense output is densified, as the
        # ColumnTransformer's own `_hstack` does
        return X.toarray() if sparse.issparse(X) else X

    return array, transform


def _steps(estimator: Any) -> list[Any]:
    """What a fitted transformer's `transform` runs, in order: a Pipeline's steps (nested
    ones flattened, `passthrough` and None skipped; its own checks and routing are per-call
    costs too), else the estimator itself."""
    from sklearn.pipeline import Pipeline

    if not isinstance(estimator, Pipeline):
        return [estimator]
    return [inner for _, step in estimator.steps if step is not None and step != "passthrough"
            for inner in _steps(step)]


def _prove(head: Any, to_input: Callable[[list[dict]], np.ndarray],
           schema: FeatureSchema) -> None:
    """Raise _NotEquivalent unless `to_input` gives exactly the ColumnTransformer's output
    on probe rows (a few alone, then all in one call), without a warning."""
    from .loadtest.sampling import RowPool

    valid = request_model(schema)
    pool = RowPool.from_schema([f.__dict__ for f in schema.features], seed=0,
                               size=PROBE_ROWS).rows
    missing = {f.name: None for f in schema.features if f.nullable}
    rows = []
    for row in [*pool, {**pool[0], **missing}]:
        try:
            rows.append(valid.model_validate(row).__dict__)
        except ValidationError:  # a sampled value the service would refuse anyway
            continue
    if not rows:
        raise _NotEquivalent("no valid probe rows")
    for batch in [*([row] for row in rows[-SINGLE_PROBES:]), rows]:
        try:
            theirs = head.transform(rows_to_frame(schema, batch))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ours = to_input(batch)
        except Exception as exc:  # e.g. a transformer that needs a DataFrame
            raise _NotEquivalent(f"a transformer failed: {exc!r}") from None
        if caught:
            raise _NotEquivalent(f"a transformer warned: {caught[0].message}")
        if not (isinstance(theirs, np.ndarray) and isinstance(ours, np.ndarray)
                and ours.dtype == theirs.dtype and ours.shape == theirs.shape
                and np.array_equal(ours, theirs, equal_nan=ours.dtype.kind in "fc")):
            raise _NotEquivalent("its output differs from the ColumnTransformer's on probe rows")
