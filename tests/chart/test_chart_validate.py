"""Every object the chart renders, over the values matrix, is valid Kubernetes.

Built-in kinds: kubernetes-validate with strict schemas (unknown fields rejected) for
Kubernetes 1.29 (the chart's kubeVersion floor), 1.31, 1.33 and the newest bundled release.
CRD kinds (HTTPRoute, ServiceMonitor, PodMonitor, PrometheusRule) have no bundled schema:
they are checked against the strict JSON schemas in schemas/, written from the upstream CRDs
for the fields the chart uses.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from chart_helpers import MATRIX, batch_job, case_sets, render, render_text

K8S_VERSIONS = ["1.29.0", "1.31.0", "1.33.0", kubernetes_validate.utils.latest_version()]
SCHEMAS = Path(__file__).parent / "schemas"
CRD_SCHEMAS = {
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproute-gateway.networking.k8s.io-v1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring.coreos.com-v1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor-monitoring.coreos.com-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring.coreos.com-v1.json",
}

# kubernetes-validate re-reads and re-parses the ~1 MB _definitions.json on every call; the
# files never change within a run, so cache the parsed JSON (same results, ~10x faster).
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents
)


@functools.cache
def _crd_validator(api_version: str, kind: str) -> jsonschema.Validator:
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[(api_version, kind)]).read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _validate(obj: dict, version: str) -> str | None:
    return _validate_json(json.dumps(obj, sort_keys=True), version)


@functools.cache
def _validate_json(text: str, version: str) -> str | None:
    """Cached by content: most objects are identical across the matrix."""
    obj = json.loads(text)
    key = (obj["apiVersion"], obj["kind"])
    if key in CRD_SCHEMAS:
        errors = sorted(_crd_validator(*key).iter_errors(obj), key=lambda e: list(e.path))
        return "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors) or None
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return f"{'/'.join(map(str, e.path))}: {e.message}"
    return None


def _objects_with_batch_job(objs: list[dict]) -> list[dict]:
    out = list(objs)
    if any(o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-batch") for o in objs):
        job = batch_job(objs)
        # The CLI creates it with generateName; the schema check needs no name, but the CRD-free
        # validator still wants a complete object.
        out.append(job)
    return out


@pytest.mark.parametrize("sets", MATRIX)
def test_matrix_renders_valid_objects(sets: tuple[str, ...]) -> None:
    objs = _objects_with_batch_job(render(*sets))
    assert len(objs) >= 10
    failures = []
    for version in K8S_VERSIONS:
        for obj in objs:
            err = _validate(obj, version)
            if err:
                failures.append(f"k8s {version} {obj['kind']}/{obj['metadata'].get('name')}: {err}")
    assert not failures, "\n".join(failures)


def test_strict_validation_catches_a_typo() -> None:
    """The validators are not vacuous: a misspelt field fails, a bad weight fails."""
    objs = render(*case_sets("canary", "gatewayAPI", True, True, True))
    dep = next(o for o in objs if o["kind"] == "Deployment")
    dep["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    assert _validate(dep, "1.31.0")
    route = next(o for o in objs if o["kind"] == "HTTPRoute")
    route["spec"]["rules"][-1]["backendRefs"][0]["weight"] = -1
    assert _validate(route, "1.31.0")


def test_kubernetes_validate_cli_strict_on_union(tmp_path: Path, kubernetes_validate_cli) -> None:
    """The CLI itself, as CI would call it, over every built-in object of the matrix at once."""
    docs: dict[str, dict] = {}
    for p in MATRIX:
        for obj in _objects_with_batch_job(render(*p.values[0])):
            if (obj["apiVersion"], obj["kind"]) in CRD_SCHEMAS:
                continue
            key = yaml.safe_dump(obj, sort_keys=True)
            docs[key] = obj
    union = tmp_path / "union.yaml"
    union.write_text(yaml.safe_dump_all(docs.values(), sort_keys=False))
    proc = subprocess.run(
        [str(kubernetes_validate_cli), "--strict", "--quiet", str(union)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ERROR" not in proc.stdout


def test_default_values_render_without_crds() -> None:
    """A plain `helm install` needs no CRDs: no Gateway API or Prometheus Operator kinds."""
    kinds = {o["kind"] for o in render()}
    assert not kinds & {"HTTPRoute", "ServiceMonitor", "PodMonitor", "PrometheusRule"}
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    } <= kinds
    assert "---" in render_text()
