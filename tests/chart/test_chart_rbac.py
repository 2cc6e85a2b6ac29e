"""The rollout Role grants exactly what the controller's code calls: no more, no less.

The calls are read from the code itself (its AST): every `<api>.<verb>_namespaced_<kind>(...)`
of the Kubernetes client in service/skserve/rollout, mapped to (API group, resource, verb)
the way RBAC sees them (`read` → get, `replace` → update, custom objects by their group and
plural constants). Calls only a laptop makes (creating the ConfigMap and Lease when the chart
did not render them) or only `skserve rollout status` makes (listing Events) carry a
`# rbac:` note on their line or their function's `def` line and are not the controller's.
Common modules count for every router, `routers/<name>.py` for its own. The e2e suite runs
the controller under this Role on the cluster (tests/e2e/test_rollouts.py), which catches a
missing right; this test catches an extra one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from chart_helpers import FULLNAME, REPO, case_sets, one, render

ROLLOUT = REPO / "service" / "skserve" / "rollout"
COMMON = ("kube.py", "kube_store.py", "cluster.py", "kube_target.py")
ROUTER_MODULES = {"service": "service.py", "gatewayAPI": "gateway_api.py",
                  "ingressNginx": "ingress_nginx.py", "haproxy": "haproxy.py"}
API_GROUPS = {"core": "", "apps": "apps", "autoscaling": "autoscaling",
              "coordination": "coordination.k8s.io", "networking": "networking.k8s.io"}
VERBS = {"read": "get", "get": "get", "list": "list", "create": "create", "patch": "patch",
         "replace": "update", "delete": "delete"}
NOTE = "# rbac:"


def _plural(snake: str) -> str:
    word = snake.replace("_", "")
    return word + ("es" if word.endswith("s") else "s")


def code_calls(path: Path) -> set[tuple[str, str, str]]:
    """(group, resource, verb) of every Kubernetes API call in one module."""
    text = path.read_text()
    lines = text.splitlines()
    tree = ast.parse(text)
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                 and isinstance(n.value, ast.Constant) for t in n.targets
                 if isinstance(t, ast.Name)}
    for n in tree.body:  # GROUP, VERSION, PLURAL = "...", "...", "..."
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Tuple) and \
                isinstance(n.targets[0], ast.Tuple):
            for t, v in zip(n.targets[0].elts, n.value.elts, strict=True):
                constants[t.id] = v.value
    defs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]

    def noted(node: ast.AST) -> bool:
        if NOTE in lines[node.lineno - 1]:
            return True
        enclosing = [d for d in defs if d.lineno <= node.lineno <= d.end_lineno]
        return any(NOTE in lines[d.lineno - 1] for d in enclosing)

    found = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute)):
            continue
        api, method = node.func.value.attr, node.func.attr
        if noted(node):
            continue
        custom = re.fullmatch(r"(get|list|create|patch|replace|delete)_namespaced_custom_object",
                              method)
        if api == "custom" and custom:
            group, plural = (constants[a.id] for a in (node.args[0], node.args[3]))
            found.add((group, plural, VERBS[custom[1]]))
            continue
        m = re.fullmatch(r"(read|list|create|patch|replace|delete)_namespaced_(\w+)", method)
        if api in API_GROUPS and m:
            found.add((API_GROUPS[api], _plural(m[2]), VERBS[m[1]]))
    return found


def granted(role: dict) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
            for r in rule["resources"] for v in rule["verbs"]}


def test_the_scanner_reads_calls_and_notes(tmp_path: Path) -> None:
    """The AST reading itself, on a module whose calls the test knows."""
    module = tmp_path / "m.py"
    module.write_text(
        'GROUP, VERSION, PLURAL = "example.io", "v1", "widgets"\n'
        "def f(self):\n"
        "    self.kube.core.read_namespaced_config_map('a', 'b')\n"
        "    self.kube.autoscaling.patch_namespaced_horizontal_pod_autoscaler('a', 'b', {})\n"
        "    self.kube.custom.replace_namespaced_custom_object(GROUP, VERSION, 'n', PLURAL,"
        " 'x', {})\n"
        "    self.kube.core.list_namespaced_event('n')  # rbac: status only\n"
        "def g(self):  # rbac: laptop only\n"
        "    self.kube.core.create_namespaced_config_map('n', {})\n"
        "def h(self):\n"
        "    self.kube.networking.read_namespaced_ingress('a', 'b')\n")
    assert code_calls(module) == {("", "configmaps", "get"),
                                  ("autoscaling", "horizontalpodautoscalers", "patch"),
                                  ("example.io", "widgets", "update"),
                                  ("networking.k8s.io", "ingresses", "get")}


@pytest.mark.parametrize("router", sorted(ROUTER_MODULES))
def test_the_role_is_exactly_the_controllers_calls(router: str) -> None:
    objs = render(*case_sets("canary", router, True, False, False))
    role = one(objs, "Role", f"{FULLNAME}-rollout")
    used = set()
    for name in COMMON:
        used |= code_calls(ROLLOUT / name)
    used |= code_calls(ROLLOUT / "routers" / ROUTER_MODULES[router])
    have = granted(role)
    assert have - used == set(), f"granted but never called: {sorted(have - used)}"
    assert used - have == set(), f"called but not granted: {sorted(used - have)}"
    assert used >= {("", "configmaps", "patch"), ("coordination.k8s.io", "leases", "patch"),
                    ("", "events", "create")}  # the scanner found the store's calls
