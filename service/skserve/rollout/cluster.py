"""Slots and scaling on Kubernetes: the chart's Deployments, their HPAs, and the record of
what the controller changed (what `helm upgrade` must keep).

- `KubeSlots` is the slots protocol of controller.py: a slot is the chart's Deployment
  `<fullname>-<slot>`. Deploy = point its `server` container at the version (`SKSERVE_MODEL`
  picks the model out of the image, so one image can carry several versions) and its image,
  run it, wait until every pod of the new template is ready; scale down = 0 pods (its HPA
  stays, inactive at 0) and the rest bounds back.
- `Scaler` moves replicas and HPA bounds as scaling.py plans them, raising capacity before
  traffic moves and never lowering a slot by force while an HPA owns it.
- `ClusterRouter` wraps any router: scale up, move traffic, then record the routing on the
  stable Service (`skserve.io/routing`) for the chart to read back on `helm upgrade`.

What the controller owns, and how the chart keeps it (templates/_live.tpl): each slot's
model, model-version labels and image (annotation `skserve.io/deployed` on the Deployment),
the routing (`skserve.io/routing` on the stable Service: active and preview slot, weights),
and while a rollout moves a slot's scale (`skserve.io/controlled-scale`), its replicas and
HPA bounds. The chart renders its values on install and whenever you change those values;
otherwise it renders what the controller set.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import InvalidInput, RolloutFailed, Unavailable
from ..kubeapi import api_errors
from . import naming, scaling
from .kube import ACTIVE_ANNOTATION, ROUTING_ANNOTATION, STRATEGIC, Kube, Release, select_slot
from .routers import HEADER, Router, SlotTarget, check_weights

CONTAINER = "server"
MODEL_ENV = "SKSERVE_MODEL"
MODEL_VERSION_LABEL = "skserve.io/model-version"
MODEL_ANNOTATION = "skserve.io/model"  # on pods: Prometheus' model_version target label
DEPLOYED = "skserve.io/deployed"
REST = "skserve.io/rest-replicas"
CONTROLLED = "skserve.io/controlled-scale"
BASE = "skserve.io/base-replicas"
FAILING = ("CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull",
           "InvalidImageName", "CreateContainerConfigError", "CreateContainerError")


def _annotations(obj: Any) -> dict[str, str]:
    return dict(obj.metadata.annotations or {})


def _container(dep: Any) -> Any:
    for c in dep.spec.template.spec.containers:
        if c.name == CONTAINER:
            return c
    raise InvalidInput(f"Deployment {dep.metadata.name} has no container {CONTAINER!r}")


def served_version(dep: Any) -> str | None:
    """The model a slot's Deployment serves (its SKSERVE_MODEL)."""
    for e in _container(dep).env or []:
        if e.name == MODEL_ENV:
            return e.value
    return None


