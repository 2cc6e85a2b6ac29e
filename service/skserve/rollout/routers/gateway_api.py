"""The `gatewayAPI` router: one HTTPRoute (gateway.networking.k8s.io/v1), the chart's layout.

- Header rules first, one per serving slot: a request whose `x-model-version` header names
  a slot's model goes to that slot's Service (`<fullname>-<slot>`), whatever the weights. A
  slot left out of `reconcile` has no header rule.
- The last rule splits everything else by `backendRefs[*].weight` (percent per slot).
- Shadow traffic: with `mirror_percent` > 0 the weighted rule carries a RequestMirror filter
  to the serving slot at weight 0 (a blue-green preview judged on a copy of real traffic;
  responses discarded), `percent` of requests (Gateway API v1.3+); none otherwise.

Every change is a read-modify-replace carrying the route's resourceVersion (a concurrent
edit is retried, never overwritten). What a Gateway does with the route is its data
plane's business; this router only writes the objects it reads.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...errors import InvalidInput, Unavailable
from ...kubeapi import ApiError, api_errors
from ..kube import Kube, Release, select_slot
from . import HEADER, SlotTarget, check_weights

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"


class Router:
    def __init__(self, kube: Kube, release: Release, header: str = HEADER,
                 mirror_percent: int = 0, route: str | None = None):
        if not 0 <= mirror_percent <= 100:
            raise InvalidInput(f"mirror percent must be 0..100, not {mirror_percent}")
        self.kube = kube
        self.release = release
        self.header = header
        self.mirror_percent = mirror_percent
        self.route = route or release.stable_service  # the chart names it <fullname>

    # --- the route ---------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        with api_errors(f"reading HTTPRoute {self.route}"):
            return self.kube.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.kube.namespace, PLURAL, self.route)

    def _change(self, edit: Callable[[dict[str, Any]], None], attempts: int = 5) -> None:
        for _ in range(attempts):
            route = self._read()
            before = copy.deepcopy(route["spec"])
            edit(route["spec"])
            if route["spec"] == before:
                return
            try:
                with api_errors(f"updating HTTPRoute {self.route}", handled=(409,)):
                    self.kube.custom.replace_namespaced_custom_object(
                        GROUP, VERSION, self.kube.namespace, PLURAL, self.route, route)
                return
            except ApiError:
                continue  # changed since it was read: read again
        raise Unavailable(f"HTTPRoute {self.route} kept changing under {attempts} updates")

    def _slot_of(self, service: str) -> str | None:
        return next((s for s, name in self.release.slots.items() if name == service), None)

    def _is_header_rule(self, rule: dict[str, Any]) -> bool:
        return any(h.get("name", "").lower() == self.header.lower()
                   for m in rule.get("matches") or [] for h in m.get("headers") or [])

    def _weighted(self, spec: dict[str, Any]) -> dict[str, Any]:
        rules = [r for r in spec.get("rules") or [] if not self._is_header_rule(r)]
        if not rules:
            raise InvalidInput(f"HTTPRoute {self.route} has no weighted rule (one without "
                               f"a {self.header} header match)")
        return rules[-1]

    def _port(self, spec: dict[str, Any]) -> int:
        refs = self._weighted(spec).get("backendRefs") or [{}]
        return int(refs[0].get("port") or 80)

    def _ref(self, slot: str, port: int, weight: int) -> dict[str, Any]:
        return {"group": "", "kind": "Service", "name": self.release.deployment(slot),
                "port": port, "weight": weight}

    def _serving(self, spec: dict[str, Any]) -> list[str]:
        return [s for r in spec.get("rules") or [] if self._is_header_rule(r)
                for ref in r.get("backendRefs") or []
                if (s := self._slot_of(ref.get("name", ""))) is not None]

    def _mirror(self, spec: dict[str, Any]) -> None:
        rule = self._weighted(spec)
        weights = {self._slot_of(r["name"]): int(r.get("weight", 1))
                   for r in rule.get("backendRefs") or []}
        filters = [f for f in rule.get("filters") or [] if f.get("type") != "RequestMirror"]
        shadow = [s for s in self._serving(spec) if weights.get(s, 0) == 0]
        if self.mirror_percent and shadow:
            ref = self._ref(shadow[0], self._port(spec), 0)
            ref.pop("weight")
            mirror: dict[str, Any] = {"backendRef": ref}
            if self.mirror_percent < 100:
                mirror["percent"] = self.mirror_percent
            filters.append({"type": "RequestMirror", "requestMirror": mirror})
        if filters:
            rule["filters"] = filters
        else:
            rule.pop("filters", None)

    # --- the router protocol -----------------------------------------------------------------

    def reconcile(self, slots: Sequence[SlotTarget]) -> None:
        def edit(spec: dict[str, Any]) -> None:
            port = self._port(spec)
            weighted = self._weighted(spec)
            header_rules = [{
                "matches": [{"path": {"type": "PathPrefix", "value": "/"},
                             "headers": [{"type": "Exact", "name": self.header,
                                          "value": t.version}]}],
                "backendRefs": [self._ref(t.slot, port, 1)]} for t in slots]
            spec["rules"] = [*header_rules, weighted]
            self._mirror(spec)

        self._change(edit)

    def set_weights(self, weights: Mapping[str, int]) -> None:
        weights = check_weights(weights)

        def edit(spec: dict[str, Any]) -> None:
            port = self._port(spec)
            rule = self._weighted(spec)
            rule["backendRefs"] = [self._ref(s, port, w) for s, w in sorted(weights.items())]
            self._mirror(spec)

        self._change(edit)
        winner = max(sorted(weights), key=lambda s: weights[s])
        if weights[winner] == 100:  # in-cluster clients of the stable Service follow
            select_slot(self.kube, self.release.stable_service, winner)

    def get_weights(self) -> dict[str, int]:
        rule = self._weighted(self._read()["spec"])
        out = {s: 0 for s in self.release.slots}
        for ref in rule.get("backendRefs") or []:
            slot = self._slot_of(ref.get("name", ""))
            if slot is not None:
                out[slot] = int(ref.get("weight", 1))
        total = sum(out.values())
        return {s: round(100 * w / total) if total else 0 for s, w in sorted(out.items())}

    def finalize(self, active: str) -> None:
        self.set_weights({s: 100 if s == active else 0 for s in self.release.slots})

    def state(self) -> dict[str, Any]:
        """What the chart must render back (the mirror), for the routing record."""
        rule = self._weighted(self._read()["spec"])
        for f in rule.get("filters") or []:
            if f.get("type") == "RequestMirror":
                mirror = f["requestMirror"]
                return {"mirror": {"slot": self._slot_of(mirror["backendRef"]["name"]),
                                   "percent": int(mirror.get("percent", 100))}}
        return {"mirror": None}
