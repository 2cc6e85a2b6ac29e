"""The project's own Prometheus metrics, each labelled with the model version.

BentoML runs prometheus_client in multiprocess mode, so these are created in the worker and
show up beside `bentoml_service_*` at `/metrics`.
"""

from __future__ import annotations

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from .schema import FeatureSchema
from .store import ModelInfo


def value_buckets(low: float | None, high: float | None, n: int = 12) -> list[float]:
    """Histogram buckets spread over the target's training range (with a margin)."""
    if low is None or high is None or not high > low:
        return [0.001, 0.01, 0.1, 1, 10, 100, 1000, 10000]
    margin = (high - low) * 0.1
    return [round(float(b), 6) for b in np.linspace(low - margin, high + margin, n)]


class ServiceMetrics:
    """Predicted values, rows scored, out-of-range inputs, batch sizes and model info."""

    def __init__(self, info: ModelInfo, schema: FeatureSchema):
        self.version = info.tag
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

    def observe_scored(self, values: np.ndarray, out_of_range: dict[str, int]) -> None:
        """After a model call that succeeded: the rows it scored, their predicted values
        and, per feature, the inputs outside the training range."""
        self.rows.inc(len(values))
        for value in values:
            self.values.observe(float(value))
        for feature, count in out_of_range.items():
            self.out_of_range.labels(self.version, feature).inc(count)
