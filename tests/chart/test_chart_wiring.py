"""The rendered objects are wired together: selectors, HPA targets, ports, weights, labels,
hardening, batch contract. Each assertion reads the rendered YAML, not the templates."""

from __future__ import annotations

import re

import pytest
import yaml
from chart_helpers import (
    CHART,
    FULLNAME,
    MATRIX,
    NAMESPACE,
    TWO_SLOTS,
    batch_job,
    case_sets,
    find,
    one,
    render,
)

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def pods(objs: list[dict]) -> dict[str, dict]:
    """Pod templates of the serving Deployments, by Deployment name."""
    return {
        d["metadata"]["name"]: d["spec"]["template"]
        for d in find(objs, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "server"
    }


def server_deployments(objs: list[dict]) -> list[dict]:
    return [
        d
        for d in find(objs, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "server"
    ]


def pod_specs(objs: list[dict]) -> list[tuple[str, dict, dict]]:
    """(what, pod metadata, pod spec) for every pod the release can run."""
    out = [
        (f"{o['kind']}/{o['metadata']['name']}", t["metadata"], t["spec"])
        for o in objs
        if o["kind"] in ("Deployment", "Job")
        for t in [o["spec"]["template"]]
    ]
    out += [(f"Pod/{p['metadata']['name']}", p["metadata"], p["spec"]) for p in find(objs, "Pod")]
    if find(objs, "ConfigMap", f"{FULLNAME}-batch"):
        job = batch_job(objs)
        out.append(
            ("batch job.yaml", job["spec"]["template"]["metadata"], job["spec"]["template"]["spec"])
        )
    return out


@pytest.mark.parametrize("sets", MATRIX)
def test_slot_services_select_exactly_their_slot(sets: tuple[str, ...]) -> None:
    objs = render(*sets)
    templates = pods(objs)
    assert set(templates) == {f"{FULLNAME}-blue", f"{FULLNAME}-green"}
    for name, tpl in templates.items():
        svc = one(objs, "Service", name)
        dep = one(objs, "Deployment", name)
        selector = svc["spec"]["selector"]
        assert selector == dep["spec"]["selector"]["matchLabels"]
        matched = [n for n, t in templates.items() if selects(selector, t["metadata"]["labels"])]
        assert matched == [name], f"Service {name} selects {matched}"
        # the Service's targetPort names a container port that exists
        ports = {p["name"]: p["containerPort"] for p in tpl["spec"]["containers"][0]["ports"]}
        assert svc["spec"]["ports"][0]["targetPort"] in ports


@pytest.mark.parametrize("sets", MATRIX)
def test_stable_and_preview_services(sets: tuple[str, ...]) -> None:
    objs = render(*sets)
    templates = pods(objs)
    stable = one(objs, "Service", FULLNAME)["spec"]["selector"]
    preview = one(objs, "Service", f"{FULLNAME}-preview")["spec"]["selector"]
    by_stable = sorted(n for n, t in templates.items() if selects(stable, t["metadata"]["labels"]))
    by_preview = [n for n, t in templates.items() if selects(preview, t["metadata"]["labels"])]
    if "rollout.router=haproxy" in sets:
        # clients keep calling the stable Service; HAProxy behind it picks the slot
        haproxy = one(objs, "Deployment", f"{FULLNAME}-haproxy")["spec"]["template"]
        assert by_stable == [] and selects(stable, haproxy["metadata"]["labels"])
    elif "rollout.strategy=canary" in sets and "rollout.router=service" in sets:
        # replica-ratio split: the stable Service spans both slots
        assert by_stable == [f"{FULLNAME}-blue", f"{FULLNAME}-green"]
    else:
        assert by_stable == [f"{FULLNAME}-blue"]
    assert by_preview == [f"{FULLNAME}-green"]
    # no Service selects the test pod or batch pods
    for svc in find(objs, "Service"):
        for p in find(objs, "Pod"):
            assert not selects(svc["spec"]["selector"], p["metadata"]["labels"])


@pytest.mark.parametrize("sets", MATRIX)
def test_hpa_owns_replicas(sets: tuple[str, ...]) -> None:
    objs = render(*sets)
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in find(objs, "HorizontalPodAutoscaler")}
    for dep in server_deployments(objs):
        name = dep["metadata"]["name"]
        if "slotDefaults.autoscaling.enabled=true" in sets and dep["spec"].get("replicas") != 0:
            hpa = hpas[name]
            assert hpa["spec"]["scaleTargetRef"] == {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": name,
            }
            assert "replicas" not in dep["spec"], f"{name} sets replicas while an HPA owns it"
            metrics = {
                m["resource"]["name"]: m["resource"]["target"] for m in hpa["spec"]["metrics"]
            }
            assert set(metrics) == {"cpu", "memory"}
            assert all(
                t["type"] == "Utilization" and 1 <= t["averageUtilization"] <= 100
                for t in metrics.values()
            )
            b = hpa["spec"]["behavior"]
            assert b["scaleUp"]["policies"] and b["scaleDown"]["policies"]
            assert b["scaleDown"]["stabilizationWindowSeconds"] > 0
            assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        else:
            assert name not in hpas
            assert isinstance(dep["spec"]["replicas"], int)
    assert len(hpas) == len(find(objs, "HorizontalPodAutoscaler")), "two HPAs on one target"


@pytest.mark.parametrize("sets", MATRIX)
def test_probes_and_zero_downtime(sets: tuple[str, ...]) -> None:
    objs = render(*sets)
    for dep in server_deployments(objs):
        spec = dep["spec"]
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pod = spec["template"]["spec"]
        (c,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == {"http": 3000}
        paths = {}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = c[probe]["httpGet"]
            assert get["port"] in ports or get["port"] in ports.values()
            paths[probe] = get["path"]
        assert paths == {
            "startupProbe": "/readyz",
            "readinessProbe": "/readyz",
            "livenessProbe": "/livez",
        }
        pre_stop = " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
        assert 'touch "$SKSERVE_DRAIN_FILE"' in pre_stop
        sleep = int(re.search(r"sleep (\d+)", pre_stop).group(1))
        longest_request = 5
        assert sleep > 0
        assert pod["terminationGracePeriodSeconds"] > sleep + longest_request
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["OMP_NUM_THREADS"] == "1" and env["BENTOML_DO_NOT_TRACK"] == "true"
        assert env["SKSERVE_PORT"] == "3000" and env["SKSERVE_MODEL"]
        assert env["SKSERVE_DRAIN_FILE"].startswith("/tmp/")  # on the writable scratch volume
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        vols = {v["name"]: v for v in pod["volumes"]}
        for path in ("/tmp", env["BENTOML_HOME"]):
            assert "emptyDir" in vols[mounts[path]], f"{path} must be a writable emptyDir"
        res = c["resources"]
        assert {"cpu", "memory"} <= set(res["requests"]) and {"cpu", "memory"} <= set(res["limits"])


@pytest.mark.parametrize("sets", MATRIX)
def test_pods_are_hardened(sets: tuple[str, ...]) -> None:
    objs = render(*sets)
    specs = pod_specs(objs)
    assert len(specs) >= 3
    for what, _meta, spec in specs:
        # only the rollout controller talks to the API server, with its own account
        controller = what == f"Deployment/{FULLNAME}-rollout"
        assert spec["automountServiceAccountToken"] is controller, what
        if controller:
            assert spec["serviceAccountName"] == f"{FULLNAME}-rollout"
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001, what
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", what
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, what
            assert sc["allowPrivilegeEscalation"] is False, what
            assert sc["capabilities"]["drop"] == ["ALL"], what
            assert "add" not in sc["capabilities"], what
            assert sc["runAsNonRoot"] is True, what
            assert c["resources"]["limits"], what
    sa = one(objs, "ServiceAccount", FULLNAME)
    assert sa["automountServiceAccountToken"] is False


@pytest.mark.parametrize("sets", MATRIX)
def test_network_policy_covers_every_pod(sets: tuple[str, ...]) -> None:
    """The release's policy covers every pod but HAProxy's and the controller's, which have
    their own: the HAProxy runtime API is open to the controller's pods alone."""
    objs = render(*sets)
    policies = {p["metadata"]["name"]: p for p in find(objs, "NetworkPolicy")}
    np_ = policies.pop(FULLNAME)
    sel = np_["spec"]["podSelector"]["matchLabels"]
    for what, meta, _spec in pod_specs(objs):
        covered = [n for n, p in policies.items() if np_selects(p, meta["labels"])]
        if np_selects(np_, meta["labels"]):
            covered.append(FULLNAME)
        assert len(covered) == 1, f"{what} is under {covered or 'no NetworkPolicy'}"
        component = meta["labels"].get("app.kubernetes.io/component")
        if component in ("haproxy", "rollout-controller"):
            assert covered != [FULLNAME], what
    assert np_["spec"]["policyTypes"] == ["Ingress", "Egress"]
    http, internal = np_["spec"]["ingress"]
    assert http["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert internal == {"from": [{"podSelector": {"matchLabels": sel}}]}
    # egress: DNS, and the release's own pods only
    dns, own = np_["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert own == {"to": [{"podSelector": {"matchLabels": sel}}]}
    haproxy = policies.get(f"{FULLNAME}-haproxy")
    if haproxy is not None:
        http, admin = haproxy["spec"]["ingress"]
        assert admin["ports"] == [{"port": "admin", "protocol": "TCP"}]
        (peer,) = admin["from"]
        assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == \
            "rollout-controller"


def np_selects(policy: dict, labels: dict[str, str]) -> bool:
    """A NetworkPolicy's podSelector (matchLabels and In/NotIn expressions) on pod labels."""
    sel = policy["spec"]["podSelector"]
    if not selects(sel.get("matchLabels") or {}, labels):
        return False
    for e in sel.get("matchExpressions") or []:
        value = labels.get(e["key"])
        if e["operator"] == "NotIn" and value in e["values"]:
            return False
        if e["operator"] == "In" and value not in e["values"]:
            return False
    return True


@pytest.mark.parametrize("sets", MATRIX)
def test_labels(sets: tuple[str, ...]) -> None:
    objs = render(*sets)
    for o in objs:
        labels = o["metadata"]["labels"]
        for k in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/managed-by",
            "helm.sh/chart",
        ):
            assert k in labels, f"{o['kind']}/{o['metadata']['name']} lacks {k}"
        assert o["metadata"]["namespace"] == NAMESPACE
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        for o in find(objs, kind):
            if o["metadata"]["name"] in (FULLNAME, f"{FULLNAME}-preview"):
                continue
            if o["metadata"]["labels"]["app.kubernetes.io/component"] != "server":
                continue  # e.g. the load test's worker Deployment and master Service
            slot = o["metadata"]["labels"]["skserve.io/slot"]
            assert o["metadata"]["name"] == f"{FULLNAME}-{slot}"
            assert (
                o["metadata"]["labels"]["skserve.io/model-version"]
                == VALUES["slots"][slot]["modelVersion"]
            )
    for name, tpl in pods(objs).items():
        labels = tpl["metadata"]["labels"]
        assert labels["skserve.io/slot"] == name.rsplit("-", 1)[1]
        assert "skserve.io/model-version" in labels
        assert tpl["metadata"]["annotations"]["prometheus.io/port"] == "3000"


@pytest.mark.parametrize("sets", MATRIX)
def test_pdb_per_slot(sets: tuple[str, ...]) -> None:
    objs = render(*sets)
    for dep in server_deployments(objs):
        name = dep["metadata"]["name"]
        pdbs = find(objs, "PodDisruptionBudget", name)
        if dep["spec"].get("replicas") == 0:
            assert not pdbs
            continue
        (pdb,) = pdbs
        assert pdb["spec"]["selector"] == dep["spec"]["selector"]


# --- routers and weights -------------------------------------------------------------------


def test_gateway_api_weights_headers_mirror() -> None:
    objs = render(*case_sets("canary", "gatewayAPI", True, False, True))
    route = one(objs, "HTTPRoute", FULLNAME)
    rules = route["spec"]["rules"]
    header_rules, weighted = rules[:-1], rules[-1]
    refs = {r["name"]: r["weight"] for r in weighted["backendRefs"]}
    assert refs == {f"{FULLNAME}-blue": 80, f"{FULLNAME}-green": 20}
    assert sum(refs.values()) == 100
    forced = {}
    for r in header_rules:
        (m,) = r["matches"]
        (h,) = m["headers"]
        assert h["name"] == "x-model-version" and h["type"] == "Exact"
        (ref,) = r["backendRefs"]
        forced[h["value"]] = ref["name"]
    assert forced == {
        VALUES["slots"]["blue"]["model"]: f"{FULLNAME}-blue",
        VALUES["slots"]["green"]["model"]: f"{FULLNAME}-green",
    }
    (f,) = weighted["filters"]
    assert f["type"] == "RequestMirror"
    assert f["requestMirror"]["backendRef"]["name"] == f"{FULLNAME}-green"
    assert f["requestMirror"]["percent"] == 50
    # every backendRef names a Service the chart renders, on its port
    services = {s["metadata"]["name"]: s["spec"]["ports"][0]["port"] for s in find(objs, "Service")}
    for r in rules:
        for ref in r["backendRefs"]:
            assert services[ref["name"]] == ref["port"]


def test_gateway_api_blue_green_is_all_or_nothing() -> None:
    objs = render(
        *case_sets("blueGreen", "gatewayAPI", True, False, False),
        "rollout.activeSlot=green",
        "rollout.previewSlot=blue",
    )
    weighted = one(objs, "HTTPRoute", FULLNAME)["spec"]["rules"][-1]
    assert {r["name"]: r["weight"] for r in weighted["backendRefs"]} == {
        f"{FULLNAME}-green": 100,
        f"{FULLNAME}-blue": 0,
    }
    assert "filters" not in weighted


@pytest.mark.parametrize("strategy,weight", [("canary", 20), ("blueGreen", 0)])
def test_ingress_nginx_canary(strategy: str, weight: int) -> None:
    objs = render(*case_sets(strategy, "ingressNginx", True, False, False))
    main = one(objs, "Ingress", FULLNAME)
    canary = one(objs, "Ingress", f"{FULLNAME}-canary")
    a = canary["metadata"]["annotations"]
    assert a["nginx.ingress.kubernetes.io/canary"] == "true"
    assert a["nginx.ingress.kubernetes.io/canary-weight"] == str(weight)
    assert a["nginx.ingress.kubernetes.io/canary-by-header"] == "x-model-version"
    assert (
        a["nginx.ingress.kubernetes.io/canary-by-header-value"] == VALUES["slots"]["green"]["model"]
    )
    assert "nginx.ingress.kubernetes.io/canary" not in (main["metadata"].get("annotations") or {})

    def backend(ing: dict) -> str:
        return ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]

    assert backend(main) == FULLNAME
    assert backend(canary) == f"{FULLNAME}-green"
    # same host and path, or ingress-nginx ignores the canary
    assert main["spec"]["rules"][0].get("host") == canary["spec"]["rules"][0].get("host")


@pytest.mark.parametrize(
    "active,preview,total", [(90, 10, 10), (80, 20, 10), (75, 25, 10), (95, 5, 10),
                             (50, 50, 4), (99, 1, 3)]
)
@pytest.mark.parametrize("hpa", [True, False])
def test_service_router_canary_replica_ratio(active: int, preview: int, total: int,
                                             hpa: bool) -> None:
    """The chart's static canary split is the one the rollout controller makes
    (scaling.split): the canary pinned to max(1, floor(w x total / 100)) pods, the active
    slot the rest as its minimum. 90/10 with autoscaling is 1:9 (10 %), not 2:9 (18 %)."""
    from skserve.rollout import scaling

    objs = render(
        *TWO_SLOTS,
        "rollout.strategy=canary",
        "rollout.router=service",
        f"rollout.weights.active={active}",
        f"rollout.weights.preview={preview}",
        f"rollout.serviceRouter.totalReplicas={total}",
        f"slotDefaults.autoscaling.enabled={str(hpa).lower()}",
        "slotDefaults.autoscaling.minReplicas=2",
        "slotDefaults.replicas=2",
    )
    rest = {s: scaling.Rest(2, 10 if hpa else 2, hpa) for s in ("blue", "green")}
    want = scaling.split({"blue": active, "green": preview}, "blue", "green", 2, rest,
                         ratio_total=total)
    for slot, scale in want.items():
        dep = one(objs, "Deployment", f"{FULLNAME}-{slot}")
        if hpa:
            (h,) = find(objs, "HorizontalPodAutoscaler", f"{FULLNAME}-{slot}")
            assert (h["spec"]["minReplicas"], h["spec"]["maxReplicas"]) == (scale.min, scale.max)
            assert "replicas" not in dep["spec"]  # the HPA owns them
        else:
            assert dep["spec"]["replicas"] == scale.replicas
    if preview == 10 and total == 10:  # the example: 10 % at rest, not 18 %
        assert want["green"].max == 1 and want["blue"].min == 9


def test_canary_at_weight_0_and_idle_slots_run_no_pods() -> None:
    """A slot that is neither active nor taking traffic is idle: 0 replicas, its HPA
    (rendered, inactive at 0) and no PDB; a rollout deploys into it."""
    objs = render("slots.green.enabled=true")
    dep = one(objs, "Deployment", f"{FULLNAME}-green")
    assert dep["spec"]["replicas"] == 0
    assert find(objs, "HorizontalPodAutoscaler", f"{FULLNAME}-green")
    assert not find(objs, "PodDisruptionBudget", f"{FULLNAME}-green")
    assert "replicas" not in one(objs, "Deployment", f"{FULLNAME}-blue")["spec"]
    preview = one(objs, "Service", f"{FULLNAME}-preview")  # ready for the slot under test
    assert preview["spec"]["selector"]["skserve.io/slot"] == "green"


def test_blue_green_service_switch() -> None:
    """Promotion = flip activeSlot: the stable Service then selects green only."""
    before = render(*TWO_SLOTS)
    after = render(
        "slots.green.enabled=true", "rollout.activeSlot=green", "rollout.previewSlot=blue"
    )
    assert one(before, "Service", FULLNAME)["spec"]["selector"]["skserve.io/slot"] == "blue"
    assert one(after, "Service", FULLNAME)["spec"]["selector"]["skserve.io/slot"] == "green"
    # the Deployments themselves do not change on a switch (no pod restarts)
    for slot in ("blue", "green"):
        a = one(before, "Deployment", f"{FULLNAME}-{slot}")
        b = one(after, "Deployment", f"{FULLNAME}-{slot}")
        assert a["spec"]["template"] == b["spec"]["template"]


def test_weights_always_add_to_100_in_rendered_routes() -> None:
    for p in MATRIX:
        objs = render(*p.values[0])
        for route in find(objs, "HTTPRoute"):
            assert sum(r["weight"] for r in route["spec"]["rules"][-1]["backendRefs"]) == 100


# --- RBAC ------------------------------------------------------------------------------------


@pytest.mark.parametrize("router", ["service", "gatewayAPI", "ingressNginx", "haproxy"])
def test_rollout_role_is_least_privilege(router: str) -> None:
    """Structure: bound to the controller's account only, no wildcard, no secrets, no
    delete or escalation, every write limited to the release's objects by name. (That the
    verbs are exactly the code's calls: test_chart_rbac.py.)"""
    objs = render(*case_sets("canary", router, True, False, False))
    role = one(objs, "Role", f"{FULLNAME}-rollout")
    binding = one(objs, "RoleBinding", f"{FULLNAME}-rollout")
    sa = one(objs, "ServiceAccount", f"{FULLNAME}-rollout")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}
    ]
    rendered = {o["metadata"]["name"] for o in objs}
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field]
        assert "secrets" not in rule["resources"]
        assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(
            rule["verbs"]
        )
        writes = {"patch", "update", "create"} & set(rule["verbs"])
        if writes and rule["resources"] != ["events"]:
            assert rule.get("resourceNames"), f"unrestricted write: {rule}"
            assert set(rule["resourceNames"]) <= rendered, rule
        if "get" in rule["verbs"]:
            assert rule.get("resourceNames"), f"unrestricted read: {rule}"


