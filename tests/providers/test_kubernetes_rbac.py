"""The RBAC in helm/ is exactly what the provider calls: every Kubernetes API method the
provider's code names is in ``client.API_CALLS``, every (resource, verb) there is granted
by the Role (or, for the cluster's capacity, the optional ClusterRole), and nothing is
granted that the code never calls. The manifests themselves pass the official schemas.

What is checked is the chart as Helm renders it (helm-python-sdk), in both modes: personal
(the users' servers' service account) and team (the orchestrator's).

(``test_kubernetes_provider.py`` checks the same against the requests the API emulator
saw during the end-to-end runs.)"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml
from kubernetes import client

from jupyter_orch.providers.kubernetes.client import API_CALLS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "jupyter_orch" / "providers" / "kubernetes"
CHART = ROOT / "helm" / "jupyter-orch"
FILES = CHART / "files"
VERSIONS = ("1.27.0", "1.37.0")
MODES = {"personal": {}, "team": {"mode": "team", "db": {"url": "postgresql://orch@db/orch"}}}
VERBS = ("create_", "read_", "list_", "delete_", "patch_", "replace_", "connect_", "get_")
CORE_METHODS = {m for m in dir(client.CoreV1Api) if m.startswith(VERBS) and not m.endswith("_with_http_info")}


def file_docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((FILES / name).read_text()) if d]


def rendered(mode: str = "personal") -> list[dict[str, Any]]:
    """The objects the chart installs (in the namespace the plain manifests name)."""
    with helm_python.Chart.load(CHART) as chart:
        out = chart.render(MODES[mode], name="jupyter-orch", namespace="jhub", is_install=True)
    return [d for path, text in out.items() if path.endswith(".yaml") for d in yaml.safe_load_all(text) if d]


def docs(*kinds: str, mode: str = "personal") -> list[dict[str, Any]]:
    return [d for d in rendered(mode) if d["kind"] in kinds]


def grants(kind: str, mode: str = "personal") -> set[tuple[str, str]]:
    out = set()
    for doc in docs(kind, mode=mode):
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


@pytest.mark.parametrize("mode", MODES)
def test_the_role_grants_exactly_what_the_code_calls(mode: str) -> None:
    namespaced = {(r, v) for needs in API_CALLS.values() for r, v, scope in needs if scope == "namespace"}
    cluster = {(r, v) for needs in API_CALLS.values() for r, v, scope in needs if scope == "cluster"}
    assert grants("Role", mode) == namespaced
    assert grants("ClusterRole", mode) == cluster
    assert ("secrets", "get") not in grants("Role", mode)  # it never reads a token back


@pytest.mark.parametrize("mode", MODES)
def test_the_bindings_name_the_roles_and_the_service_account(mode: str) -> None:
    [sa] = docs("ServiceAccount", mode=mode)
    for kind in ("Role", "ClusterRole"):
        [role] = docs(kind, mode=mode)
        [binding] = docs(kind + "Binding", mode=mode)
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["roleRef"]["kind"] == role["kind"]
        assert binding["subjects"][0]["name"] == sa["metadata"]["name"]
        assert binding["subjects"][0].get("namespace", "jhub") == "jhub"


def test_the_network_policy_lets_worker_pods_in() -> None:
    from jupyter_orch.providers.kubernetes import podspec

    ingress, egress = sorted(docs("NetworkPolicy"), key=lambda d: d["spec"]["policyTypes"] != ["Ingress"])
    worker_labels = {podspec.MANAGED_BY: "jupyter-orch", podspec.COMPONENT: "worker"}
    [rule] = ingress["spec"]["ingress"]
    assert rule["from"][0]["podSelector"]["matchLabels"] == worker_labels
    assert egress["spec"]["podSelector"]["matchLabels"] == worker_labels
    server = ingress["spec"]["podSelector"]["matchLabels"]
    assert egress["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"] == server


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", VERSIONS)
def test_the_manifests_pass_the_official_schemas(mode: str, version: str) -> None:
    kinds = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "NetworkPolicy")
    objects = docs(*kinds, mode=mode)
    assert {d["kind"] for d in objects} == set(kinds)
    for doc in objects:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_chart_installs_every_manifest() -> None:
    """Personal mode with the default values installs the plain manifests of files/ as
    they are, and nothing else."""
    files = [d for p in sorted(FILES.glob("*.yaml")) for d in file_docs(p.name)]

    def key(d: dict[str, Any]) -> tuple[str, str]:
        return d["kind"], d["metadata"]["name"]

    assert sorted(rendered(), key=key) == sorted(files, key=key)
