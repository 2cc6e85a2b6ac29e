"""Alerts and dashboard: the chart's PrometheusRule and k8s/monitoring/ agree, every metric
they use is one the service (or kube-state-metrics) exports, and the PromQL parses (promtool,
when installed: `apt-get install prometheus`)."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from chart_helpers import CHART, REPO, find, render

RULES_FILE = REPO / "k8s" / "monitoring" / "prometheus-rules.yaml"
DASHBOARD = REPO / "k8s" / "monitoring" / "grafana-dashboard.json"
# What the service exports (BentoML built-ins, skserve's own) and kube-state-metrics' HPA series.
KNOWN_METRICS = {
    "bentoml_service_request_total",
    "bentoml_service_request_duration_seconds_bucket",
    "bentoml_service_request_in_progress",
    "skserve_model_batch_rows_sum",
    "skserve_model_batch_rows_count",
    "skserve_predictions_total",
    "skserve_prediction_value_bucket",
    "skserve_feature_out_of_range_total",
    "skserve_model_info",
    "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_spec_max_replicas",
}
PROMQL_WORDS = {"sum", "rate", "by", "on", "max", "histogram_quantile", "le"}


def metrics_in(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)  # drop label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # drop matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # drop ranges
    expr = re.sub(r"\bby\s*\([^)]*\)|\bon\s*\([^)]*\)", "", expr)
    names = set(re.findall(r"\b[a-z_][a-z0-9_]*\b", expr))
    return {n for n in names if "_" in n and n not in PROMQL_WORDS}


def chart_rules() -> list[dict]:
    (rule,) = find(render("monitoring.prometheusRule.enabled=true"), "PrometheusRule")
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


def file_rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES_FILE.read_text())["groups"] for r in g["rules"]]


def test_chart_and_file_rules_agree() -> None:
    chart = {r["alert"]: r for r in chart_rules()}
    plain = {r["alert"]: r for r in file_rules()}
    assert (
        set(chart)
        == set(plain)
        >= {"SkserveHighErrorRate", "SkserveHighLatencyP95", "SkserveReplicasAtMax"}
    )
    for name, r in chart.items():
        assert r["for"] == plain[name]["for"], name
        assert r["labels"] == plain[name]["labels"], name
        assert metrics_in(r["expr"]) == metrics_in(plain[name]["expr"]), name


def test_rules_use_known_metrics() -> None:
    for r in chart_rules() + file_rules():
        used = metrics_in(r["expr"])
        assert used, r["alert"]
        assert used <= KNOWN_METRICS, f"{r['alert']} uses unknown {used - KNOWN_METRICS}"


def test_chart_rules_are_scoped_to_the_release() -> None:
    for r in chart_rules():
        assert 'namespace="skserve"' in r["expr"], r["alert"]



def test_replicas_at_max_watches_exactly_the_release_hpas() -> None:
    """The HPA matcher lists the slot HPAs by name: a prefix regex would miss names that
    were shortened with a hash (long release names) and catch other releases' HPAs."""
    objs = render("monitoring.prometheusRule.enabled=true", "slots.green.enabled=true")
    (rule,) = find(objs, "PrometheusRule")
    (hpa,) = [r for g in rule["spec"]["groups"] for r in g["rules"]
              if r["alert"] == "SkserveReplicasAtMax"]
    names = sorted(h["metadata"]["name"] for h in find(objs, "HorizontalPodAutoscaler"))
    assert names == ["r1-skserve-blue", "r1-skserve-green"]
    matchers = set(re.findall(r'horizontalpodautoscaler=~"([^"]*)"', hpa["expr"]))
    assert len(matchers) == 1
    (regex,) = matchers
    assert sorted(n for n in names if re.fullmatch(regex, n)) == names
    assert not re.fullmatch(regex, "r1-skserve-loadtest-worker")


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)"
)
def test_promtool_checks_rules(tmp_path: Path) -> None:
    (rule,) = find(render("monitoring.prometheusRule.enabled=true"), "PrometheusRule")
    chart_file = tmp_path / "chart-rules.yaml"
    chart_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    for f in (RULES_FILE, chart_file):
        proc = subprocess.run(
            ["promtool", "check", "rules", str(f)], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def dashboard_exprs() -> list[str]:
    d = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in d["panels"] for t in p["targets"]]


