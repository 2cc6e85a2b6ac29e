"""`image.digest` pins every serving image the release can run: serving pods, the batch Job
template and the `helm test` pod; the load test, the rollout controller and the haproxy
router's HAProxy run their own images (the serving images carry neither Locust nor the
Kubernetes client), pinned by their own `image.digest`. A digest wins over every tag."""

from __future__ import annotations

import pytest
from chart_helpers import CHART, batch_job, case_sets, render, run_helm

DIGEST = "sha256:" + "0123456789abcdef" * 4
OTHER = "sha256:" + "fedcba9876543210" * 4
EVERYTHING = (*case_sets("canary", "gatewayAPI", True, True, True), "loadtest.enabled=true",
              "rolloutController.deployment.enabled=true",
              "rolloutController.deployment.prometheusUrl=http://prometheus:9090")
JOBS = {"loadtest": "loadtest", "controller": "rolloutController.deployment"}


def is_job(what: str) -> bool:
    return "loadtest" in what or "rollout" in what


def images(objs: list[dict]) -> dict[str, str]:
    """{what: image} for every container of every pod the release can run."""
    specs = [(f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
             for o in objs if o["kind"] in ("Deployment", "Job")]
    specs += [(f"Pod/{o['metadata']['name']}", o["spec"]) for o in objs if o["kind"] == "Pod"]
    specs.append(("batch job.yaml", batch_job(objs)["spec"]["template"]["spec"]))
    return {f"{what} {c['name']}": c["image"] for what, spec in specs
            for c in spec.get("initContainers", []) + spec["containers"]}


def test_without_a_digest_every_image_is_tagged() -> None:
    found = images(render(*EVERYTHING))
    assert len(found) == 7  # 2 slots, the batch Job, the test pod, load test master and
    # worker, the rollout controller
    assert all("@" not in i and ":" in i for i in found.values()), found


def test_a_digest_pins_every_serving_image_in_the_release() -> None:
    found = images(render(*EVERYTHING, f"image.digest={DIGEST}",
                          "slotDefaults.image.tag=ignored-tag"))
    serving = {k: v for k, v in found.items() if not is_job(k)}
    assert set(serving.values()) == {f"localhost/skserve@{DIGEST}"}, found


@pytest.mark.parametrize("job", sorted(JOBS))
def test_jobs_run_their_own_image_by_default(job: str) -> None:
    """`hack/image/build.sh --<job>` builds localhost/skserve-<job>:<skserve version>, the
    chart's appVersion; the job's own digest pins it."""
    app_version = (CHART / "Chart.yaml").read_text().split("appVersion:")[1].split()[0]
    mine = {"loadtest": "loadtest", "controller": "rollout"}[job]
    found = images(render(*EVERYTHING))
    assert {v for k, v in found.items() if mine in k} == {
        f"localhost/skserve-{job}:{app_version.strip(chr(34))}"}, found
    pinned = images(render(*EVERYTHING, f"{JOBS[job]}.image.digest={DIGEST}",
                           f"{JOBS[job]}.image.repository=registry.example/{job}"))
    assert {v for k, v in pinned.items() if mine in k} == {f"registry.example/{job}@{DIGEST}"}


def test_a_slot_digest_wins_for_that_slot_and_what_follows_it() -> None:
    """green pinned on its own; batch runs the slot batch.slot names; the test pod runs the
    active slot's image."""
    found = images(render(*EVERYTHING, f"image.digest={DIGEST}",
                          f"slots.green.image.digest={OTHER}", "batch.slot=green"))
    assert found["Deployment/r1-skserve-green server"] == f"localhost/skserve@{OTHER}"
    assert found["batch job.yaml batch"] == f"localhost/skserve@{OTHER}"
    others = {k: v for k, v in found.items()
              if "green" not in k and "batch job" not in k and not is_job(k)}
    assert set(others.values()) == {f"localhost/skserve@{DIGEST}"}, others


def test_loadtest_and_test_images_can_be_their_own() -> None:
    found = images(render(*EVERYTHING, f"image.digest={DIGEST}",
                          "loadtest.image.repository=registry.example/locust",
                          f"loadtest.image.digest={OTHER}",
                          f"tests.image=registry.example/curl@{OTHER}"))
    loadtest = {v for k, v in found.items() if "loadtest" in k}
    assert loadtest == {f"registry.example/locust@{OTHER}"}
    assert found["Pod/r1-skserve-test-predict test"] == f"registry.example/curl@{OTHER}"


def test_haproxy_runs_its_own_image_pinned_by_its_own_digest() -> None:
    """The haproxy router's HAProxy is neither the serving image nor pinned by image.digest;
    rollout.haproxy.image.digest pins it."""
    sets = (*case_sets("canary", "haproxy", True, True, True), f"image.digest={DIGEST}")

    def haproxy(objs: list[dict]) -> set[str]:
        return {v for k, v in images(objs).items() if "haproxy" in k}

    assert haproxy(render(*sets)) == {"localhost/skserve-haproxy:2.6"}
    assert haproxy(render(*sets, f"rollout.haproxy.image.digest={OTHER}")) == {
        f"localhost/skserve-haproxy@{OTHER}"}
    serving = {v for k, v in images(render(*sets)).items() if not is_job(k) and "haproxy" not in k}
    assert serving == {f"localhost/skserve@{DIGEST}"}


@pytest.mark.parametrize("bad", ["sha256:abc", "0123456789abcdef" * 4, f"md5:{'0' * 64}",
                                 DIGEST.upper()])
def test_a_malformed_digest_is_refused(bad: str) -> None:
    proc = run_helm(["template", "r1", str(CHART), "--set-string", f"image.digest={bad}"])
    assert proc.returncode != 0 and "/image/digest" in proc.stderr
