"""The project's own Prometheus metrics, each labelled with the model version.

BentoML runs prometheus_client in multiprocess mode, so these are created in the worker and
show up beside `bentoml_service_*` at `/metrics`.

What a model's answers look like, per version, for comparing versions in a rollout:
- regressors: `skserve_prediction_value` (histogram over the target's training range);
- classifiers: `skserve_predicted_class_total{class}` (rows per predicted class: the class
  mix is its rate by class over the sum) and, with predict_proba,
  `skserve_prediction_confidence_ratio` (histogram of the top class's probability).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from .outputs import Scores, Task
from .schema import FeatureSchema
from .store import ModelInfo


def duration_buckets(low: float, high: float, factor: float, digits: int = 4) -> list[float]:
    """Upper bounds `factor` apart from `low` up to `high` (seconds), rounded to `digits`
    significant digits: BentoML's exponential buckets (`metrics.duration` min/max/factor)
    without their float drift, so a label reads le="0.05", not "0.0499999999999999", and a
    threshold of 0.05 s or 0.1 s is a bound exactly."""
    bounds, k = [], 0
    while low * factor ** k < high:
        bounds.append(float(f"{low * factor ** k:.{digits}g}"))
        k += 1
    return [*bounds, high]


# Bounds of BentoML's request-duration histogram (`bentoml_service_request_duration_seconds`,
# set through its `metrics.duration.buckets`): 2**(1/7) apart from 3.125 ms to 30 s (the
# request timeout), 94 bounds and +Inf. A quantile read from buckets lies in the same bucket
# as the true one, so between 3.125 ms and 30 s it is less than DURATION_ERROR (10.5 %) off:
# the rollout's latency check reports that bucket, the p95 alert interpolates inside it.
# BentoML's default bounds are up to 2.5x apart (a p95 of 1046 ms read as 2425 ms). 50 ms
# (the rollout's p95 floor), 100 ms (the alert's default) and their doublings are bounds.
# The cost (series per pod, /metrics size and scrape time, CPU): BENCHMARKS.md.
DURATION_BUCKETS = duration_buckets(0.05 / 16, 30.0, 2 ** (1 / 7))
DURATION_ERROR = max(b / a for a, b in pairwise(DURATION_BUCKETS)) - 1

# The top class's probability is at least 1/classes: finer where decisions are made.
CONFIDENCE_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9,
                      0.95, 0.99, 1.0]


def value_buckets(low: float | None, high: float | None, n: int = 12) -> list[float]:
    """Histogram buckets spread over the target's training range (with a margin)."""
    if low is None or high is None or not high > low:
        return [0.001, 0.01, 0.1, 1, 10, 100, 1000, 10000]
    margin = (high - low) * 0.1
    return [round(float(b), 6) for b in np.linspace(low - margin, high + margin, n)]


class ServiceMetrics:
    """Predicted values or classes, rows scored, out-of-range inputs, batch sizes and model
    info."""

    def __init__(self, info: ModelInfo, schema: FeatureSchema, task: Task):
        self.version = info.tag
        self.task = task
        if task.is_classifier:
            classes = Counter(
                "skserve_predicted_class", "Rows scored, by predicted class (the label's key: "
                "text as it is, other labels as JSON).", ["model_version", "class"])
            # every class exported from the start (zeros), so a class mix is complete at once
            self.classes = {label: classes.labels(self.version, key)
                            for label, key in zip(task.classes, task.keys, strict=True)}
            self.confidence = Histogram(
                "skserve_prediction_confidence_ratio",
                "Probability of the predicted top class (predict_proba's row maximum).",
                ["model_version"], buckets=CONFIDENCE_BUCKETS,
            ).labels(self.version) if task.has_proba else None
        else:
            self.values = Histogram(
                "skserve_prediction_value", "Predicted values of the model's target.",
                ["model_version"], buckets=value_buckets(schema.target_min, schema.target_max),
            ).labels(self.version)
        self.rows = Counter(
            "skserve_predictions", "Rows scored by the model.", ["model_version"],
        ).labels(self.version)
        self.out_of_range = Counter(
            "skserve_feature_out_of_range",
            "Input values outside the range seen in training, per feature (drift signal).",
            ["model_version", "feature"],
        )
        self.batch_rows = Histogram(
            "skserve_model_batch_rows", "Rows per model call after merging concurrent requests.",
            ["model_version"], buckets=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
        ).labels(self.version)
        info_gauge = Gauge(
            "skserve_model_info", "The served model (always 1).",
            ["model_version", "model_name", "family", "dataset_sha256"],
            multiprocess_mode="max",
        )
        info_gauge.labels(self.version, info.name, str(info.metadata.get("family", "")),
                          str(info.metadata.get("dataset", {}).get("sha256", ""))[:12]).set(1)
        for feature in schema.names:  # export zeros so rates work before the first drift
            self.out_of_range.labels(self.version, feature)

    def observe_call(self, rows: int) -> None:
        """Before a model call: its rows (every call, also one that then fails)."""
        self.batch_rows.observe(rows)

    def observe_scored(self, scores: Scores, out_of_range: dict[str, int]) -> None:
        """After a model call that succeeded: the rows it scored, their predicted values
        (or classes and top-class probabilities) and, per feature, the inputs outside the
        training range."""
        self.rows.inc(len(scores))
        if self.task.is_classifier:
            labels, counts = np.unique(np.asarray(scores.values), return_counts=True)
            for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
                self.classes[label].inc(count)
            if self.confidence is not None:
                for p in scores.confidence().tolist():
                    self.confidence.observe(p)
        else:
            for value in scores.values.tolist():
                self.values.observe(value)
        for feature, count in out_of_range.items():
            self.out_of_range.labels(self.version, feature).inc(count)