def test_dashboard_is_well_formed() -> None:
    d = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)) >= 8
    assert {v["name"] for v in d["templating"]["list"]} == {"datasource", "namespace"}
    for p in d["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]
        assert p["datasource"]["uid"] == "${datasource}"
    boxes = {(p["gridPos"]["x"], p["gridPos"]["y"]) for p in d["panels"]}
    assert len(boxes) == len(d["panels"]), "panels overlap"


def test_dashboard_uses_known_metrics_and_covers_them() -> None:
    used: set[str] = set()
    for e in dashboard_exprs():
        m = metrics_in(e)
        assert m and m <= KNOWN_METRICS, f"unknown metric in {e}: {m - KNOWN_METRICS}"
        assert "$namespace" in e
        used |= m
    assert used == KNOWN_METRICS, f"not on the dashboard: {KNOWN_METRICS - used}"


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)"
)
def test_promtool_parses_dashboard_queries(tmp_path: Path) -> None:
    rules = [
        {"record": f"skserve:dashboard_{i}", "expr": e.replace("$namespace", ".*")}
        for i, e in enumerate(dashboard_exprs())
    ]
    f = tmp_path / "dash.yaml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        ["promtool", "check", "rules", str(f)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_request_queries_select_the_routes_the_analysis_judges() -> None:
    """Rules (file and chart) and dashboard count the same prediction routes as the rollout
    analysis (`skserve.rollout.analysis.ENDPOINTS`, V2 infer included): an alert or a panel
    that left a route out would disagree with the verdict it explains."""
    from skserve.rollout.analysis import ENDPOINTS

    request_exprs = [r["expr"] for r in file_rules() + chart_rules()] + dashboard_exprs()
    request_exprs = [e for e in request_exprs
                     if re.search(r"bentoml_service_request_(total|duration)", e)]
    assert len(request_exprs) >= 6
    for e in request_exprs:
        assert set(re.findall(r'endpoint=~"[^"]*"', e)) == {ENDPOINTS}, e


def test_latency_texts_state_the_served_buckets() -> None:
    """What the alert, the dashboard, the values and the READMEs say about the p95's error
    is what skserve serves (`skserve.metrics`): the first and last bound and the widest
    step; the alert's threshold cannot go past the last bound (histogram_quantile stops
    there, so the alert could never fire)."""
    from skserve.metrics import DURATION_BUCKETS, DURATION_ERROR
    from skserve.rollout import analysis

    stated = f"{math.ceil(DURATION_ERROR * 1000) / 10:g} %"
    assert (stated, DURATION_BUCKETS[0], DURATION_BUCKETS[-1]) == ("10.5 %", 0.003125, 30.0)
    (rule,) = [r for r in chart_rules() if r["alert"] == "SkserveHighLatencyP95"]
    (panel,) = [p for p in json.loads(DASHBOARD.read_text())["panels"]
                if "Latency" in p["title"]]
    texts = {"values.yaml": (CHART / "values.yaml").read_text(),
             "rules file": RULES_FILE.read_text(), "dashboard": panel["description"],
             "README": (REPO / "README.md").read_text()}
    texts = {k: " ".join(v.replace("#", "").split()) for k, v in texts.items()}
    for where, text in texts.items():
        assert stated in text and "3.125 ms to 30 s" in text, where
    assert stated in rule["annotations"]["description"]
    assert stated in " ".join(analysis.__doc__.split())
    schema = json.loads((CHART / "values.schema.json").read_text())
    limit = schema["properties"]["monitoring"]["properties"]["prometheusRule"]["properties"][
        "latencyP95Seconds"]
    assert limit["maximum"] == DURATION_BUCKETS[-1]
