"""Names the Kubernetes edge shares with the chart and the image scripts (pure).

- `fit(stem, suffix, budget)`: the chart's rule for object names (templates/_names.tpl):
  `<stem><suffix>` if it fits, else `<head of stem>-<5 hex of sha256>-<suffix>`.
- `image_tag(model)`: the image scripts' rule (hack/image/lib.sh): `demand:v3` → `demand-v3`,
  any character a tag may not hold replaced by `-`, at most 128 characters.
- `label_version(model)`: the `skserve.io/model-version` label of a model tag (a label value:
  no `:`, at most 63 characters).
- `image_for(model, like)`: the image `make image MODEL=...` builds for a model, in the
  repository of the image `like` (a slot's current image).
"""

from __future__ import annotations

import hashlib
import re

from ..errors import InvalidInput

LABEL_MAX = 63


def fit(stem: str, suffix: str, budget: int = LABEL_MAX) -> str:
    full = f"{stem}{suffix}"
    if len(full) <= budget:
        return full
    head = stem[:budget - len(suffix) - 6].rstrip("-")
    return f"{head}-{hashlib.sha256(full.encode()).hexdigest()[:5]}{suffix}"


def image_tag(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", model.replace(":", "-", 1))[:128]


def label_version(model: str) -> str:
    value = image_tag(model)[:LABEL_MAX].strip("-_.")
    if not value:
        raise InvalidInput(f"model {model!r} gives no usable label value")
    return value


def split_image(ref: str) -> tuple[str, str, str]:
    """`repo[:tag][@digest]` → (repository, tag, digest); a port in the registry host is
    not a tag."""
    ref, _, digest = ref.partition("@")
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:], digest
    return ref, "", digest


def image_for(model: str, like: str) -> str:
    """The per-model image (`<repository of like>:<image_tag(model)>`)."""
    repository, _, _ = split_image(like)
    return f"{repository}:{image_tag(model)}"