# --- batch -----------------------------------------------------------------------------------


def test_batch_configmap_contract() -> None:
    objs = render(
        "batch.instanceCount=4",
        "batch.parallelism=3",
        "batch.maxConcurrentJobs=5",
        "batch.quotaHeadroom=2",
    )
    cm = one(objs, "ConfigMap", f"{FULLNAME}-batch")
    assert cm["metadata"]["labels"]["app.kubernetes.io/component"] == "batch"
    assert set(cm["data"]) == {"job.yaml", "maxConcurrentJobs"}
    assert cm["data"]["maxConcurrentJobs"] == "5"
    job = yaml.safe_load(cm["data"]["job.yaml"])
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["generateName"] == f"{FULLNAME}-batch-"
    assert "name" not in job["metadata"]
    assert job["metadata"]["labels"]["skserve.io/batch"] == "true"
    s = job["spec"]
    assert s["completionMode"] == "Indexed"
    assert (s["completions"], s["parallelism"]) == (4, 3)
    for k in ("backoffLimitPerIndex", "ttlSecondsAfterFinished", "activeDeadlineSeconds"):
        assert isinstance(s[k], int)
    pod = s["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (c,) = pod["containers"]
    assert c["name"] == "batch"
    assert [*c["command"], *c["args"]] == [
        "skserve",
        "batch",
        "run",
        "--input",
        "/data/input",
        "--output",
        "/data/output",
    ]
    deployment = one(objs, "Deployment", f"{FULLNAME}-blue")
    assert c["image"] == deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert {e["name"]: e["value"] for e in c["env"]}["SKSERVE_MODEL"] == VALUES["slots"]["blue"][
        "model"
    ]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    pvc = vols[mounts["/data"]]["persistentVolumeClaim"]["claimName"]
    one(objs, "PersistentVolumeClaim", pvc)
    assert "emptyDir" in vols[mounts["/tmp"]]
    quota = one(objs, "ResourceQuota", f"{FULLNAME}-batch")
    assert quota["spec"]["hard"] == {"count/jobs.batch": "7"}


def test_batch_off_renders_no_batch_objects() -> None:
    objs = render("batch.enabled=false")
    assert not [
        o for o in objs if o["metadata"]["labels"].get("app.kubernetes.io/component") == "batch"
    ]


def test_batch_existing_claim() -> None:
    objs = render("batch.persistence.existingClaim=my-data")
    assert not find(objs, "PersistentVolumeClaim")
    vols = batch_job(objs)["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "my-data"}} in vols


# --- chart test hook -------------------------------------------------------------------------


def test_helm_test_pod_calls_readyz_and_predict() -> None:
    objs = render()
    (pod,) = find(objs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (c,) = pod["spec"]["containers"]
    script = c["args"][0]
    compile(script, "test-predict", "exec")  # the embedded Python is at least valid syntax
    assert f"http://{FULLNAME}:80" in script
    for call in ('"/readyz"', '"/metadata"', '"/predict"', "x-model-version"):
        assert call in script


def test_topology_spread_selects_own_slot() -> None:
    objs = render(*TWO_SLOTS)
    for name, tpl in pods(objs).items():
        (tsc,) = tpl["spec"]["topologySpreadConstraints"]
        assert tsc["whenUnsatisfiable"] == "ScheduleAnyway"
        sel = tsc["labelSelector"]["matchLabels"]
        matched = [n for n, t in pods(objs).items() if selects(sel, t["metadata"]["labels"])]
        assert matched == [name]


def test_max_body_bytes_reaches_the_server_env() -> None:
    """slotDefaults/slots.<name>.maxBodyBytes become SKSERVE_MAX_BODY_BYTES as an exact
    integer (helm would print a large number as 4.194304e+06); unset, the server derives it."""

    def limits(*sets: str) -> dict[str, str | None]:
        return {name: {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
                .get("SKSERVE_MAX_BODY_BYTES") for name, pod in pods(render(*sets)).items()}

    assert set(limits(*TWO_SLOTS).values()) == {None}
    assert sorted(limits(*TWO_SLOTS, "slotDefaults.maxBodyBytes=4194304",
                         "slots.green.maxBodyBytes=16777216").values()) == ["16777216", "4194304"]


def test_connection_bounds_reach_the_server_env() -> None:
    """slotDefaults/slots.<name>.connections become SKSERVE_MAX_CONNECTION_AGE and
    SKSERVE_MAX_CONNECTION_REQUESTS, merged key by key."""

    def bounds(*sets: str) -> dict[str, tuple[str | None, str | None]]:
        out = {}
        for name, pod in pods(render(*sets)).items():
            env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
            out[name] = (env.get("SKSERVE_MAX_CONNECTION_AGE"),
                         env.get("SKSERVE_MAX_CONNECTION_REQUESTS"))
        return out

    assert set(bounds(*TWO_SLOTS).values()) == {("10", "0")}
    assert sorted(bounds(*TWO_SLOTS, "slotDefaults.connections.maxRequests=1000",
                         "slots.green.connections.maxAgeSeconds=5").values()) == [
        ("10", "1000"), ("5", "1000")]
