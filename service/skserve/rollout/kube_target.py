"""`skserve rollout ...` against a release on a cluster: the edges the CLI hands the
controller (the Kubernetes counterpart of the local stack in cli.py's `Local`).

Where things come from:
- the release's objects: found by the chart's labels (kube.find_release);
- the router: `--router`, else the chart's (`skserve.io/router` on the stable Service), with
  its settings from the chart (`skserve.io/router-config`) unless flags say otherwise;
- the live version: what the active slot's Deployment runs (`SKSERVE_MODEL`);
- the new version's image: `--image`, else the per-model image in the live image's
  repository (`make image MODEL=...` builds `localhost/skserve:<name>-<version>`);
- the model's schema (smoke rows) and hold-out RMSE (the default prediction-shift limit):
  the live slot's `GET /metadata`, so no local model store is needed;
- Prometheus: `--prometheus` (env SKSERVE_PROMETHEUS_URL), else the URL recorded when the
  rollout started.

Everything a later controller needs (router and its settings, images, Prometheus, the
analysis selector and window) is recorded in the rollout's document at start, so the
in-cluster controller (the chart's `rolloutController.deployment`) runs a rollout started
from a laptop with the same settings.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

import httpx

from ..errors import InvalidInput, Unavailable
from ..kubeapi import api_errors
from . import naming, routers
from .cluster import ClusterRouter, KubeSlots, Scaler
from .kube import COMPONENT, INSTANCE, Kube, PodForwards, Release, find_release
from .kube_store import KubeStore

ROUTER_CONFIG = "skserve.io/router-config"
SCRAPE_DEFAULT_S = 15.0  # the chart's ServiceMonitor/PodMonitor interval


def default_selector(namespace: str, release: str) -> str:
    """A slot's series in a Prometheus scraping pods with the chart's relabelling
    (namespace, release, slot and the pod's model as model_version)."""
    return (f'namespace="{namespace}",release="{release}",slot="{{slot}}",'
            'model_version="{version}"')


def namespace_from(args: argparse.Namespace) -> str:
    """--namespace, else the pod's own (in a cluster), else the kubeconfig context's, else
    default."""
    if getattr(args, "namespace", None):
        return args.namespace
    token_ns = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    if os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(token_ns):
        with open(token_ns) as f:
            return f.read().strip()
    try:
        from kubernetes import config

        _, current = config.list_kube_config_contexts(config_file=args.kubeconfig)
        if args.context:
            contexts, _ = config.list_kube_config_contexts(config_file=args.kubeconfig)
            current = next((c for c in contexts if c["name"] == args.context), current)
        return (current or {}).get("context", {}).get("namespace") or "default"
    except Exception:  # no kubeconfig at all: Kube() says so when it connects
        return "default"


class Cluster:
    """The edges of one helm release on a cluster."""

    def __init__(self, args: argparse.Namespace,
                 on_call: Callable[[str, str, str], None] | None = None):
        self.args = args
        self.kube = Kube(namespace_from(args), context=args.context,
                         kubeconfig=args.kubeconfig, on_call=on_call)
        self.release = args.release or os.environ.get("SKSERVE_RELEASE") or "skserve"
        self.objects: Release = find_release(self.kube, self.release)
        self.store = KubeStore(self.kube, self.objects)
        self.scaler = Scaler(self.kube, self.objects)
        self.forwards: PodForwards | None = None

    def where(self) -> str:
        return f"release {self.release} in namespace {self.kube.namespace}"

    # --- the router ---------------------------------------------------------------------------

    def chart_router_config(self) -> dict[str, Any]:
        with api_errors(f"reading Service {self.objects.stable_service}"):
            svc = self.kube.core.read_namespaced_service(self.objects.stable_service,
                                                         self.kube.namespace)
        try:
            return json.loads((svc.metadata.annotations or {}).get(ROUTER_CONFIG) or "{}")
        except ValueError:
            return {}

    def router_settings(self) -> dict[str, Any]:
        """{name, config} for a new rollout: the chart's router and settings, flags win."""
        chart = self.chart_router_config()
        name = routers.module_name(getattr(self.args, "router", None) or self.objects.router)
        config: dict[str, Any] = {}
        if name == "service":
            config["total_replicas"] = int(getattr(self.args, "total_replicas", None) or
                                           chart.get("totalReplicas") or 10)
        elif name == "gateway_api":
            config["header"] = chart.get("header") or routers.HEADER
            mirror = getattr(self.args, "mirror_percent", None)
            config["mirror_percent"] = int(mirror if mirror is not None
                                           else chart.get("mirrorPercent") or 0)
        elif name == "ingress_nginx":
            config["header"] = chart.get("header") or routers.HEADER
        elif name == "haproxy":
            config["runtime"] = self._haproxy_runtime(chart)
            config["version_map"] = chart.get("versionMap") or \
                "/usr/local/etc/haproxy/versions.map"
        return {"name": name, "config": config}

    def _haproxy_addresses(self, config: dict[str, Any]) -> str | list[str]:
        """--haproxy-runtime; in the cluster the recorded (headless Service) address; from a
        laptop, local forwards to every HAProxy pod through the API server."""
        flag = getattr(self.args, "haproxy_runtime", None)
        if flag or self.kube.in_cluster:
            return flag or config["runtime"]
        if self.forwards is None:
            port = int(str(config["runtime"]).rpartition(":")[2])
            selector = f"{INSTANCE}={self.release},{COMPONENT}=haproxy"
            self.forwards = PodForwards(self.kube, selector, port)
        return self.forwards.addresses

    def _haproxy_runtime(self, chart: dict[str, Any]) -> str:
        flag = getattr(self.args, "haproxy_runtime", None)
        if flag:
            return flag
        port = chart.get("adminPort") or 9999
        return f"{self.objects.haproxy_admin}.{self.kube.namespace}.svc:{port}"

    def router(self, doc: dict[str, Any] | None = None) -> ClusterRouter:
        settings = (doc or {}).get("router") or self.router_settings()
        name, config = settings["name"], dict(settings.get("config") or {})
        ratio = None
        if name == "service":
            ratio = int(config.pop("total_replicas", 10))
            inner = routers.load(name, kube=self.kube, release=self.objects)
        elif name == "haproxy":
            inner = routers.load(name, socket=self._haproxy_addresses(config),
                                 version_map=config["version_map"],
                                 slots=sorted(self.objects.slots))
        else:
            inner = routers.load(name, kube=self.kube, release=self.objects, **config)
        return ClusterRouter(inner, self.kube, self.objects, self.scaler, ratio)

    # --- versions and the live slot ----------------------------------------------------------

    def weights(self) -> dict[str, int]:
        """Percent per slot as last set (the routing the chart or the controller recorded on
        the stable Service), without asking the data plane."""
        recorded = self.router().routing().get("weights") or {}
        weights = {s: int(recorded.get(s, 0)) for s in self.objects.slots}
        return weights if sum(weights.values()) == 100 else self.router().get_weights()

    def serving(self) -> dict[str, str]:
        """slot → version of the slots that run (ready pods)."""
        slots = KubeSlots(self.kube, self.objects, {}, self.scaler)
        return {t.slot: t.version for t in slots.targets()}

    def resolve(self, model: str) -> str:
        if ":" not in model or model.endswith(":latest"):
            raise InvalidInput(f"--to {model!r}: name a model version (name:version) on a "
                               "cluster; images carry versions, not 'latest'")
        return model

    def images(self, stable_slot: str, stable: str, canary: str) -> dict[str, str]:
        image = self.scaler.deployment(stable_slot).spec.template.spec.containers
        live = next(c.image for c in image if c.name == "server")
        new = getattr(self.args, "image", None) or naming.image_for(canary, live)
        return {stable: live, canary: new}

    def metadata(self, slot: str) -> dict[str, Any]:
        """The slot's `GET /metadata` (schema, metrics) through its Service."""
        url = self.kube.service_url(self.objects.deployment(slot))
        try:
            with httpx.Client(timeout=15, **self.kube.http_options()) as client:
                resp = client.get(f"{url}/metadata")
                resp.raise_for_status()
                return resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable(f"GET /metadata of slot {slot} ({url}): {exc}") from exc

    def stable_model(self, stable_slot: str) -> tuple[str, float | None]:
        """(task, hold-out RMSE or None) of the live version, from its `GET /metadata`."""
        doc = self.metadata(stable_slot)
        task = (doc.get("labels") or {}).get("task") or "regression"
        return task, (doc.get("metrics") or {}).get("rmse")

    def smoke_rows(self, spec: Any) -> list[bytes]:
        from ..loadtest.sampling import RowPool

        slot = spec.stable_slot if self.serving().get(spec.stable_slot) else spec.canary_slot
        return RowPool.from_schema(self.metadata(slot)["features"], seed=0,
                                   size=256).encoded

    def doc_extras(self, spec: Any) -> dict[str, Any]:
        """What a later controller needs, recorded with the rollout."""
        args = self.args
        scrape = getattr(args, "scrape_interval", None) or SCRAPE_DEFAULT_S
        prometheus = getattr(args, "prometheus", None) or \
            os.environ.get("SKSERVE_PROMETHEUS_URL")
        if not prometheus:
            raise InvalidInput("--prometheus URL is needed on a cluster (env "
                               "SKSERVE_PROMETHEUS_URL): the analysis and the wait for a new "
                               "slot's first scrape read it")
        return {"router": self.router_settings(),
                "images": self.images(spec.stable_slot, spec.stable_version,
                                      spec.canary_version),
                "prometheus_url": prometheus, "min_window_s": 3 * scrape}

    def selector_default(self) -> str:
        return default_selector(self.kube.namespace, self.release)

    def controller(self, doc: dict[str, Any], rows: Any, selector: str,
                   on_event: Callable[[dict[str, Any]], None] | None = None) -> Any:
        from .controller import Controller
        from .prometheus import Prometheus

        url = getattr(self.args, "prometheus", None) or doc.get("prometheus_url") or \
            os.environ.get("SKSERVE_PROMETHEUS_URL")
        if not url:
            raise InvalidInput("--prometheus URL is needed (none recorded with the rollout)")
        slots = KubeSlots(self.kube, self.objects, doc.get("images") or {}, self.scaler)
        return Controller(self.release, self.store, self.router(doc), slots, Prometheus(url),
                          smoke_rows=rows, selector=selector, on_event=on_event,
                          min_window_s=float(doc.get("min_window_s") or 3 * SCRAPE_DEFAULT_S))

    def live_weights(self, doc: dict[str, Any] | None) -> dict[str, int] | None:
        """What the data plane does now (the effective split), for status."""
        try:
            return self.router(doc).get_weights()
        except (Unavailable, InvalidInput, KeyError):
            return None

