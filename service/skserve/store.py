"""BentoML's model store: where trained models and their schemas live.

`SKSERVE_MODEL_STORE` points at another store folder (e.g. one baked read-only into an image
while `BENTOML_HOME` is a writable scratch volume).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import bentoml

from .errors import InvalidInput, ModelNotFound
from .schema import FeatureSchema

DEFAULT_MODEL = "demand:latest"


def use_store_from_env() -> None:
    """Point BentoML at `$SKSERVE_MODEL_STORE` if set; call before any store access."""
    path = os.environ.get("SKSERVE_MODEL_STORE")
    if path:
        from bentoml._internal.configuration.containers import BentoMLContainer
        from bentoml._internal.models import ModelStore

        # `bentoml serve` builds its store before importing the service: replace both.
        BentoMLContainer.model_store_dir.set(path)
        BentoMLContainer.model_store.set(ModelStore(path))


@dataclass(frozen=True)
class ModelInfo:
    """A stored model's tag and metadata, without loading the estimator."""

    name: str
    version: str
    labels: dict[str, str]
    metadata: dict[str, Any]

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def schema(self) -> FeatureSchema:
        return FeatureSchema.from_dict(self.metadata["schema"])

    @property
    def task(self) -> str:
        """`regression` or `classification` (models saved before tasks existed: regression)."""
        return str(self.metadata.get("task", "regression"))

    @property
    def classes(self) -> list[Any]:
        """A classifier's labels in the order of its `predict_proba` columns (JSON types);
        empty for a regressor."""
        return list(self.metadata.get("classes") or [])


def _info(model: bentoml.Model) -> ModelInfo:
    return ModelInfo(model.tag.name, str(model.tag.version), dict(model.info.labels),
                     dict(model.info.metadata))


def get_info(tag: str = DEFAULT_MODEL) -> ModelInfo:
    """The stored model's info; raises ModelNotFound naming the tag when it is not there.

    Read through BentoML's model store object (what `bentoml.models.get` reads too) rather
    than `bentoml.models`, whose import brings BentoML's cloud client and analytics: about
    0.35 s of every `skserve serve` start for reading one YAML file."""
    use_store_from_env()
    from bentoml._internal.configuration.containers import BentoMLContainer

    try:
        return _info(BentoMLContainer.model_store.get().get(tag))
    except bentoml.exceptions.NotFound:
        # Not BentoML's text: it tells the user to `bentoml models pull`, which skserve
        # never does.
        raise ModelNotFound(f"model {tag!r} is not in the model store (`skserve models` "
                            "lists the stored ones)") from None


def load(tag: str = DEFAULT_MODEL) -> tuple[Any, ModelInfo]:
    """The fitted pipeline and its info."""
    info = get_info(tag)
    return bentoml.sklearn.load_model(info.tag), info


def has_model(name: str) -> bool:
    use_store_from_env()
    return any(m.tag.name == name for m in bentoml.models.list())


def check_tag(name: str, version: str | None = None) -> None:
    """Refuse a model name or version BentoML would refuse, before any work is done."""
    try:
        bentoml.Tag(name, version)
    except ValueError as exc:
        raise InvalidInput(f"model name {name!r}" + (f" or version {version!r}" if version
                           else "") + f": {exc}") from None


def save(name: str, pipeline: Any, metadata: dict[str, Any], labels: dict[str, str],
         version: str | None = None) -> ModelInfo:
    """Save a fitted pipeline with its metadata; returns the new tag."""
    use_store_from_env()
    check_tag(name, version)
    tag = f"{name}:{version}" if version else name
    model = bentoml.sklearn.save_model(tag, pipeline, labels=labels, metadata=metadata,
                                       signatures={"predict": {"batchable": True}})
    return _info(model)
