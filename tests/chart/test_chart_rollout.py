"""The chart's side of `skserve rollout`: what the controller reads and what it relies on.

- the in-cluster HAProxy's configuration is the layout routers/haproxy.py writes for
  `skserve up` (one generator in Python, one in the chart: they must not drift);
- the monitors relabel the pods as k8s/monitoring/prometheus-scrape.yaml does, with the
  labels the controller's default --selector uses;
- the controller finds the chart's objects by the names service/skserve/rollout/naming.py
  computes, for long release names too;
- each router is one file with the same four templates;
- the objects the controller writes to are rendered without the fields it owns (ConfigMap
  data, Lease holder), and the controller Deployment runs `skserve rollout controller`.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from chart_helpers import CHART, FULLNAME, NAMESPACE, REPO, TWO_SLOTS, find, one, render

from skserve.rollout import naming
from skserve.rollout.kube import Release
from skserve.rollout.kube_target import default_selector
from skserve.rollout.routers import CHART_NAMES
from skserve.rollout.routers import haproxy as hap


@pytest.mark.parametrize("strategy,weights", [("blueGreen", {"blue": 100, "green": 0}),
                                              ("canary", {"blue": 80, "green": 20})])
def test_in_cluster_haproxy_config_is_the_local_layout(strategy: str, weights: dict) -> None:
    sets = [*TWO_SLOTS, "rollout.router=haproxy", f"rollout.strategy={strategy}"]
    if strategy == "canary":
        sets += ["rollout.weights.active=80", "rollout.weights.preview=20"]
    objs = render(*sets)
    cm = one(objs, "ConfigMap", f"{FULLNAME}-haproxy")
    values = yaml.safe_load((CHART / "values.yaml").read_text())["rollout"]["haproxy"]
    address = {s: f"{FULLNAME}-{s}.{NAMESPACE}.svc:80" for s in ("blue", "green")}
    want = hap.render_config(f":{values['port']}", address,
                             f"ipv4@0.0.0.0:{values['adminPort']}",
                             "/usr/local/etc/haproxy/versions.map", weights,
                             check_interval_ms=values["checkIntervalMs"])

    def body(text: str) -> list[str]:
        return [line for line in text.strip().splitlines() if not line.startswith("#")]

    assert body(cm["data"]["haproxy.cfg"]) == body(want)
    models = yaml.safe_load((CHART / "values.yaml").read_text())["slots"]
    assert cm["data"]["versions.map"].splitlines() == [
        f"{models['blue']['model']} be_blue", f"{models['green']['model']} be_green"]
    dep = one(objs, "Deployment", f"{FULLNAME}-haproxy")
    template = dep["spec"]["template"]
    assert template["metadata"]["annotations"]["checksum/config"]  # restart on a new config
    (c,) = template["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == \
        {"http": values["port"], "admin": values["adminPort"]}
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"  # monitor-uri of the config
    admin = one(objs, "Service", f"{FULLNAME}-haproxy-admin")
    assert admin["spec"]["clusterIP"] == "None"  # one address per HAProxy pod
    config = json.loads(one(objs, "Service", FULLNAME)["metadata"]["annotations"]
                        ["skserve.io/router-config"])
    assert config == {"adminPort": values["adminPort"],
                      "versionMap": "/usr/local/etc/haproxy/versions.map"}


def test_haproxy_restarts_on_a_new_config_not_on_runtime_state() -> None:
    """Weights, which slots run and the header map are the controller's runtime state (set
    through the runtime API): rendering other ones must not restart HAProxy's pods, which
    would cut every keep-alive client's connection mid-rollout (seen on the cluster)."""
    def checksum(*sets: str) -> tuple[str, dict]:
        objs = render(*TWO_SLOTS, "rollout.router=haproxy", *sets)
        dep = one(objs, "Deployment", f"{FULLNAME}-haproxy")
        return (dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"],
                one(objs, "ConfigMap", f"{FULLNAME}-haproxy")["data"])

    rest, rest_data = checksum()
    for sets in (["rollout.strategy=canary", "rollout.weights.active=80",
                  "rollout.weights.preview=20"],
                 ["rollout.activeSlot=green", "rollout.previewSlot=blue"],
                 ["slots.green.replicas=0", "slots.green.autoscaling.enabled=false",
                  "slots.green.model=demand:other"]):
        same, data = checksum(*sets)
        assert data != rest_data, sets  # the ConfigMap (a restarted pod's start) follows
        assert same == rest, sets
    assert checksum("rollout.haproxy.checkIntervalMs=250")[0] != rest
    assert checksum("rollout.headerMatch.name=x-version")[0] != rest


def test_monitors_relabel_like_the_plain_prometheus_job() -> None:
    objs = render("monitoring.podMonitor.enabled=true", "monitoring.serviceMonitor.enabled=true")
    (job,) = yaml.safe_load((REPO / "k8s" / "monitoring" / "prometheus-scrape.yaml").read_text())
    plain = [(r["source_labels"], r["target_label"]) for r in job["relabel_configs"]
             if "target_label" in r]
    assert job["honor_labels"] is True
    for kind, key in (("PodMonitor", "podMetricsEndpoints"), ("ServiceMonitor", "endpoints")):
        (endpoint,) = one(objs, kind, FULLNAME)["spec"][key]
        assert endpoint["honorLabels"] is True
        chart = [(r["sourceLabels"], r["targetLabel"]) for r in endpoint["relabelings"]]
        assert chart == [p for p in plain if p[1] not in ("namespace", "pod")]
    labels = {t for _, t in plain}
    # every label the controller's default selector names comes out of the relabelling
    used = set(re.findall(r"(\w+)=", default_selector("ns", "r")))
    assert used <= labels, used - labels
    # and the pods carry what is relabelled
    pod = one(objs, "Deployment", f"{FULLNAME}-blue")["spec"]["template"]["metadata"]
    assert pod["annotations"]["skserve.io/model"] == pod["labels"]["skserve.io/model-version"] \
        .replace("-", ":", 1)


