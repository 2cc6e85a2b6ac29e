"""The `ingressNginx` router: ingress-nginx's canary annotations on the chart's two Ingresses.

The main Ingress sends everything to the stable Service (which selects the active slot);
the canary Ingress (same host and path, `nginx.ingress.kubernetes.io/canary: "true"`) sends
`canary-weight` percent of requests, and every request whose `x-model-version` header names
its slot's model (`canary-by-header` / `canary-by-header-value`), to the slot under test's
Service. ingress-nginx allows one canary per host and path, so only the slot under test is
reachable by header. A promotion sends 100 % through the canary, switches the stable
Service to the new slot, then sets the canary back to 0 %: no request goes to a slot that
is being switched away from.

The Kubernetes project retired ingress-nginx in March 2026; this router stays for clusters
that still run it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import InvalidInput
from ...kubeapi import api_errors
from ..kube import STRATEGIC, Kube, Release, select_slot, selected_slot
from . import HEADER, SlotTarget, check_weights

PREFIX = "nginx.ingress.kubernetes.io/"
WEIGHT = PREFIX + "canary-weight"
BY_HEADER = PREFIX + "canary-by-header"
HEADER_VALUE = PREFIX + "canary-by-header-value"


class Router:
    def __init__(self, kube: Kube, release: Release, header: str = HEADER,
                 ingress: str | None = None):
        self.kube = kube
        self.release = release
        self.header = header
        self.ingress = ingress or release.canary_ingress

    def _read(self) -> Any:
        with api_errors(f"reading Ingress {self.ingress}"):
            return self.kube.networking.read_namespaced_ingress(self.ingress,
                                                                self.kube.namespace)

    def _patch(self, annotations: dict[str, str] | None = None,
               slot: str | None = None) -> None:
        body: dict[str, Any] = {"metadata": {"annotations": annotations or {}}}
        if slot is not None:
            ing = self._read()
            rules = self.kube.plain(ing)["spec"]["rules"]
            for rule in rules:
                for path in rule["http"]["paths"]:
                    path["backend"]["service"]["name"] = self.release.deployment(slot)
            body["spec"] = {"rules": rules}
        with api_errors(f"changing Ingress {self.ingress}"):
            self.kube.networking.patch_namespaced_ingress(self.ingress, self.kube.namespace,
                                                          body, _content_type=STRATEGIC)

    def candidate(self) -> str:
        """The slot the canary Ingress sends to."""
        ing = self._read()
        name = ing.spec.rules[0].http.paths[0].backend.service.name
        for slot, deployment in self.release.slots.items():
            if deployment == name:
                return slot
        raise InvalidInput(f"Ingress {self.ingress} sends to {name}, not a slot's Service")

    def reconcile(self, slots: Sequence[SlotTarget]) -> None:
        """The canary Ingress follows the serving slot the stable Service does not select;
        with one slot serving, its weight goes to 0 and its header names the live model."""
        active = selected_slot(self.kube, self.release.stable_service)
        others = [t for t in slots if t.slot != active]
        target = others[0] if others else next((t for t in slots if t.slot == active), None)
        if target is None:
            return
        annotations = {BY_HEADER: self.header, HEADER_VALUE: target.version}
        if not others:
            annotations[WEIGHT] = "0"
        self._patch(annotations, slot=target.slot)

    def set_weights(self, weights: Mapping[str, int]) -> None:
        weights = check_weights(weights)
        canary = self.candidate()
        w = weights.get(canary, 0)
        self._patch({WEIGHT: str(w)})
        if w == 100:  # promotion: everything through the canary, then switch, then back
            select_slot(self.kube, self.release.stable_service, canary)
            self._patch({WEIGHT: "0"})

    def get_weights(self) -> dict[str, int]:
        active = selected_slot(self.kube, self.release.stable_service)
        canary = self.candidate()
        w = int((self._read().metadata.annotations or {}).get(WEIGHT, "0"))
        out = {s: 0 for s in self.release.slots}
        if canary == active:
            out[active] = 100
        else:
            out[canary] = w
            if active in out:
                out[active] = 100 - w
        return out

    def finalize(self, active: str) -> None:
        select_slot(self.kube, self.release.stable_service, active)
        self._patch({WEIGHT: "0"})
