"""The Kubernetes API edge of rollouts: one namespace, typed errors, the release's objects.

`Kube` connects (in-cluster service account, or a kubeconfig and context from a laptop),
records which (API group, resource, verb) it has used (the rollout Role must grant exactly
those: `tests/chart` derives them from this package's calls), and says how to reach a
Service's HTTP port: directly inside the cluster, through the API server's service proxy
from outside.

`Release` finds a helm release's objects by the chart's labels: the stable and preview
Services, each slot's Deployment (its Service, HPA and PDB share the name), the rollout
ConfigMap and Lease, and the router's objects, named by the chart's rules (naming.fit).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput, Unavailable
from ..kubeapi import api_errors
from . import naming

INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
SLOT = "skserve.io/slot"
ROLE = "skserve.io/service-role"
ROUTER_ANNOTATION = "skserve.io/router"
ROUTING_ANNOTATION = "skserve.io/routing"
ACTIVE_ANNOTATION = "skserve.io/active-slot"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
_PATH = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/[^/]+)"
                   r"/namespaces/[^/]+/(?P<resource>[^/?]+)(?:/(?P<name>[^/?]+))?"
                   r"(?:/(?P<sub>[^/?]+))?")
_VERBS = {"GET": "get", "PUT": "update", "PATCH": "patch", "POST": "create",
          "DELETE": "delete"}


def rbac_call(method: str, path: str) -> tuple[str, str, str] | None:
    """(API group, resource[/subresource], verb) of a namespaced API request, as RBAC sees
    it; None for anything else (discovery, cluster-scoped paths)."""
    m = _PATH.match(path)
    if not m:
        return None
    group = m["group"] or ""
    resource = m["resource"] + (f"/{m['sub']}" if m["sub"] else "")
    verb = _VERBS.get(method.upper(), method.lower())
    if verb == "get" and not m["name"]:
        verb = "watch" if "watch=true" in path else "list"
    if verb == "delete" and not m["name"]:
        verb = "deletecollection"
    return group, resource, verb


class Kube:
    """The API clients for one namespace. `on_call(group, resource, verb)` is called the
    first time each kind of call is made (the controller logs them: the rights it used)."""

    def __init__(self, namespace: str, context: str | None = None,
                 kubeconfig: str | None = None,
                 on_call: Callable[[str, str, str], None] | None = None):
        from kubernetes import client, config

        self.namespace = namespace
        self.in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and \
            context is None and kubeconfig is None
        configuration = client.Configuration()
        try:
            if self.in_cluster:
                config.load_incluster_config(client_configuration=configuration)
            else:
                config.load_kube_config(config_file=kubeconfig, context=context,
                                        client_configuration=configuration)
        except config.ConfigException as exc:
            raise Unavailable(f"no Kubernetes configuration: {exc}") from exc
        self.configuration = configuration
        self.api = client.ApiClient(configuration)
        self.used: set[tuple[str, str, str]] = set()
        self._on_call = on_call
        self._wrap_calls()
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.autoscaling = client.AutoscalingV2Api(self.api)
        self.coordination = client.CoordinationV1Api(self.api)
        self.networking = client.NetworkingV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def _wrap_calls(self) -> None:
        from urllib.parse import urlsplit

        call = self.api.call_api

        def recorded(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            parts = urlsplit(url)
            key = rbac_call(method, parts.path + (f"?{parts.query}" if parts.query else ""))
            if key and key not in self.used:
                self.used.add(key)
                if self._on_call:
                    self._on_call(*key)
            return call(method, url, *args, **kwargs)

        self.api.call_api = recorded  # type: ignore[method-assign]

    def plain(self, obj: Any) -> dict[str, Any]:
        """An API object as the camelCase dict the pure functions take."""
        return self.api.sanitize_for_serialization(obj)

    # --- HTTP to a Service ------------------------------------------------------------------

    def service_url(self, service: str, port: str = "http") -> str:
        """Base URL of a Service's port: `http://<svc>.<ns>.svc:<port>` inside the cluster,
        the API server's service proxy outside it."""
        if self.in_cluster:
            number = self.service_port(service, port)
            return f"http://{service}.{self.namespace}.svc:{number}"
        host = self.configuration.host.rstrip("/")
        return f"{host}/api/v1/namespaces/{self.namespace}/services/{service}:{port}/proxy"

    def service_port(self, service: str, port: str) -> int:
        with api_errors(f"reading Service {service}"):
            svc = self.core.read_namespaced_service(service, self.namespace)
        for p in svc.spec.ports or []:
            if p.name == port:
                return int(p.port)
        raise InvalidInput(f"Service {service} has no port named {port!r}")

    def http_options(self) -> dict[str, Any]:
        """httpx.Client keyword arguments for `service_url`: none inside the cluster; the
        kubeconfig's CA, client certificate and token for the API server's proxy."""
        if self.in_cluster:
            return {}
        c = self.configuration
        context = ssl.create_default_context(cafile=c.ssl_ca_cert if c.verify_ssl else None)
        if not c.verify_ssl:  # insecure-skip-tls-verify in the kubeconfig
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if c.cert_file:
            context.load_cert_chain(c.cert_file, c.key_file)
        headers = {}
        token = (c.api_key or {}).get("authorization") or (c.api_key or {}).get("BearerToken")
        if token:
            headers["authorization"] = token if token.lower().startswith("bearer ") else \
                f"Bearer {token}"
        return {"verify": context, "headers": headers}


