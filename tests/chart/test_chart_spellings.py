"""A constraint on a value holds for every spelling of that value: 0, "0", "0%", "00%" are one
number to Kubernetes, as are 1, "1", "1000m" and 1Gi, "1024Mi". Each case is rendered with
helm (schema and template checks); what is accepted is then checked against Kubernetes' own
schema, so the chart neither refuses a valid spelling nor passes an invalid one."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from chart_helpers import CHART, required_tool


def helm_template(tmp_path: Path, values: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return subprocess.run([str(required_tool("helm")), "template", "r1", str(CHART), "-f",
                           str(path), "--show-only", "templates/deployment.yaml",
                           "--show-only", "templates/pdb.yaml"],
                          capture_output=True, text=True, timeout=60)


def accepted(proc: subprocess.CompletedProcess[str], kind: str) -> dict:
    assert proc.returncode == 0, proc.stderr
    (obj,) = [o for o in yaml.safe_load_all(proc.stdout) if o and o["kind"] == kind]
    kubernetes_validate.validate(obj, "1.31.0", strict=True)
    return obj


def refused(proc: subprocess.CompletedProcess[str], field: str) -> None:
    assert proc.returncode != 0, f"accepted:\n{proc.stdout[:1500]}"
    assert field in proc.stderr, proc.stderr


def pdb(value: Any) -> dict:
    return {"slotDefaults": {"podDisruptionBudget": {"maxUnavailable": value}}}


@pytest.mark.parametrize("value", [0, "0", "0%", "00%", "000%", "0.0%", "0.5%", -1, "-1%",
                                   "101%", "1", " 1%"])
def test_pdb_that_would_block_drains_or_is_invalid_is_refused(tmp_path, value) -> None:
    refused(helm_template(tmp_path, pdb(value)), "/slotDefaults/podDisruptionBudget/maxUnavailable")


@pytest.mark.parametrize("value", [1, 3, "1%", "05%", "50%", "100%"])
def test_pdb_allowing_evictions_renders_as_given(tmp_path, value) -> None:
    obj = accepted(helm_template(tmp_path, pdb(value)), "PodDisruptionBudget")
    assert obj["spec"]["maxUnavailable"] == value


def rolling(surge: Any, unavailable: Any) -> dict:
    return {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}


@pytest.mark.parametrize(("surge", "unavailable"), [(0, 0), ("0%", 0), (0, "0%"), ("00%", "000%"),
                                                    (1, "101%"), ("1", 0), (-1, 1)])
def test_rolling_update_that_cannot_roll_is_refused(tmp_path, surge, unavailable) -> None:
    refused(helm_template(tmp_path, rolling(surge, unavailable)), "/rollingUpdate")


@pytest.mark.parametrize(("surge", "unavailable"), [(1, 0), ("25%", 0), (0, 1), ("0%", "25%"),
                                                    ("150%", "100%")])
def test_rolling_update_that_can_roll_renders(tmp_path, surge, unavailable) -> None:
    obj = accepted(helm_template(tmp_path, rolling(surge, unavailable)), "Deployment")
    assert obj["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": surge,
                                                        "maxUnavailable": unavailable}


def requests(**resources: Any) -> dict:
    return {"slotDefaults": {"resources": {"requests": resources}}}


@pytest.mark.parametrize(("resource", "value"), [
    ("cpu", 0), ("cpu", "0"), ("cpu", "0m"), ("cpu", "0.0"), ("cpu", ".0"), ("cpu", "000m"),
    ("cpu", "500Mi"), ("cpu", "-1"), ("cpu", "2k"),
    ("memory", 0), ("memory", "0Mi"), ("memory", "0.0Gi"), ("memory", "768m"), ("memory", "1x"),
])
def test_zero_or_misspelt_quantities_are_refused(tmp_path, resource: str, value: Any) -> None:
    refused(helm_template(tmp_path, requests(**{resource: value})),
            f"/slotDefaults/resources/requests/{resource}")


@pytest.mark.parametrize(("resource", "value"), [
    ("cpu", 1), ("cpu", 0.25), ("cpu", "0.25"), ("cpu", ".25"), ("cpu", "250m"),
    ("memory", "768Mi"), ("memory", "0.75Gi"), ("memory", 805306368), ("memory", "805306368"),
    ("memory", "800M"),
])
def test_every_spelling_of_a_valid_quantity_renders(tmp_path, resource: str, value: Any) -> None:
    obj = accepted(helm_template(tmp_path, requests(**{resource: value})), "Deployment")
    got = obj["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"][resource]
    assert str(got) == str(value)


@pytest.mark.parametrize(("resource", "asked", "limit", "ok"), [
    ("cpu", "1000m", 1, True), ("cpu", 1, "1000m", True), ("cpu", "1001m", "1", False),
    ("cpu", 1.5, "1000m", False), ("cpu", "0.5", "500m", True), ("cpu", 2, 1, False),
    ("memory", "1024Mi", "1Gi", True), ("memory", "1025Mi", "1Gi", False),
    ("memory", "1G", "1Gi", True), ("memory", "2G", "1.5Gi", False),
    ("memory", 1073741824, "1Gi", True), ("memory", "1073741825", "1Gi", False),
])
def test_a_request_above_its_limit_is_refused_in_every_spelling(
        tmp_path, resource: str, asked: Any, limit: Any, ok: bool) -> None:
    values = {"slotDefaults": {"resources": {"requests": {resource: asked},
                                             "limits": {resource: limit}}}}
    proc = helm_template(tmp_path, values)
    if ok:
        accepted(proc, "Deployment")
    else:
        refused(proc, f"resources.requests.{resource} ({asked}) is above "
                      f"resources.limits.{resource} ({limit})")


@pytest.mark.parametrize("where", ["batch", "loadtest.master", "loadtest.worker"])
def test_request_above_limit_is_refused_outside_slots_too(tmp_path, where: str) -> None:
    values: dict[str, Any] = {}
    node = values
    for key in where.split("."):
        node = node.setdefault(key, {})
    node["resources"] = {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}
    refused(helm_template(tmp_path, values), f"{where}: resources.requests.memory")


def test_hpa_bounds_are_checked_after_the_slot_overrides(tmp_path) -> None:
    values = {"slotDefaults": {"autoscaling": {"minReplicas": 4, "maxReplicas": 10}},
              "slots": {"blue": {"modelVersion": "v1", "model": "demand:v1",
                                 "autoscaling": {"maxReplicas": 3}}}}
    refused(helm_template(tmp_path, values), "autoscaling.minReplicas (4) is above "
                                             "autoscaling.maxReplicas (3)")


@pytest.mark.parametrize(("interval", "ok"), [("0s", False), ("0", False), ("0m0s", False),
                                              ("15", False), ("1x", False), ("15s", True),
                                              ("1m30s", True), ("2m", True)])
def test_scrape_interval_spellings(tmp_path, interval: str, ok: bool) -> None:
    proc = helm_template(tmp_path, {"monitoring": {"serviceMonitor": {"interval": interval}}})
    if ok:
        assert proc.returncode == 0, proc.stderr
    else:
        refused(proc, "/monitoring/serviceMonitor/interval")
