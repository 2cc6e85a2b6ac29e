"""A HistGradientBoosting model's trees walked all at once: one model call, not one per tree.

scikit-learn's `HistGradientBoostingRegressor` and `...Classifier` predict tree by tree in a
Python loop (`_predict_iterations`: per tree a `partial`, an output array, a Cython call that
opens an OpenMP region, and an add). For the reference model (280 trees) that loop is the
whole cost of a call on a few rows, about the same for 1 row as for 64 (BENCHMARKS.md,
"Online serving"), and serving calls the model with a few rows at a time.

`faster(model)` gives, for such a model (alone or last in a `Pipeline`), a shallow copy whose
`_raw_predict` (what `predict`, `predict_proba` and `decision_function` all go through) runs
the model's own input checks (`_preprocess_X`), then, for calls of up to `WALK_MAX_ROWS`
rows (more go to scikit-learn's loop, faster there), walks every tree for every row one
level at a time with NumPy (the same test as scikit-learn's: NaN goes where the node sends
missing values, else left when `x <= threshold`), and adds the leaves in scikit-learn's order: the
baseline, then tree after tree (`np.cumsum` accumulates one term after the other), so each
sum is the same sequence of float64 additions. Everything after the raw predictions (link
function, probabilities, class labels) is still scikit-learn's own code.

Proven, or not used: trees with categorical splits are left to scikit-learn, and at load the
copy must give bit-identical raw predictions to the original's on probe rows built from the
trees' own thresholds (each value at a threshold, just above or below it, NaN or infinite),
alone and in one call. The stored model is untouched.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("skserve.trees")

# Calls with more rows go to scikit-learn's own loop: the walk's cost grows with rows times
# levels, the loop's mostly with trees. Measured on the reference model (280 trees), one
# process: 6 rows 0.38 against 1.76 ms per call, 64 rows 3.1 against 6.8 (a loaded machine),
# 128 rows about even, 1000 rows 71 against 35.
WALK_MAX_ROWS = 64

# The proof at load: rows whose every value sits on, just above or just below one of the
# trees' thresholds for its feature, or is missing or infinite; a few alone, all in one call.
PROBE_ROWS = 256
SINGLE_PROBES = 4
MISSING_SHARE = 0.1


class NotEquivalent(Exception):
    """Why the walked trees cannot be shown to equal the model's own predictions."""


