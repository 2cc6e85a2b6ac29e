"""How many pods each slot runs while a rollout moves traffic on Kubernetes (pure).

Two ways traffic is split, two ways replicas must follow:

- **Replica ratio** (the `service` router: kube-proxy spreads new connections evenly over
  the ready pods of both slots, so the split *is* the pod count). A canary at `w` % of `T`
  pods gets `max(1, floor(w·T/100))` pods and the stable slot the rest: never more than
  asked for the canary except its one-pod minimum, and at most `100/T` percentage points
  below it. 10 % needs 1:9 pods; with `T = 10`, 25 % is 2:8 (20 %) and 5 % is 1:9 (10 %).
  The canary's HPA is pinned (min = max) so the ratio holds; the stable slot's HPA may
  scale it up under load, which only lowers the canary's share. `T` is at least the pods
  the stable slot ran when the rollout started, so it never gets fewer than its remaining
  weight needs.
- **Weighted routers** (HTTPRoute, ingress-nginx, HAProxy: every request is routed by
  weight, whatever the pod count). Both HPAs keep scaling on their own load; the stable
  slot's minimum is pinned at what it ran when the rollout started (so a rollback lands on
  full capacity, not on a slot its HPA shrank while the canary took traffic), and the
  canary's minimum follows its weight: `ceil(base·w/100)` pods, all of `base` before a
  promotion switches everything to it.

At rest every slot is back to the bounds the chart rendered (`Rest`); an idle slot runs 0
pods (its HPA stays, inactive while the Deployment is at 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InvalidInput


@dataclass(frozen=True)
class Rest:
    """A slot's replicas at rest, as the chart rendered them: the HPA's bounds (`hpa`), or a
    fixed count (`min == max == replicas`)."""

    min: int
    max: int
    hpa: bool

    def to_dict(self) -> dict[str, int | bool]:
        return {"min": self.min, "max": self.max, "hpa": self.hpa}

    @classmethod
    def from_dict(cls, doc: Mapping[str, object]) -> Rest:
        try:
            low, high = int(doc["min"]), int(doc["max"])  # type: ignore[call-overload]
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"replicas at rest must have integer min and max: {doc}") \
                from exc
        if not 0 <= low <= high:
            raise InvalidInput(f"replicas at rest need 0 <= min <= max: {doc}")
        return cls(low, high, bool(doc.get("hpa", False)))


@dataclass(frozen=True)
class Scale:
    """What to set on one slot now: `replicas` (the Deployment) and, with an HPA, its
    bounds `min`..`max`."""

    replicas: int
    min: int
    max: int


def replica_ratio(canary_weight: int, total: int) -> tuple[int, int]:
    """(canary, stable) pods for a canary at `canary_weight` % (1..99) of `total` pods."""
    if not 0 < canary_weight < 100:
        raise InvalidInput(f"a replica split needs a canary weight of 1..99 %, not "
                           f"{canary_weight}")
    if total < 2:
        raise InvalidInput(f"a replica split needs at least 2 pods, not {total}")
    canary = min(max(1, canary_weight * total // 100), total - 1)
    return canary, total - canary


def effective_weights(pods: Mapping[str, int]) -> dict[str, int]:
    """Percent of new connections per slot when kube-proxy spreads them over `pods` ready
    pods per slot; whole percents that add up to 100 (largest remainder), all 0 when no
    pod is ready."""
    total = sum(max(0, n) for n in pods.values())
    if total == 0:
        return {slot: 0 for slot in pods}
    exact = {slot: 100 * max(0, n) / total for slot, n in pods.items()}
    out = {slot: math.floor(v) for slot, v in exact.items()}
    short = 100 - sum(out.values())
    for slot in sorted(exact, key=lambda s: exact[s] - out[s], reverse=True)[:short]:
        out[slot] += 1
    return out


def _pinned(n: int) -> Scale:
    return Scale(n, n, n)


def _floor_at(n: int, rest: Rest) -> Scale:
    """`n` pods now and at least `n` from the HPA, which may scale further up to its max."""
    return Scale(n, n, max(rest.max, n))


def split(weights: Mapping[str, int], stable: str, canary: str, base: int,
          rest: Mapping[str, Rest], ratio_total: int | None = None) -> dict[str, Scale]:
    """The replicas of both slots for `weights` (percent per slot, summing to 100).

    `base`: the stable slot's pods when the rollout started (at least its rest minimum);
    `ratio_total`: the pod budget of a replica-ratio split (the `service` router), None for
    weighted routers. A slot left out of the result keeps what it has (the canary at weight
    0: its deploy's single pod, or nothing after a rollback, when the controller scales it
    down next).
    """
    w = int(weights.get(canary, 0))
    base = max(base, rest[stable].min, 1)
    if ratio_total is not None and 0 < w < 100:
        n_canary, n_stable = replica_ratio(w, max(ratio_total, base))
        return {canary: _pinned(n_canary), stable: _floor_at(n_stable, rest[stable])}
    out = {stable: _floor_at(base, rest[stable])}
    if w > 0:
        n = base if w >= 100 else max(1, math.ceil(base * w / 100))
        out[canary] = _floor_at(n, rest[canary])
    return out


def at_rest(rest: Rest, running: bool) -> Scale:
    """A slot's scale once the rollout is over: its rest bounds if it serves, else 0 pods
    (its HPA keeps its rest bounds and stays inactive)."""
    return Scale(rest.min if running else 0, rest.min, rest.max)
