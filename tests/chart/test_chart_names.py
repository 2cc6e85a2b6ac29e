"""Every name the chart renders, and every name Kubernetes derives from it (ReplicaSets, pods,
Indexed Job hostnames, the batch CLI's Job names), fits its limit with the longest release
name Helm allows (53 characters) and the longest slot names the schema allows (20), stays
unique when shortened, and every reference between objects still finds its target."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from chart_helpers import CHART, batch_job, find, render, run_helm
from k8s_names import MAX_COMPLETIONS, label_problems, problems

from skserve.batch import jobs

LONGEST_RELEASE = "demand-forecast-production-eu-west-nightly-batch-2026"
SLOT_A, SLOT_B = "demand-2026q4-blue-a", "demand-2026q4-green1"
SCHEMA = yaml.safe_load((CHART / "values.schema.json").read_text())


def test_the_names_under_test_are_the_longest_allowed() -> None:
    assert len(LONGEST_RELEASE) == 53  # helm refuses longer release names
    assert run_helm(["template", LONGEST_RELEASE + "x", str(CHART)]).returncode != 0
    slot = SCHEMA["definitions"]["slotName"]
    assert len(SLOT_A) == len(SLOT_B) == slot["maxLength"] == 20
    assert re.match(slot["pattern"], SLOT_A) and re.match(slot["pattern"], SLOT_B)
    assert not re.match(slot["pattern"], SLOT_A + "x")


def _values(tmp: Path, router: str) -> str:
    def slot(version: str) -> dict:
        return {"enabled": True, "model": f"demand:{version}", "modelVersion": f"demand-{version}",
                "autoscaling": {"enabled": True}, "podDisruptionBudget": {"enabled": True}}

    values = {
        "slots": {"blue": {"enabled": False}, SLOT_A: slot("v1"), SLOT_B: slot("v2")},
        "rollout": {"strategy": "canary", "router": router, "activeSlot": SLOT_A,
                    "previewSlot": SLOT_B, "weights": {"active": 90, "preview": 10}},
        "batch": {"enabled": True}, "loadtest": {"enabled": True}, "tests": {"enabled": True},
        "monitoring": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True},
                       "prometheusRule": {"enabled": True}},
    }
    if router == "gatewayAPI":
        values["rollout"]["mirror"] = {"enabled": True, "slot": SLOT_B, "percent": 10}
    path = tmp / f"longest-{router}.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


ROUTERS = ["service", "gatewayAPI", "ingressNginx"]


@pytest.fixture(scope="module")
def longest(tmp_path_factory) -> dict[str, list[dict]]:
    tmp = tmp_path_factory.mktemp("values")
    return {r: render(values_files=(_values(tmp, r),), release=LONGEST_RELEASE) for r in ROUTERS}


def _pod_templates(obj: dict) -> list[dict]:
    if obj["kind"] in ("Deployment", "Job"):
        return [obj["spec"]["template"]]
    return [obj] if obj["kind"] == "Pod" else []


@pytest.mark.parametrize("router", ROUTERS)
def test_every_name_and_derived_name_fits(longest, router: str) -> None:
    objs = longest[router]
    found = []
    for o in objs:
        found += problems(o["kind"], o["metadata"]["name"])
        found += label_problems(f"{o['kind']}/{o['metadata']['name']}", o["metadata"]["labels"])
        for tpl in _pod_templates(o):
            found += label_problems(f"pods of {o['metadata']['name']}", tpl["metadata"]["labels"])
        selector = (o.get("spec") or {}).get("selector") or {}
        found += label_problems(f"{o['kind']} selector", selector.get("matchLabels", selector))
    # the batch CLI's Jobs, made from the chart's template with the most indexes a Job can have
    template = batch_job(objs)
    prefix = template["metadata"]["generateName"]
    name = jobs.new_name(template, datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "zz99",
                         MAX_COMPLETIONS)
    assert name.startswith(prefix), "the CLI had to cut the chart's prefix: budgets disagree"
    found += problems("Job", name, MAX_COMPLETIONS)
    found += label_problems("batch Job pods", template["spec"]["template"]["metadata"]["labels"])
    assert not found, "\n".join(found)
    # the names were long enough to need shortening, and kept their suffix readable
    deployments = [d["metadata"]["name"] for d in find(objs, "Deployment")]
    for slot in (SLOT_A, SLOT_B, "loadtest-worker"):
        shortened = rf"{LONGEST_RELEASE[:10]}.*-[0-9a-f]{{5}}-{slot}"
        assert len([n for n in deployments if re.fullmatch(shortened, n)]) == 1


@pytest.mark.parametrize("router", ROUTERS)
def test_names_are_unique_and_references_resolve(longest, router: str) -> None:
    objs = longest[router]
    keys = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(keys) == len(set(keys))
    names = {k: {o["metadata"]["name"] for o in find(objs, k)} for k, _ in keys}
    for hpa in find(objs, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] in names["Deployment"]
    templates = [t for o in objs for t in _pod_templates(o)]
    for svc in find(objs, "Service"):
        selector = svc["spec"]["selector"].items()
        assert any(all(t["metadata"]["labels"].get(k) == v for k, v in selector)
                   for t in templates), f"Service {svc['metadata']['name']} selects no pod"
    for route in find(objs, "HTTPRoute"):
        refs = [r["name"] for rule in route["spec"]["rules"] for r in rule["backendRefs"]]
        refs += [f["requestMirror"]["backendRef"]["name"] for rule in route["spec"]["rules"]
                 for f in rule.get("filters", [])]
        assert set(refs) <= names["Service"]
    for ing in find(objs, "Ingress"):
        backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
        assert backend in names["Service"]
    (role,) = find(objs, "Role")
    (binding,) = find(objs, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert {s["name"] for s in binding["subjects"]} <= names["ServiceAccount"]
    rendered = {n for ns in names.values() for n in ns}
    for rule in role["rules"]:
        assert set(rule.get("resourceNames", [])) <= rendered, rule
    worker = next(d for d in find(objs, "Deployment") if "loadtest-worker" in d["metadata"]["name"])
    args = worker["spec"]["template"]["spec"]["containers"][0]["args"]
    master = next(a.split("=", 1)[1] for a in args if a.startswith("--master-host="))
    assert master in names["Service"] and master in names["Job"]
    (test_pod,) = find(objs, "Pod")
    stable = next(s["metadata"]["name"] for s in find(objs, "Service")
                  if s["metadata"]["labels"].get("skserve.io/service-role") == "stable")
    assert f"http://{stable}:80" in test_pod["spec"]["containers"][0]["args"][0]
    claims = [v["persistentVolumeClaim"]["claimName"]
              for v in batch_job(objs)["spec"]["template"]["spec"]["volumes"]
              if "persistentVolumeClaim" in v]
    assert set(claims) <= names["PersistentVolumeClaim"]
    (rule,) = find(objs, "PrometheusRule")
    expr = next(r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]
                if r["alert"] == "SkserveReplicasAtMax")
    regex = re.search(r'horizontalpodautoscaler=~"([^"]*)"', expr).group(1)
    assert {n for n in names["HorizontalPodAutoscaler"] if re.fullmatch(regex, n)} == names[
        "HorizontalPodAutoscaler"]


def test_shortened_names_of_two_releases_do_not_collide(tmp_path: Path) -> None:
    """Two release names that differ only past the cut get different objects (the hash)."""
    values = (_values(tmp_path, "ingressNginx"),)
    other = LONGEST_RELEASE[:-1] + "7"
    a, b = ({(o["kind"], o["metadata"]["name"]) for o in render(values_files=values, release=r)}
            for r in (LONGEST_RELEASE, other))
    assert len(a) == len(b) and not a & b


def test_short_names_are_left_alone() -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in render("loadtest.enabled=true")}
    assert {("Deployment", "r1-skserve-blue"), ("Service", "r1-skserve"),
            ("Job", "r1-skserve-loadtest-master"), ("Pod", "r1-skserve-test-predict"),
            ("ConfigMap", "r1-skserve-batch")} <= names


@pytest.mark.parametrize("override", ["fullnameOverride", "nameOverride"])
def test_longest_overrides_fit(override: str) -> None:
    objs = render(f"{override}={'n' * 63}", "loadtest.enabled=true", "slots.green.enabled=true",
                  "rollout.previewSlot=green")
    found = [p for o in objs for p in problems(o["kind"], o["metadata"]["name"])]
    job = jobs.new_name(batch_job(objs), datetime(2026, 1, 1, tzinfo=UTC), "ab12", MAX_COMPLETIONS)
    assert not found + problems("Job", job, MAX_COMPLETIONS), "\n".join(found)


@pytest.mark.parametrize(("release", "why"), [("1-demand", "a letter first"),
                                              ("demand.eu", "no '.'")])
def test_a_release_name_that_cannot_name_a_service_is_refused(release: str, why: str) -> None:
    """Helm accepts these release names, but Services must be DNS-1035 labels."""
    proc = run_helm(["template", release, str(CHART)])
    assert proc.returncode != 0
    assert f'release name "{release}"' in proc.stderr and why in proc.stderr
    assert "fullnameOverride" in proc.stderr
    assert run_helm(["template", release, str(CHART), "--set", "fullnameOverride=demand"]
                    ).returncode == 0
