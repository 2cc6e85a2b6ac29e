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
    if "rollout.strategy=canary" in sets and "rollout.router=service" in sets:
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
        assert spec["automountServiceAccountToken"] is False, what
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
    objs = render(*sets)
    (np_,) = find(objs, "NetworkPolicy")
    sel = np_["spec"]["podSelector"]["matchLabels"]
    for what, meta, _spec in pod_specs(objs):
        assert selects(sel, meta["labels"]), f"NetworkPolicy misses {what}"
    assert np_["spec"]["policyTypes"] == ["Ingress", "Egress"]
    http, internal = np_["spec"]["ingress"]
    assert http["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert internal == {"from": [{"podSelector": {"matchLabels": sel}}]}
    # egress: DNS, and the release's own pods only
    dns, own = np_["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert own == {"to": [{"podSelector": {"matchLabels": sel}}]}


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
    "active,preview,total", [(80, 20, 10), (95, 5, 10), (100, 0, 10), (50, 50, 4)]
)
def test_service_router_canary_replica_ratio(active: int, preview: int, total: int) -> None:
    for hpa in (False, True):
        objs = render(
            *TWO_SLOTS,
            "rollout.strategy=canary",
            "rollout.router=service",
            f"rollout.weights.active={active}",
            f"rollout.weights.preview={preview}",
            f"rollout.serviceRouter.totalReplicas={total}",
            f"slotDefaults.autoscaling.enabled={str(hpa).lower()}",
            "slotDefaults.autoscaling.minReplicas=1",
        )
        want = {"blue": -(-active * total // 100), "green": -(-preview * total // 100)}
        for slot, n in want.items():
            dep = one(objs, "Deployment", f"{FULLNAME}-{slot}")
            hpas = find(objs, "HorizontalPodAutoscaler", f"{FULLNAME}-{slot}")
            if hpa and n > 0:
                (h,) = hpas
                assert h["spec"]["minReplicas"] == n
                assert "replicas" not in dep["spec"]
            else:
                assert dep["spec"]["replicas"] == n
                assert not hpas or n > 0


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


@pytest.mark.parametrize("router", ["service", "gatewayAPI", "ingressNginx"])
def test_rollout_role_is_least_privilege(router: str) -> None:
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
    granted: dict[tuple[str, str], set[str]] = {}
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
            # names it may write are the release's objects (preview Service may come later)
            assert set(rule["resourceNames"]) <= rendered | {f"{FULLNAME}-preview"}
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                granted.setdefault((g, r), set()).update(rule["verbs"])
    assert {"patch", "list", "watch"} <= granted[("", "services")]
    assert {"get", "list", "watch"} <= granted[("", "pods")]
    assert "patch" in granted[("apps", "deployments/scale")]
    assert "create" not in granted[("apps", "deployments")]
    if router == "gatewayAPI":
        assert "patch" in granted[("gateway.networking.k8s.io", "httproutes")]
    else:
        assert ("gateway.networking.k8s.io", "httproutes") not in granted
    if router == "ingressNginx":
        assert "patch" in granted[("networking.k8s.io", "ingresses")]


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