@dataclass
class Release:
    """A helm release's objects in one namespace (names as the chart gives them)."""

    name: str
    namespace: str
    stable_service: str
    router: str
    slots: dict[str, str] = field(default_factory=dict)  # slot → Deployment (= Service, HPA)
    preview_service: str | None = None

    @property
    def stem(self) -> str:
        return self.stable_service  # the chart's fullname, unfitted (it is at most 63)

    @property
    def rollout_object(self) -> str:
        """The rollout ConfigMap and Lease (`skserve.rolloutName`)."""
        return naming.fit(self.stem, "-rollout")

    @property
    def canary_ingress(self) -> str:
        return naming.fit(self.stem, "-canary")

    @property
    def haproxy(self) -> str:
        """The in-cluster HAProxy's Deployment and ConfigMap (`skserve.haproxyName`)."""
        return naming.fit(self.stem, "-haproxy", 46)

    @property
    def haproxy_admin(self) -> str:
        """Its headless runtime-API Service (`skserve.haproxyAdminName`)."""
        return naming.fit(self.stem, "-haproxy-admin")

    def deployment(self, slot: str) -> str:
        try:
            return self.slots[slot]
        except KeyError:
            raise InvalidInput(f"release {self.name!r} has no slot {slot!r} (slots: "
                               f"{sorted(self.slots)}); enable it in the chart: "
                               f"--set slots.{slot}.enabled=true") from None


def find_release(kube: Kube, release: str) -> Release:
    """The release's objects from the chart's labels; InvalidInput when it is not there."""
    selector = f"{INSTANCE}={release}"
    with api_errors(f"listing the Services of release {release!r}"):
        services = kube.core.list_namespaced_service(kube.namespace,
                                                     label_selector=selector).items
    stable = [s for s in services if (s.metadata.labels or {}).get(ROLE) == "stable"]
    if not stable:
        raise InvalidInput(f"no skserve release {release!r} in namespace {kube.namespace!r} "
                           "(no Service labelled skserve.io/service-role=stable): check "
                           "--release and --namespace")
    preview = [s.metadata.name for s in services
               if (s.metadata.labels or {}).get(ROLE) == "preview"]
    with api_errors(f"listing the Deployments of release {release!r}"):
        deployments = kube.apps.list_namespaced_deployment(
            kube.namespace, label_selector=f"{selector},{COMPONENT}=server").items
    slots = {d.metadata.labels[SLOT]: d.metadata.name for d in deployments
             if SLOT in (d.metadata.labels or {})}
    svc = stable[0]
    router = (svc.metadata.annotations or {}).get(ROUTER_ANNOTATION, "service")
    return Release(release, kube.namespace, svc.metadata.name, router, slots,
                   preview[0] if preview else None)


def select_slot(kube: Kube, service: str, slot: str | None) -> None:
    """Point a Service at one slot's pods (`skserve.io/slot: <slot>`), or at every slot's
    pods when `slot` is None (a replica-ratio split)."""
    with api_errors(f"changing the selector of Service {service}"):
        kube.core.patch_namespaced_service(service, kube.namespace,
                                           {"spec": {"selector": {SLOT: slot}}},
                                           _content_type=STRATEGIC)


def selected_slot(kube: Kube, service: str) -> str | None:
    """The slot a Service selects; None when it selects every slot."""
    with api_errors(f"reading Service {service}"):
        svc = kube.core.read_namespaced_service(service, kube.namespace)
    return (svc.spec.selector or {}).get(SLOT)


class PodForwards:
    """Local ports forwarded to one port of every ready pod a label selector matches,
    through the API server (what `kubectl port-forward` does): `addresses` has one
    127.0.0.1:<port> per pod, each accepted connection gets its own forward. For a laptop
    reaching pods it cannot route to (the HAProxy runtime API); the pods are the ones found
    now: run the command again after they are replaced."""

    def __init__(self, kube: Kube, selector: str, port: int):
        self.kube = kube
        self.port = port
        with api_errors(f"listing the pods {selector}"):
            pods = kube.core.list_namespaced_pod(kube.namespace, label_selector=selector).items
        ready = [p.metadata.name for p in pods if any(
            c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))]
        if not ready:
            raise Unavailable(f"no ready pod matches {selector} in {kube.namespace}")
        self.listeners: list[socket.socket] = []
        self.addresses: list[str] = []
        for name in ready:
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            self.listeners.append(listener)
            self.addresses.append(f"127.0.0.1:{listener.getsockname()[1]}")
            threading.Thread(target=self._accept, args=(listener, name), daemon=True).start()

    def _accept(self, listener: socket.socket, pod: str) -> None:
        while True:
            try:
                local, _ = listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._forward, args=(local, pod), daemon=True).start()

    def _forward(self, local: socket.socket, pod: str) -> None:  # rbac: laptop only
        from kubernetes.stream import portforward

        try:
            forward = portforward(self.kube.core.connect_get_namespaced_pod_portforward, pod,
                                  self.kube.namespace, ports=str(self.port))
            remote = forward.socket(self.port)
            remote.setblocking(True)
        except Exception:  # the pod went away: the client sees the connection close
            local.close()
            return

        def pump(src: Any, dst: Any) -> None:
            with contextlib.suppress(OSError):
                while chunk := src.recv(65536):
                    dst.sendall(chunk)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pump, args=(remote, local), daemon=True)
        back.start()
        pump(local, remote)
        back.join(30)
        for end in (local, remote):
            with contextlib.suppress(OSError):
                end.close()

    def close(self) -> None:
        for listener in self.listeners:
            with contextlib.suppress(OSError):
                listener.close()
