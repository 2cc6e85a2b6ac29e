"""An imported classifier deploys like a trained model, on the local cluster: stored by a real
`skserve import --trust-pickle --sample` (tests/classifiers.py, the Titanic passengers), its
image built offline and imported into containerd, the chart installed with it, `helm test`
passing, and /predict from the host answering the pipeline's label and probabilities.
The release is sized for the 2-core node (one pod, one worker, no batch volume)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from tests.e2e import helpers as h

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

RELEASE = "skserve"
DEPLOYMENT = "skserve-blue"
CHART = h.REPO / "helm" / "skserve"


@pytest.fixture(scope="module")
def model() -> str:
    from tests.classifiers import import_titanic

    h.require_cluster()
    return import_titanic(version="e2e")


@pytest.fixture(scope="module")
def release(model: str) -> Iterator[dict[str, Any]]:
    image, took = h.build_and_import(model)
    h.log(f"image {image}: {took}")
    ns = f"skserve-e2e-clf-{uuid.uuid4().hex[:6]}"
    h.kubectl("create", "namespace", ns)
    try:
        h.helm("install", RELEASE, str(CHART), "-n", ns,
               "--set", f"slots.blue.model={model}",
               "--set", f"slots.blue.modelVersion={image.rsplit(':', 1)[1]}",
               "--set", "slotDefaults.image.pullPolicy=Never",
               "--set", "slotDefaults.workers=1",
               "--set", "slotDefaults.resources.requests.cpu=50m",
               "--set", "slotDefaults.resources.requests.memory=256Mi",
               "--set", "slotDefaults.autoscaling.minReplicas=1",
               "--set", "batch.enabled=false", timeout=120)
        h.wait_deployment_ready(ns, DEPLOYMENT)
        ip = h.kjson("-n", ns, "get", "service", RELEASE)["spec"]["clusterIP"]
        yield {"ns": ns, "url": f"http://{ip}:80"}
    finally:
        h.helm("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "120s", timeout=180,
               check=False)
        h.kubectl("delete", "namespace", ns, "--wait=true", "--timeout=180s", timeout=200,
                  check=False)


def test_helm_test_passes_for_a_classifier(release: dict[str, Any]) -> None:
    out = h.helm("test", RELEASE, "-n", release["ns"], "--timeout", "180s", timeout=240,
                 check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"Phase:\s+Succeeded", out.stdout), out.stdout


def test_predict_answers_the_pipelines_label_and_probabilities(release: dict[str, Any],
                                                               model: str) -> None:
    from skserve import store

    status, _, meta = h.http("GET", release["url"] + "/metadata")
    assert status == 200, meta
    row = meta["input_example"]
    status, headers, body = h.http("POST", release["url"] + "/predict", row)
    assert status == 200, body
    assert headers.get("x-model-version") == model
    pipeline, _ = store.load(model)
    frame = pd.DataFrame([row])
    assert body["label"] == pipeline.predict(frame)[0]
    proba = dict(zip(meta["class_keys"], pipeline.predict_proba(frame)[0], strict=True))
    assert body["probabilities"] == pytest.approx(proba, abs=1e-9)
