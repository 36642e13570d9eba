"""The RBAC in helm/ is exactly what the provider calls: every Kubernetes API method the
provider's code names is in ``client.API_CALLS``, every (resource, verb) there is granted
by the Role (or, for the cluster's capacity, the optional ClusterRole), and nothing is
granted that the code never calls. The manifests themselves pass the official schemas.

(``test_kubernetes_provider.py`` checks the same against the requests the API emulator
saw during the end-to-end runs.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes import client

from jupyter_orch.providers.kubernetes.client import API_CALLS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "jupyter_orch" / "providers" / "kubernetes"
FILES = ROOT / "helm" / "jupyter-orch" / "files"
VERSIONS = ("1.27.0", "1.37.0")
VERBS = ("create_", "read_", "list_", "delete_", "patch_", "replace_", "connect_", "get_")
CORE_METHODS = {m for m in dir(client.CoreV1Api) if m.startswith(VERBS) and not m.endswith("_with_http_info")}


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((FILES / name).read_text()) if d]


def grants(kind: str) -> set[tuple[str, str]]:
    out = set()
    for doc in docs("role.yaml") + docs("clusterrole.yaml"):
        if doc["kind"] != kind:
            continue
        for rule in doc["rules"]:
            assert rule["apiGroups"] == [""]
            out |= {(r, v) for r in rule["resources"] for v in rule["verbs"]}
    return out


def core_methods_named(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in CORE_METHODS}


def expected(method: str) -> tuple[str, str]:
    """The (resource, verb) a CoreV1Api method name implies."""
    verb, _, rest = method.partition("_")
    verb = {"read": "get", "replace": "update"}.get(verb, verb)
    rest = rest.removeprefix("namespaced_")
    if rest.endswith("_for_all_namespaces"):
        rest = rest.removesuffix("_for_all_namespaces")
    sub = ""
    if rest.endswith("_log"):
        rest, sub = rest.removesuffix("_log"), "/log"
    return rest + "s" + sub, verb


def test_every_api_method_the_code_names_is_in_the_table() -> None:
    named: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        for method in core_methods_named(path):
            named.setdefault(method, set()).add(path.name)
    assert named, "the scan found no API calls: is CORE_METHODS right?"
    assert set(named) == set(API_CALLS), "client.API_CALLS must list exactly the API methods used"
    assert {f for files in named.values() for f in files} == {"client.py"}, "only client.py calls the API"


def test_the_table_says_what_each_method_needs() -> None:
    for method, needs in API_CALLS.items():
        assert expected(method) in {(r, v) for r, v, _ in needs}, method
    # a watch is a list with watch=true: both verbs
    assert {(r, v) for r, v, _ in API_CALLS["list_namespaced_pod"]} == {("pods", "list"), ("pods", "watch")}


def test_the_role_grants_exactly_what_the_code_calls() -> None:
    namespaced = {(r, v) for needs in API_CALLS.values() for r, v, scope in needs if scope == "namespace"}
    cluster = {(r, v) for needs in API_CALLS.values() for r, v, scope in needs if scope == "cluster"}
    assert grants("Role") == namespaced
    assert grants("ClusterRole") == cluster
    assert ("secrets", "get") not in grants("Role")  # it never reads a token back


def test_the_bindings_name_the_roles_and_the_service_account() -> None:
    [sa] = docs("serviceaccount.yaml")
    for name in ("role.yaml", "clusterrole.yaml"):
        role, binding = docs(name)
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["roleRef"]["kind"] == role["kind"]
        assert binding["subjects"][0]["name"] == sa["metadata"]["name"]


def test_the_network_policy_lets_worker_pods_in() -> None:
    from jupyter_orch.providers.kubernetes import podspec

    ingress, egress = docs("networkpolicy.yaml")
    worker_labels = {podspec.MANAGED_BY: "jupyter-orch", podspec.COMPONENT: "worker"}
    [rule] = ingress["spec"]["ingress"]
    assert rule["from"][0]["podSelector"]["matchLabels"] == worker_labels
    assert egress["spec"]["podSelector"]["matchLabels"] == worker_labels
    server = ingress["spec"]["podSelector"]["matchLabels"]
    assert egress["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"] == server


@pytest.mark.parametrize(
    "name", ["serviceaccount.yaml", "role.yaml", "clusterrole.yaml", "networkpolicy.yaml"]
)
@pytest.mark.parametrize("version", VERSIONS)
def test_the_manifests_pass_the_official_schemas(name: str, version: str) -> None:
    for doc in docs(name):
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_chart_templates_include_every_manifest() -> None:
    templates = "".join(p.read_text() for p in (ROOT / "helm" / "jupyter-orch" / "templates").glob("*.yaml"))
    included = set(re.findall(r'\.Files\.Get "files/([^"]+)"', templates))
    assert included == {p.name for p in FILES.glob("*.yaml")}
