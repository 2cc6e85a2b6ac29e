"""The rollout store on cluster objects (the `StateStore` protocol of store.py).

- The document: key `rollout.json` of the ConfigMap `<fullname>-rollout` (the chart renders
  it empty; helm upgrade never touches a key the chart does not render). Its
  `resourceVersion` is the version: every write is a patch that carries the version it read
  as a precondition, so a write based on a stale read fails with 409 (`Conflict`) and the
  writer decides again. Nothing is lost, whoever writes (a controller, `rollout promote`).
- The lease: a `coordination.k8s.io/v1` Lease of the same name (holder, renew time,
  duration), taken and renewed by the same compare-and-swap: two controllers never both
  hold it.
- Events: a core/v1 Event on the ConfigMap for every step and verdict (`kubectl describe
  configmap <fullname>-rollout`), the whole event as JSON in its `skserve.io/event`
  annotation for `skserve rollout status`.

Without the chart's objects (rolloutController.enabled=false) the first write and the first
lease create them, which needs the `create` right a laptop's kubeconfig usually has.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..kubeapi import ApiError, api_errors
from . import kube as k
from .kube import MERGE, Kube, Release
from .store import Conflict, Record, check_release

DOC_KEY = "rollout.json"
EVENT_ANNOTATION = "skserve.io/event"
COMPONENT = "skserve-rollout"


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds(stamp: Any) -> float | None:
    if stamp is None:
        return None
    if isinstance(stamp, datetime):
        return stamp.timestamp()
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


class KubeStore:
    """The store of one release in one namespace."""

    def __init__(self, kube: Kube, release: Release, clock: Callable[[], float] = time.time):
        self.kube = kube
        self.release = release
        self.name = release.rollout_object
        self.clock = clock

    def _check(self, release: str) -> None:
        if check_release(release) != self.release.name:
            raise ValueError(f"this store is release {self.release.name!r}'s, not {release!r}")

    def _labels(self) -> dict[str, str]:
        return {k.INSTANCE: self.release.name, k.COMPONENT: "rollout",
                "app.kubernetes.io/part-of": "skserve"}

    def _config_map(self) -> Any | None:
        try:
            with api_errors(f"reading ConfigMap {self.name}", handled=(404,)):
                return self.kube.core.read_namespaced_config_map(self.name,
                                                                 self.kube.namespace)
        except ApiError:
            return None

    # --- the document ------------------------------------------------------------------------

    def read(self, release: str) -> Record | None:
        self._check(release)
        cm = self._config_map()
        text = (cm.data or {}).get(DOC_KEY) if cm is not None else None
        if not text:
            return None
        return Record(json.loads(text), cm.metadata.resource_version)

    def write(self, release: str, doc: dict[str, Any], version: str | None) -> str:
        self._check(release)
        text = json.dumps(doc, separators=(",", ":"), default=str)
        if version is None:
            cm = self._config_map()
            if cm is None:
                return self._create(text)
            if (cm.data or {}).get(DOC_KEY):
                raise Conflict(f"ConfigMap {self.name} already holds a rollout")
            version = cm.metadata.resource_version
        body = {"metadata": {"resourceVersion": version}, "data": {DOC_KEY: text}}
        try:
            with api_errors(f"writing ConfigMap {self.name}", handled=(409,)):
                cm = self.kube.core.patch_namespaced_config_map(
                    self.name, self.kube.namespace, body, _content_type=MERGE)
        except ApiError as exc:
            raise Conflict(str(exc)) from None
        return cm.metadata.resource_version

    def _create(self, text: str) -> str:  # rbac: laptop only (the chart renders it)
        body = {"metadata": {"name": self.name, "labels": self._labels()},
                "data": {DOC_KEY: text}}
        try:
            with api_errors(f"creating ConfigMap {self.name}", handled=(409,)):
                cm = self.kube.core.create_namespaced_config_map(self.kube.namespace, body)
        except ApiError as exc:
            raise Conflict(str(exc)) from None
        return cm.metadata.resource_version

    # --- the lease ---------------------------------------------------------------------------

    def _lease(self) -> Any | None:
        try:
            with api_errors(f"reading Lease {self.name}", handled=(404,)):
                return self.kube.coordination.read_namespaced_lease(self.name,
                                                                    self.kube.namespace)
        except ApiError:
            return None

    def _live_holder(self, lease: Any, now: float) -> str | None:
        spec = lease.spec if lease is not None else None
        if spec is None or not spec.holder_identity:
            return None
        renewed = _seconds(spec.renew_time) or 0.0
        if now >= renewed + (spec.lease_duration_seconds or 0):
            return None
        return spec.holder_identity

    def acquire(self, release: str, holder: str, ttl_s: float) -> bool:
        self._check(release)
        now = self.clock()
        lease = self._lease()
        current = self._live_holder(lease, now)
        if current is not None and current != holder:
            return False
        spec = lease.spec if lease is not None and lease.spec is not None else None
        taking = spec is None or spec.holder_identity != holder
        new_spec: dict[str, Any] = {"holderIdentity": holder,
                                    "leaseDurationSeconds": max(1, math.ceil(ttl_s)),
                                    "renewTime": _stamp(now)}
        if taking:
            new_spec["acquireTime"] = _stamp(now)
            new_spec["leaseTransitions"] = ((spec.lease_transitions or 0) + 1) if spec else 0
        if lease is None:
            return self._create_lease(new_spec)
        body = {"metadata": {"resourceVersion": lease.metadata.resource_version},
                "spec": new_spec}
        try:
            with api_errors(f"taking Lease {self.name}", handled=(409,)):
                self.kube.coordination.patch_namespaced_lease(
                    self.name, self.kube.namespace, body, _content_type=MERGE)
        except ApiError:
            # the Lease changed in between: taken by another controller, or renewed by this
            # one's other thread (the loop and its lease keeper both renew): ours if so
            return self._live_holder(self._lease(), self.clock()) == holder
        return True

    def _create_lease(self, spec: dict[str, Any]) -> bool:  # rbac: laptop only
        body = {"metadata": {"name": self.name, "labels": self._labels()}, "spec": spec}
        try:
            with api_errors(f"creating Lease {self.name}", handled=(409,)):
                self.kube.coordination.create_namespaced_lease(self.kube.namespace, body)
        except ApiError:
            return False
        return True

    def release_lease(self, release: str, holder: str) -> None:
        self._check(release)
        lease = self._lease()
        if lease is None or lease.spec is None or lease.spec.holder_identity != holder:
            return
        body = {"metadata": {"resourceVersion": lease.metadata.resource_version},
                "spec": {"holderIdentity": None, "renewTime": None}}
        try:
            with api_errors(f"releasing Lease {self.name}", handled=(409,)):
                self.kube.coordination.patch_namespaced_lease(
                    self.name, self.kube.namespace, body, _content_type=MERGE)
        except ApiError:
            pass  # someone else holds it now: nothing of ours to release

    def lease_holder(self, release: str) -> str | None:
        self._check(release)
        return self._live_holder(self._lease(), self.clock())

    # --- events ------------------------------------------------------------------------------

    def event(self, release: str, event: dict[str, Any]) -> None:
        self._check(release)
        at = float(event.get("at") or self.clock())
        stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {"generateName": f"{self.name}.",
                         "labels": self._labels(),
                         "annotations": {EVENT_ANNOTATION: json.dumps(event, default=str)}},
            "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "name": self.name,
                               "namespace": self.kube.namespace},
            "reason": str(event.get("reason", "Rollout"))[:128],
            "message": str(event.get("message", ""))[:1024],
            "type": "Warning" if event.get("type") == "Warning" else "Normal",
            "firstTimestamp": stamp, "lastTimestamp": stamp, "eventTime": _stamp(at),
            "count": 1, "action": str(event.get("action") or "Rollout")[:128],
            "source": {"component": COMPONENT},
            "reportingComponent": f"skserve.io/{COMPONENT}",
            "reportingInstance": str(event.get("controller") or COMPONENT)[:128],
        }
        with api_errors(f"recording an Event on ConfigMap {self.name}"):
            self.kube.core.create_namespaced_event(self.kube.namespace, body)

    def events(self, release: str) -> list[dict[str, Any]]:  # rbac: status only
        self._check(release)
        selector = f"involvedObject.kind=ConfigMap,involvedObject.name={self.name}"
        with api_errors(f"listing the Events of ConfigMap {self.name}"):
            items = self.kube.core.list_namespaced_event(  # rbac: status only
                self.kube.namespace, field_selector=selector).items
        out = []
        for item in items:
            raw = (item.metadata.annotations or {}).get(EVENT_ANNOTATION)
            if raw:
                try:
                    out.append(json.loads(raw))
                    continue
                except ValueError:
                    pass
            out.append({"at": _seconds(item.last_timestamp) or 0.0, "type": item.type,
                        "reason": item.reason, "message": item.message})
        return sorted(out, key=lambda e: e.get("at") or 0.0)
