"""Traffic routers: one small protocol, one module per router.

In the spirit of Flagger's router interface: a router only moves traffic, it never decides.

- `reconcile(slots)`: make the routing objects match the slots that run now (their model
  versions for header routing, their addresses where the router needs them); a slot left
  out gets no traffic at all, not even by header.
- `set_weights(weights)`: percent per slot, summing to 100; idempotent.
- `get_weights()`: what the data plane does now (percent per slot).
- `finalize(active)`: the resting state once a rollout is over: all traffic on `active`.

A request carrying `x-model-version: <version>` reaches the slot serving that version
whatever the weights (smoke requests, debugging). `load(name, **config)` builds a router by
name from its module (`routers/<name>.py`, class `Router`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ...errors import InvalidInput

HEADER = "x-model-version"
NAMES = ("haproxy", "service", "gateway_api", "ingress_nginx")
# the chart's spelling (rollout.router) of each module's name
CHART_NAMES = {"service": "service", "gatewayAPI": "gateway_api",
               "ingressNginx": "ingress_nginx", "haproxy": "haproxy"}


@dataclass(frozen=True)
class SlotTarget:
    """A slot that serves: its model version and, for routers that need one, its address
    (host:port)."""

    slot: str
    version: str
    address: str | None = None


class Router(Protocol):
    def reconcile(self, slots: Sequence[SlotTarget]) -> None: ...
    def set_weights(self, weights: Mapping[str, int]) -> None: ...
    def get_weights(self) -> dict[str, int]: ...
    def finalize(self, active: str) -> None: ...


def check_weights(weights: Mapping[str, int]) -> dict[str, int]:
    """Weights as ints in 0..100 summing to 100, or InvalidInput naming the problem."""
    out = {slot: int(w) for slot, w in weights.items()}
    if any(not 0 <= w <= 100 for w in out.values()) or sum(out.values()) != 100:
        raise InvalidInput(f"weights must be 0..100 and add up to 100, not {out}")
    return out


def module_name(name: str) -> str:
    """A router's module name from either spelling (`gatewayAPI` or `gateway_api`)."""
    return CHART_NAMES.get(name, name)


def load(name: str, **config: Any) -> Router:
    """The router called `name` (one of NAMES, or the chart's spelling), built from
    `config`."""
    name = module_name(name)
    if name not in NAMES:
        raise InvalidInput(f"router must be one of {NAMES}, not {name!r}")
    module = importlib.import_module(f"{__name__}.{name}")
    return module.Router(**config)