class Scaler:
    """Replicas and HPA bounds of the release's slots."""

    def __init__(self, kube: Kube, release: Release, ready_timeout_s: float = 300.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.kube = kube
        self.release = release
        self.ready_timeout_s = ready_timeout_s
        self.sleep = sleep

    def deployment(self, slot: str) -> Any:
        name = self.release.deployment(slot)
        with api_errors(f"reading Deployment {name}"):
            return self.kube.apps.read_namespaced_deployment(name, self.kube.namespace)

    def rest(self, dep: Any) -> scaling.Rest:
        """The slot's replicas at rest, from the annotation the chart renders."""
        raw = _annotations(dep).get(REST)
        if not raw:
            raise InvalidInput(f"Deployment {dep.metadata.name} has no {REST} annotation: "
                               "upgrade the release to this chart version")
        try:
            return scaling.Rest.from_dict(json.loads(raw))
        except ValueError as exc:
            raise InvalidInput(f"Deployment {dep.metadata.name}: {REST}: {exc}") from None

    def patch(self, slot: str, body: dict[str, Any]) -> Any:
        name = self.release.deployment(slot)
        with api_errors(f"changing Deployment {name}"):
            return self.kube.apps.patch_namespaced_deployment(
                name, self.kube.namespace, body, _content_type=STRATEGIC)

    def set_bounds(self, slot: str, low: int, high: int) -> None:
        name = self.release.deployment(slot)  # the HPA shares the slot's name
        with api_errors(f"changing HorizontalPodAutoscaler {name}"):
            self.kube.autoscaling.patch_namespaced_horizontal_pod_autoscaler(
                name, self.kube.namespace,
                {"spec": {"minReplicas": max(1, low), "maxReplicas": max(1, low, high)}},
                _content_type=STRATEGIC)

    def base(self, slot: str) -> int:
        """The stable slot's pods when the rollout started (recorded on first use)."""
        dep = self.deployment(slot)
        recorded = _annotations(dep).get(BASE)
        if recorded:
            return int(recorded)
        n = max(1, int(dep.spec.replicas or 0), self.rest(dep).min)
        self.patch(slot, {"metadata": {"annotations": {BASE: str(n), CONTROLLED: "true"}}})
        return n

    def apply(self, slot: str, target: scaling.Scale) -> None:
        """Bounds first, then replicas: raised at once (and waited for), never lowered by
        force while an HPA owns the slot."""
        dep = self.deployment(slot)
        rest = self.rest(dep)
        current = int(dep.spec.replicas or 0)
        if rest.hpa:
            self.set_bounds(slot, target.min, target.max)
        replicas = max(current, target.replicas) if rest.hpa else target.replicas
        if replicas != current or CONTROLLED not in _annotations(dep):
            self.patch(slot, {"metadata": {"annotations": {CONTROLLED: "true"}},
                              "spec": {"replicas": replicas}})
        if replicas > current:
            self.wait_ready(slot, replicas)

    def restore(self, slot: str, running: bool) -> None:
        """Back to the chart's rest bounds (0 pods when the slot no longer serves)."""
        dep = self.deployment(slot)
        rest = self.rest(dep)
        target = scaling.at_rest(rest, running)
        if rest.hpa:
            self.set_bounds(slot, target.min, target.max)
        body: dict[str, Any] = {"metadata": {"annotations": {CONTROLLED: None, BASE: None}}}
        if not running:
            body["spec"] = {"replicas": 0}
        elif not rest.hpa:
            body["spec"] = {"replicas": target.replicas}
        self.patch(slot, body)

    def wait_ready(self, slot: str, replicas: int | None = None) -> Any:
        """Until every pod of the current template is ready (at least `replicas`); raises
        RolloutFailed at once when a pod cannot start (crash loop, image missing: the
        controller rolls back), Unavailable when they are just slow."""
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            dep = self.deployment(slot)
            status, want = dep.status, int(dep.spec.replicas or 0)
            if replicas is not None:
                want = max(want, replicas)
            done = (status.observed_generation or 0) >= dep.metadata.generation and \
                (status.updated_replicas or 0) >= want and \
                (status.ready_replicas or 0) >= want and \
                (status.replicas or 0) == (status.updated_replicas or 0)
            if done:
                return dep
            self._check_pods(slot)
            if time.monotonic() > deadline:
                raise Unavailable(f"slot {slot}: {status.ready_replicas or 0} of {want} "
                                  f"pods ready after {self.ready_timeout_s:g}s")
            self.sleep(1.0)

    def _check_pods(self, slot: str) -> None:
        selector = f"app.kubernetes.io/instance={self.release.name},skserve.io/slot={slot}," \
                   "app.kubernetes.io/component=server"
        with api_errors(f"listing the pods of slot {slot}"):
            pods = self.kube.core.list_namespaced_pod(self.kube.namespace,
                                                      label_selector=selector).items
        for pod in pods:
            for cs in (pod.status.container_statuses or []) if pod.status else []:
                waiting = cs.state.waiting if cs.state else None
                if waiting is not None and waiting.reason in FAILING:
                    raise RolloutFailed(f"slot {slot}: pod {pod.metadata.name} cannot run: "
                                        f"{waiting.reason}: {waiting.message or ''}".strip())


class KubeSlots:
    """The slots protocol on a cluster. `images`: model version → image reference (the
    rollout's document records both versions' images)."""

    def __init__(self, kube: Kube, release: Release, images: Mapping[str, str],
                 scaler: Scaler | None = None):
        self.kube = kube
        self.release = release
        self.images = dict(images)
        self.scaler = scaler or Scaler(kube, release)

    @property
    def http_options(self) -> dict[str, Any]:
        return self.kube.http_options()

    def _address(self, slot: str) -> str:
        name = self.release.deployment(slot)  # the slot's Service shares its name
        with api_errors(f"reading Service {name}"):
            svc = self.kube.core.read_namespaced_service(name, self.kube.namespace)
        port = next(p.port for p in svc.spec.ports if p.name == "http")
        return f"{svc.spec.cluster_ip}:{port}"

    def deploy(self, slot: str, version: str) -> SlotTarget:
        """Serve `version` in `slot` with one pod (the router raises it with its weight);
        idempotent: a slot already serving `version` from the same image keeps its pods."""
        image = self.images.get(version)
        if not image:
            raise InvalidInput(f"no image recorded for {version}")
        dep = self.scaler.deployment(slot)
        rest = self.scaler.rest(dep)
        same = served_version(dep) == version and _container(dep).image == image
        if not (same and (dep.spec.replicas or 0) > 0):
            label = naming.label_version(version)
            deployed = {"model": version, "modelVersion": label, "image": image}
            if rest.hpa:
                self.scaler.set_bounds(slot, 1, 1)  # the canary's minimum follows its weight
            self.scaler.patch(slot, {
                "metadata": {"labels": {MODEL_VERSION_LABEL: label},
                             "annotations": {DEPLOYED: json.dumps(deployed, sort_keys=True),
                                             CONTROLLED: "true"}},
                "spec": {"replicas": max(1, int(dep.spec.replicas or 0)) if same else 1,
                         "template": {
                             "metadata": {"labels": {MODEL_VERSION_LABEL: label},
                                          "annotations": {MODEL_ANNOTATION: version}},
                             "spec": {"containers": [{
                                 "name": CONTAINER, "image": image,
                                 "env": [{"name": MODEL_ENV, "value": version}]}]}}}})
        self.scaler.wait_ready(slot)
        return SlotTarget(slot, version, self._address(slot))

    def scale_down(self, slot: str) -> None:
        self.scaler.restore(slot, running=False)

    def targets(self) -> list[SlotTarget]:
        """The slots whose Deployment runs and has a ready pod."""
        selector = f"app.kubernetes.io/instance={self.release.name}," \
                   "app.kubernetes.io/component=server"
        with api_errors("listing the slots' Deployments"):
            deps = self.kube.apps.list_namespaced_deployment(self.kube.namespace,
                                                             label_selector=selector).items
        out = []
        for dep in deps:
            slot = (dep.metadata.labels or {}).get("skserve.io/slot")
            version = served_version(dep)
            if slot and version and (dep.spec.replicas or 0) > 0 and \
                    (dep.status.ready_replicas or 0) > 0:
                out.append(SlotTarget(slot, version, self._address(slot)))
        return sorted(out, key=lambda t: t.slot)

    def smoke_target(self, slot: str) -> tuple[str, dict[str, str]]:
        """The preview Service when it selects `slot`, else the slot's own Service; the
        version header too, so only that version can answer."""
        service = self.release.deployment(slot)
        if self.release.preview_service:
            with api_errors(f"reading Service {self.release.preview_service}"):
                preview = self.kube.core.read_namespaced_service(
                    self.release.preview_service, self.kube.namespace)
            if (preview.spec.selector or {}).get("skserve.io/slot") == slot:
                service = self.release.preview_service
        version = served_version(self.scaler.deployment(slot)) or ""
        return self.kube.service_url(service), {HEADER: version}


class ClusterRouter:
    """Any router, with the replicas following the weights and the routing recorded.

    `ratio_total`: the pod budget when the split is the replica ratio (the `service`
    router); None for weighted routers."""

    def __init__(self, inner: Router, kube: Kube, release: Release, scaler: Scaler,
                 ratio_total: int | None = None):
        self.inner = inner
        self.kube = kube
        self.release = release
        self.scaler = scaler
        self.ratio_total = ratio_total

    # --- the routing record on the stable Service ------------------------------------------

    def routing(self) -> dict[str, Any]:
        with api_errors(f"reading Service {self.release.stable_service}"):
            svc = self.kube.core.read_namespaced_service(self.release.stable_service,
                                                         self.kube.namespace)
        try:
            return json.loads(_annotations(svc).get(ROUTING_ANNOTATION) or "{}")
        except ValueError:
            return {}

    def _record(self, **changes: Any) -> None:
        state = getattr(self.inner, "state", None)  # what else the chart must render back
        doc = {**self.routing(), **(state() if state else {}), **changes}
        with api_errors(f"recording the routing on Service {self.release.stable_service}"):
            self.kube.core.patch_namespaced_service(
                self.release.stable_service, self.kube.namespace,
                {"metadata": {"annotations": {
                    ROUTING_ANNOTATION: json.dumps(doc, sort_keys=True),
                    ACTIVE_ANNOTATION: str(doc.get("activeSlot", ""))}}},
                _content_type=STRATEGIC)

    def _active(self, weights: Mapping[str, int]) -> str:
        active = self.routing().get("activeSlot")
        if active not in weights:
            active = max(sorted(weights), key=lambda s: weights[s])
        return active

    # --- the router protocol ---------------------------------------------------------------

    def _point_preview(self, slot: str) -> None:
        """The preview Service selects `slot`, as the chart renders it from the recorded
        routing on the next upgrade (previewSlot, else the first other enabled slot), for
        every router: a helm upgrade must not move it."""
        if self.release.preview_service and slot:
            select_slot(self.kube, self.release.preview_service, slot)

    def reconcile(self, slots: Sequence[SlotTarget]) -> None:
        self.inner.reconcile(slots)
        active = self.routing().get("activeSlot")
        preview = next((t.slot for t in slots if t.slot != active), "")
        self._record(previewSlot=preview)
        self._point_preview(preview)

    def set_weights(self, weights: Mapping[str, int]) -> None:
        weights = check_weights(weights)
        if len(weights) != 2:
            raise InvalidInput(f"a rollout splits traffic between two slots, not {weights}")
        stable = self._active(weights)
        canary = next(s for s in weights if s != stable)
        base = self.scaler.base(stable)
        rest = {s: self.scaler.rest(self.scaler.deployment(s)) for s in weights}
        plan = scaling.split(weights, stable, canary, base, rest, self.ratio_total)
        before = self.routing().get("weights") or {}
        for slot in sorted(plan, key=lambda s: before.get(s, 0) - weights[s]):  # gainer first
            self.scaler.apply(slot, plan[slot])
        self.inner.set_weights(weights)
        winner = max(weights, key=lambda s: weights[s])
        self._record(weights=weights, activeSlot=winner if weights[winner] == 100 else stable)

    def get_weights(self) -> dict[str, int]:
        return self.inner.get_weights()

    def finalize(self, active: str) -> None:
        self.inner.finalize(active)
        for slot in self.release.slots:
            if slot == active:
                self.scaler.restore(slot, running=True)
        self._record(activeSlot=active, previewSlot="",
                     weights={s: 100 if s == active else 0 for s in self.release.slots})
        self._point_preview(next((s for s in sorted(self.release.slots) if s != active), ""))