@pytest.mark.parametrize("release", ["r1", "a-very-long-release-name-for-the-names-budget-x1"])
def test_the_controller_finds_the_charts_objects_by_name(release: str) -> None:
    objs = render(*TWO_SLOTS, "rollout.router=haproxy", "rolloutController.deployment.enabled=true",
                  "rolloutController.deployment.prometheusUrl=http://p:9090", release=release)
    stable = next(s for s in find(objs, "Service")
                  if s["metadata"]["labels"].get("skserve.io/service-role") == "stable")
    rel = Release(release, NAMESPACE, stable["metadata"]["name"], "haproxy")
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert ("ConfigMap", rel.rollout_object) in names and ("Lease", rel.rollout_object) in names
    assert ("Role", rel.rollout_object) in names
    assert ("Deployment", rel.haproxy) in names and ("ConfigMap", rel.haproxy) in names
    assert ("Service", rel.haproxy_admin) in names
    assert len(rel.rollout_object) <= 63 and len(rel.haproxy) <= 46


def test_naming_rules_match_the_image_scripts_and_labels() -> None:
    assert naming.image_tag("demand:v3") == "demand-v3"
    assert naming.image_tag("demand:2026_01+x") == "demand-2026_01-x"
    assert naming.image_for("demand:v4", "localhost:5000/team/skserve:demand-v3") == \
        "localhost:5000/team/skserve:demand-v4"
    assert naming.split_image("reg:5000/a/b@sha256:abc") == ("reg:5000/a/b", "", "sha256:abc")
    assert naming.label_version("m:" + "x" * 80) == ("m-" + "x" * 80)[:63]
    long = naming.fit("a" * 60, "-rollout")
    assert len(long) == 63 and long.endswith("-rollout")


def test_every_router_is_one_file_with_the_same_four_templates() -> None:
    files = sorted(p.name for p in (CHART / "templates").glob("_router-*.tpl"))
    assert files == sorted(f"_router-{name}.tpl" for name in CHART_NAMES)
    for name in CHART_NAMES:
        text = (CHART / "templates" / f"_router-{name}.tpl").read_text()
        for part in ("objects", "stableSelector", "config", "rules"):
            assert f'define "skserve.router.{name}.{part}"' in text, (name, part)
        module = REPO / "service" / "skserve" / "rollout" / "routers" / \
            f"{CHART_NAMES[name]}.py"
        assert module.exists(), module


def test_what_the_controller_writes_is_not_rendered_and_it_runs_in_the_cluster() -> None:
    objs = render(*TWO_SLOTS, "rolloutController.deployment.enabled=true",
                  "rolloutController.deployment.prometheusUrl=http://prometheus:9090")
    cm = one(objs, "ConfigMap", f"{FULLNAME}-rollout")
    assert "data" not in cm  # helm upgrade never touches the rollout's document
    lease = one(objs, "Lease", f"{FULLNAME}-rollout")
    assert lease["spec"] == {}  # nor the holder
    dep = one(objs, "Deployment", f"{FULLNAME}-rollout")
    spec = dep["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == f"{FULLNAME}-rollout"
    (c,) = spec["containers"]
    assert c["args"][:2] == ["rollout", "controller"]
    args = dict(zip(c["args"][2::2], c["args"][3::2], strict=True))
    assert args["--release"] == "r1" and args["--namespace"] == NAMESPACE
    assert args["--prometheus"] == "http://prometheus:9090"
    policy = one(objs, "NetworkPolicy", f"{FULLNAME}-rollout")
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
    assert {443, 6443} <= ports  # the API server


def test_an_in_cluster_controller_needs_prometheus() -> None:
    from chart_helpers import run_helm

    out = run_helm(["template", "r1", str(CHART), "--set",
                    "rolloutController.deployment.enabled=true"])
    assert out.returncode != 0
    assert "rolloutController.deployment.prometheusUrl" in out.stderr


def test_routing_and_deployed_records_are_rendered_for_the_controller() -> None:
    """What the controller reads back and extends: the routing on the stable Service, each
    slot's deployment record and rest replicas (the bounds it restores)."""
    objs = render(*TWO_SLOTS, "rollout.strategy=canary", "rollout.weights.active=70",
                  "rollout.weights.preview=30", "rollout.router=gatewayAPI")
    ann = one(objs, "Service", FULLNAME)["metadata"]["annotations"]
    routing = json.loads(ann["skserve.io/routing"])
    assert routing["activeSlot"] == "blue" and routing["previewSlot"] == "green"
    assert routing["weights"] == {"blue": 70, "green": 30}
    assert re.fullmatch(r"[0-9a-f]{16}", ann["skserve.io/routing-values"])
    for slot in ("blue", "green"):
        d = one(objs, "Deployment", f"{FULLNAME}-{slot}")["metadata"]["annotations"]
        deployed = json.loads(d["skserve.io/deployed"])
        assert set(deployed) == {"model", "modelVersion", "image"}
        assert json.loads(d["skserve.io/rest-replicas"]) == {"min": 2, "max": 10, "hpa": True}