@dataclass(frozen=True)
class FlatTrees:
    """Every tree of a fitted HistGradientBoosting model in flat arrays (N nodes in all;
    T = iterations × K trees per iteration, tree `i * K + k` being iteration i's for output k).

    `feature`, `threshold`, `missing_left` per node (a leaf: feature 0, any threshold);
    `child[2 * n + go_left]` is node n's next node, a leaf's is itself; `value` per node (a
    leaf's is its prediction). The trees are walked deepest first: `roots` (T,) their first
    nodes in that order, `active[d]` how many of them are still deeper than d levels (so
    level d walks only the first `active[d]`), `order` (T,) each walked tree's place in
    scikit-learn's order; `shape` (iterations, K)."""

    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    child: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    active: list[int]
    order: np.ndarray
    shape: tuple[int, int]

    def raw(self, X: np.ndarray, baseline: np.ndarray) -> np.ndarray:
        """Raw predictions (n_rows, K) of float64 rows `X` (n_rows, n_features): the sum of
        `baseline` (K,) and each tree's leaf, added in scikit-learn's order."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        rows, width = X.shape
        flat = X.ravel()
        offsets = (np.arange(rows, dtype=np.intp) * width)[:, None]
        node = np.repeat(self.roots[None, :], rows, axis=0)
        missing = bool(np.isnan(flat).any())
        for n in self.active:
            at = node[:, :n]
            x = flat[offsets + self.feature[at]]
            go_left = x <= self.threshold[at]
            if missing:
                go_left |= np.isnan(x) & self.missing_left[at]
            node[:, :n] = self.child[2 * at + go_left]
        leaves = np.empty_like(node)
        leaves[:, self.order] = node
        iterations, k = self.shape
        terms = np.empty((rows, iterations + 1, k), dtype=np.float64)
        terms[:, 0, :] = np.zeros((rows, k)) + baseline
        terms[:, 1:, :] = self.value[leaves].reshape(rows, iterations, k)
        return np.asfortranarray(np.cumsum(terms, axis=1)[:, -1, :])


def flatten(model: Any) -> FlatTrees:
    """The fitted trees of a HistGradientBoosting `model` as `FlatTrees`; NotEquivalent if it
    is not one or has categorical splits."""
    predictors = getattr(model, "_predictors", None)
    if not predictors or not hasattr(model, "_baseline_prediction"):
        raise NotEquivalent(f"{type(model).__name__} is not a fitted HistGradientBoosting model")
    trees = [p.nodes for iteration in predictors for p in iteration]
    if any(nodes["is_categorical"][~nodes["is_leaf"].astype(bool)].any() for nodes in trees):
        raise NotEquivalent("it has categorical splits")
    sizes = np.array([len(nodes) for nodes in trees])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    nodes = np.concatenate(trees)
    start = np.repeat(starts, sizes)
    leaf = nodes["is_leaf"].astype(bool)
    own = np.arange(len(nodes), dtype=np.intp)
    child = np.empty(2 * len(nodes), dtype=np.intp)
    child[0::2] = np.where(leaf, own, nodes["right"].astype(np.intp) + start)
    child[1::2] = np.where(leaf, own, nodes["left"].astype(np.intp) + start)
    depths = np.array([int(tree["depth"].max()) for tree in trees])
    order = np.argsort(-depths, kind="stable")
    return FlatTrees(
        feature=np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp),
        threshold=nodes["num_threshold"].astype(np.float64),
        missing_left=nodes["missing_go_to_left"].astype(bool),
        child=child,
        value=nodes["value"].astype(np.float64),
        roots=starts[order],
        active=[int((depths > d).sum()) for d in range(int(depths.max()))],
        order=order,
        shape=(len(predictors), len(predictors[0])),
    )


def faster(model: Any) -> Any:
    """`model` with its HistGradientBoosting trees walked together (module notes): a copy of
    the estimator, or of the `Pipeline` whose last step it is; `model` itself when that
    cannot be proven equal (logged at INFO with the reason) or it is no such model."""
    from sklearn.pipeline import Pipeline

    last = model.steps[-1][1] if isinstance(model, Pipeline) else model
    if not hasattr(last, "_predictors"):
        return model  # not a HistGradientBoosting model: nothing to say
    try:
        walked = walked_copy(last, flatten(last))
    except NotEquivalent as why:
        log.info("trees: scikit-learn's per-tree loop (%s)", why)
        return model
    log.info("trees: %d trees walked together", len(walked._skserve_trees.roots))
    if not isinstance(model, Pipeline):
        return walked
    pipeline = copy.copy(model)
    pipeline.steps = [*model.steps[:-1], (model.steps[-1][0], walked)]
    return pipeline


def walked_copy(model: Any, trees: FlatTrees) -> Any:
    """A shallow copy of `model` whose raw predictions for up to WALK_MAX_ROWS rows come from
    `trees` (more go to the model's own loop), once `prove` has shown the walk bit-identical
    to the model's own; NotEquivalent otherwise."""
    walked = copy.copy(model)
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).ravel()

    def raw_predict(X: Any, n_threads: int | None = None) -> np.ndarray:
        if len(X) > WALK_MAX_ROWS:
            return model._raw_predict(X, n_threads)
        return trees.raw(model._preprocess_X(X, reset=False), baseline)

    walked._raw_predict = raw_predict
    walked._skserve_trees = trees
    prove(model, trees, baseline)
    return walked


def prove(model: Any, trees: FlatTrees, baseline: np.ndarray) -> None:
    """Raise NotEquivalent unless walking `trees` gives bit for bit the raw predictions of
    `model`'s own per-tree loop on probe rows (module notes), both after the model's input
    checks. A model fitted on named columns warns that the probes have none: silenced."""
    rows = probe_rows(trees, model.n_features_in_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for batch in [*(rows[i:i + 1] for i in range(SINGLE_PROBES)), rows]:
            try:
                theirs = model._raw_predict(batch)
                ours = trees.raw(model._preprocess_X(batch, reset=False), baseline)
            except Exception as exc:  # e.g. input checks that want a DataFrame
                raise NotEquivalent(f"a probe call failed: {exc!r}") from None
            if ours.shape != theirs.shape or not np.array_equal(
                    np.ascontiguousarray(ours).view(np.uint64),
                    np.ascontiguousarray(theirs).view(np.uint64)):
                raise NotEquivalent("its raw predictions differ from scikit-learn's on probe "
                                    "rows")


def probe_rows(trees: FlatTrees, n_features: int, seed: int = 0) -> np.ndarray:
    """(PROBE_ROWS, n_features) float64: each value on, just above or just below a threshold
    the trees use for its feature (0 for a feature no tree splits on), or NaN, or ±inf."""
    rng = np.random.default_rng(seed)
    split = trees.child[0::2] != np.arange(len(trees.feature))
    rows = np.zeros((PROBE_ROWS, n_features))
    for f in range(n_features):
        cuts = np.unique(trees.threshold[split & (trees.feature == f)])
        cuts = cuts[np.isfinite(cuts)]
        if len(cuts) == 0:
            continue
        values = rng.choice(cuts, PROBE_ROWS)
        side = rng.integers(-1, 2, PROBE_ROWS)
        rows[:, f] = np.select([side < 0, side > 0], [np.nextafter(values, -np.inf),
                                                      np.nextafter(values, np.inf)], values)
    odd = rng.random(rows.shape)
    rows[odd < MISSING_SHARE] = np.nan
    rows[odd > 1 - MISSING_SHARE / 4] = np.inf
    rows[(odd > 1 - MISSING_SHARE / 2) & (odd <= 1 - MISSING_SHARE / 4)] = -np.inf
    return rows
