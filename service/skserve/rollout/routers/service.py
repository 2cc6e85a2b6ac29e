"""The `service` router: traffic between slots through Services alone (kube-proxy).

- All or nothing (blue-green, a promotion, a rollback): the stable Service selects one
  slot (`skserve.io/slot`), switched in one patch; kube-proxy sends new connections there.
- A split (canary): the stable Service selects every slot's pods and kube-proxy spreads
  new connections evenly over the ready ones, so the split is the ratio of ready pods
  (`cluster.ClusterRouter` sizes the slots by scaling.replica_ratio before this router
  moves the selector). `get_weights` reports the effective split from the ready pods, not
  the asked one: 10 % needs 1:9 pods, and an HPA that adds stable pods lowers the canary's
  share.
- kube-proxy balances connections, not requests: a client that keeps one keep-alive
  connection stays on the pod it reached first. The split holds for clients that open new
  connections (and for pods draining: skserve answers `Connection: close` once a pod is
  terminating). Keep-alive clients need a weighted L7 router (gatewayAPI, haproxy).
- The `x-model-version` header cannot pick a slot at L4: requests that must reach one slot
  go to its preview Service or its own Service (`<fullname>-<slot>`).

The preview Service follows the slot under test (the one the stable Service does not
select alone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...kubeapi import api_errors
from ..kube import Kube, Release, select_slot, selected_slot
from ..scaling import effective_weights
from . import SlotTarget, check_weights


class Router:
    def __init__(self, kube: Kube, release: Release):
        self.kube = kube
        self.release = release

    def _preview(self, slot: str | None) -> None:
        if self.release.preview_service and slot:
            select_slot(self.kube, self.release.preview_service, slot)

    def reconcile(self, slots: Sequence[SlotTarget]) -> None:
        """A lone serving slot gets the stable Service to itself; the preview Service
        follows the slot that is not the stable Service's."""
        serving = [t.slot for t in slots]
        current = selected_slot(self.kube, self.release.stable_service)
        if len(serving) == 1 and current != serving[0]:
            select_slot(self.kube, self.release.stable_service, serving[0])
            current = serving[0]
        self._preview(next((s for s in serving if s != current), None))

    def set_weights(self, weights: Mapping[str, int]) -> None:
        weights = check_weights(weights)
        winner = max(sorted(weights), key=lambda s: weights[s])
        if weights[winner] == 100:
            select_slot(self.kube, self.release.stable_service, winner)
            self._preview(next((s for s in weights if s != winner), None))
        else:
            self._preview(min(sorted(weights), key=lambda s: weights[s]))
            select_slot(self.kube, self.release.stable_service, None)

    def get_weights(self) -> dict[str, int]:
        """What kube-proxy does now: 100 % to the selected slot, or the ratio of ready pods
        when the stable Service selects every slot."""
        slot = selected_slot(self.kube, self.release.stable_service)
        if slot is not None:
            return {s: 100 if s == slot else 0 for s in sorted(self.release.slots)}
        ready = {}
        for s, name in sorted(self.release.slots.items()):
            with api_errors(f"reading Deployment {name}"):
                dep = self.kube.apps.read_namespaced_deployment(name, self.kube.namespace)
            ready[s] = int(dep.status.ready_replicas or 0) if (dep.spec.replicas or 0) else 0
        return effective_weights(ready)

    def finalize(self, active: str) -> None:
        select_slot(self.kube, self.release.stable_service, active)
