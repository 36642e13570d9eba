"""helm/jupyter-orch rendered by Helm's own library: lint, the official schemas of the
oldest and newest Kubernetes the chart supports, and what each object must say, read from
the parsed objects (never from the template text).

Personal mode (the default) installs what 0.1 did; team mode runs `jupyter orch serve` as
a JupyterHub service with its database, hook, Secrets, policies and budget."""

from __future__ import annotations

import base64
import json
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml
from chartkit import (
    CHART,
    DB_URL,
    NAMESPACE,
    RELEASE,
    TEAM_VARIANTS,
    VARIANTS,
    kinds,
    kube_versions,
    notes,
    one,
    render,
)

from jupyter_orch.providers.kubernetes import podspec

OLDEST, NEWEST = kube_versions()
TEAM = VARIANTS["team-db-url"]
HUB_PROVIDER = "jupyter_orch.server.hubauth.HubIdentityProvider"


def container(objects: list[dict[str, Any]], kind: str = "Deployment") -> dict[str, Any]:
    [c] = one(objects, kind)["spec"]["template"]["spec"]["containers"]
    return c


def env(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def secret_value(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


# ------------------------------------------------------------------ the chart as a whole


@pytest.mark.parametrize("variant", VARIANTS)
def test_lint_is_clean(variant: str) -> None:
    report = helm_python.lint(CHART, VARIANTS[variant], strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_object_passes_the_official_schemas(variant: str, version: str) -> None:
    objects = render(VARIANTS[variant])
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_chart_is_0_2_for_kubernetes_1_25_and_later() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["version"] == "0.2.0"
    assert (OLDEST, NEWEST) == ("1.25.0", "1.37.0")
    with helm_python.Chart.load(CHART) as chart:
        assert chart.merge_values()["mode"] == "personal"  # existing installs stay personal


def test_personal_mode_is_the_default_and_installs_what_0_1_did() -> None:
    objects = render()
    assert kinds(objects) == sorted(
        ["ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"] + ["NetworkPolicy"] * 2
    )
    assert render({"mode": "personal"}) == objects
    # team-mode values change nothing in personal mode
    assert render({"db": {"url": DB_URL}, "postgresql": {"enabled": True}, "service": {"port": 1}}) == objects


def test_personal_mode_follows_the_namespace_and_the_service_account_name() -> None:
    objects = render(VARIANTS["personal"], namespace="ml")
    assert one(objects, "ServiceAccount")["metadata"]["name"] == "orch-users"
    for binding in ("RoleBinding", "ClusterRoleBinding"):
        [subject] = one(objects, binding)["subjects"]
        assert subject["name"] == "orch-users" and subject.get("namespace", "ml") == "ml"
    ingress = one(objects, "NetworkPolicy", "jupyter-orch-workers-to-server")
    assert [p["port"] for p in ingress["spec"]["ingress"][0]["ports"]] == [9999]


@pytest.mark.parametrize("variant", ["personal-networkpolicy-off", "team-networkpolicy-off"])
def test_network_policies_can_be_left_out(variant: str) -> None:
    objects = render(VARIANTS[variant])
    assert "NetworkPolicy" not in kinds(objects)
    assert objects


def test_team_mode_renders_the_service_and_nothing_of_personal_mode() -> None:
    objects = render(TEAM)
    assert kinds(objects) == sorted(
        [
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Secret",  # the hub API token
            "Secret",  # the database URL (a hook)
            "Deployment",
            "Service",
            "PersistentVolumeClaim",
            "Job",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "NetworkPolicy",
        ]
    )
    personal = {(o["kind"], o["metadata"]["name"]) for o in render()}
    assert ("NetworkPolicy", "jupyter-orch-workers-to-server") in personal
    assert not personal & {
        (o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] == "NetworkPolicy"
    }


def test_team_mode_needs_exactly_one_database() -> None:
    with pytest.raises(helm_python.HelmError, match=r"db\.url"):
        render({"mode": "team"})
    with pytest.raises(helm_python.HelmError, match="exactly one database"):
        render({"mode": "team", "db": {"url": DB_URL}, "postgresql": {"enabled": True}})


# ------------------------------------------------------------------ the orchestrator


def test_the_deployment_runs_jupyter_orch_serve_as_the_hub_service() -> None:
    objects = render(TEAM)
    c = container(objects)
    assert c["command"] == ["jupyter", "orch", "serve"]
    args = dict(a.removeprefix("--").split("=", 1) for a in c["args"])
    assert args["ServerApp.identity_provider_class"] == HUB_PROVIDER
    assert args["OrchApp.owner_from"] == "identity"
    assert args["ServerApp.base_url"] == "/services/orch/"
    assert args["OrchApp.db_url"] == "$(JUPYTER_ORCH_DB_URL)"  # expanded by the kubelet from the env
    e = env(c)
    assert e["JUPYTERHUB_SERVICE_NAME"] == "orch"
    assert e["JUPYTERHUB_SERVICE_PREFIX"] == "/services/orch/"
    assert e["JUPYTERHUB_API_URL"] == "http://hub:8081/hub/api"
    assert e["JUPYTERHUB_API_TOKEN"]["secretKeyRef"] == {"name": RELEASE, "key": "hub-api-token"}
    assert e["JUPYTER_ORCH_DB_URL"]["secretKeyRef"] == {"name": f"{RELEASE}-db", "key": "db-url"}
    # the config file it is given is the ConfigMap's, mounted
    config_map = one(objects, "ConfigMap")
    mount = next(m for m in c["volumeMounts"] if args["config"].startswith(m["mountPath"] + "/"))
    volume = next(
        v
        for v in one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == mount["name"]
    )
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert args["config"].rsplit("/", 1)[1] in config_map["data"]


def test_the_probes_ports_and_service_agree() -> None:
    objects = render(TEAM)
    c = container(objects)
    args = dict(a.removeprefix("--").split("=", 1) for a in c["args"])
    [port] = c["ports"]
    assert port["containerPort"] == int(args["ServerApp.port"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = c[probe]["httpGet"]
        # Jupyter Server's unauthenticated /api under the base URL (orch/api/v1/info needs a token)
        assert get["path"] == args["ServerApp.base_url"] + "api"
        assert get["port"] == port["name"]
    service = one(objects, "Service")
    [sport] = service["spec"]["ports"]
    assert sport["targetPort"] == port["name"] and sport["port"] == 8000
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels)
    assert selects(one(objects, "PodDisruptionBudget")["spec"]["selector"], pod_labels)
    assert selects(one(objects, "Deployment")["spec"]["selector"], pod_labels)


def test_the_orchestrator_is_non_root_read_only_and_bounded() -> None:
    objects = render(TEAM)
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    c = container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    # what it writes goes to volumes: its data directory (a claim) and /tmp
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert (
        volumes[mounts["/srv/orch"]]["persistentVolumeClaim"]["claimName"]
        == one(objects, "PersistentVolumeClaim")["metadata"]["name"]
    )
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert env(c)["HOME"].startswith("/tmp")
    # one engine: never two pods at once
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"


def test_the_service_account_starts_worker_pods_with_the_personal_rules() -> None:
    team, personal = render(TEAM), render()
    sa = one(team, "ServiceAccount")["metadata"]["name"]
    assert one(team, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == sa
    for kind, binding in (("Role", "RoleBinding"), ("ClusterRole", "ClusterRoleBinding")):
        assert one(team, kind)["rules"] == one(personal, kind)["rules"]
        bound = one(team, binding)
        assert bound["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": kind,
            "name": one(team, kind)["metadata"]["name"],
        }
        assert bound["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]


def test_config_changes_restart_the_orchestrator() -> None:
    def checksum(values: dict[str, Any]) -> str:
        return one(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"][
            "checksum/config"
        ]

    assert checksum(TEAM) == checksum(TEAM)
    assert checksum(TEAM) != checksum({**TEAM, "config": {"OrchApp": {"worker_grace": 30}}})


def test_the_budget_lets_a_drain_move_it_unless_told_otherwise() -> None:
    spec = one(render(TEAM), "PodDisruptionBudget")["spec"]
    assert spec["maxUnavailable"] == 1 and "minAvailable" not in spec
    spec = one(render({**TEAM, "pdb": {"minAvailable": 1}}), "PodDisruptionBudget")["spec"]
    assert spec["minAvailable"] == 1 and "maxUnavailable" not in spec
    assert "PodDisruptionBudget" not in kinds(render({**TEAM, "pdb": {"enabled": False}}))


# ------------------------------------------------------------------ secrets, database, hook


def test_the_hub_token_is_generated_when_none_is_given() -> None:
    first = secret_value(one(render(TEAM), "Secret", RELEASE), "hub-api-token")
    second = secret_value(one(render(TEAM), "Secret", RELEASE), "hub-api-token")
    # offline, `lookup` finds nothing: the template's fallback makes a new strong token
    assert len(first) >= 32 and first.isalnum() and first != second
    # a release's own object (not a hook, which Helm would leave behind at uninstall)
    assert "helm.sh/hook" not in one(render(TEAM), "Secret", RELEASE)["metadata"].get("annotations", {})
    given = render({**TEAM, "hub": {"apiToken": "shared-with-z2jh"}})
    assert secret_value(one(given, "Secret", RELEASE), "hub-api-token") == "shared-with-z2jh"


def test_secrets_already_in_the_cluster_are_kept_across_upgrades() -> None:
    """`lookup` for real: the chart rendered against the Kubernetes API emulator, where an
    earlier release's Secrets are."""
    from support.kube import kube_api_server

    def secret(name: str, **data: str) -> dict[str, Any]:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "data": encoded,
        }

    values = {"mode": "team", "postgresql": {"enabled": True}}
    with kube_api_server() as api:
        api.add_namespace(NAMESPACE)
        with helm_python.Config(kube_apiserver=api.url, namespace=NAMESPACE) as config:
            fresh = render(values, config=config, is_install=False, is_upgrade=True)
            api.create("secrets", NAMESPACE, secret(RELEASE, **{"hub-api-token": "kept-token"}))
            api.create("secrets", NAMESPACE, secret(f"{RELEASE}-db", **{"postgres-password": "keptPassword"}))
            upgraded = render(values, config=config, is_install=False, is_upgrade=True)
    assert secret_value(one(fresh, "Secret", RELEASE), "hub-api-token") != "kept-token"
    assert secret_value(one(upgraded, "Secret", RELEASE), "hub-api-token") == "kept-token"
    db = one(upgraded, "Secret", f"{RELEASE}-db")
    assert secret_value(db, "postgres-password") == "keptPassword"
    assert secret_value(db, "db-url") == f"postgresql://orch:keptPassword@{RELEASE}-postgresql:5432/orch"


def test_existing_secrets_are_read_and_none_is_made() -> None:
    objects = render(VARIANTS["team-existing-secrets"])
    assert "Secret" not in kinds(objects)
    e = env(container(objects))
    assert e["JUPYTERHUB_API_TOKEN"]["secretKeyRef"] == {"name": "hub", "key": "hub.services.orch.apiToken"}
    assert e["JUPYTER_ORCH_DB_URL"]["secretKeyRef"] == {"name": "orch-db", "key": "url"}
    assert env(container(objects, "Job"))["JUPYTER_ORCH_DB_URL"]["secretKeyRef"] == {
        "name": "orch-db",
        "key": "url",
    }
    # the migration may run at install: the Secret it reads exists before the release
    assert one(objects, "Job")["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"


def test_the_database_url_is_kept_in_a_secret() -> None:
    objects = render(TEAM)
    assert secret_value(one(objects, "Secret", f"{RELEASE}-db"), "db-url") == DB_URL
    assert all(DB_URL not in str(o) for o in objects if o["kind"] != "Secret")


def test_the_migration_hook_reads_only_what_exists_before_the_release() -> None:
    objects = render(TEAM)
    job = one(objects, "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    c = container(objects, "Job")
    assert c["command"] == ["jupyter", "orch", "db", "upgrade"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # every Secret, ConfigMap and volume the hook's pod reads is itself a hook of lower weight
    read = {ref["secretKeyRef"]["name"] for ref in env(c).values() if isinstance(ref, dict)}
    assert read == {f"{RELEASE}-db"}
    source = one(objects, "Secret", f"{RELEASE}-db")["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) <= set(source["helm.sh/hook"].split(","))
    assert int(source["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
    volumes = job["spec"]["template"]["spec"].get("volumes", [])
    assert all(set(v) == {"name", "emptyDir"} for v in volumes)
    # the Deployment reads the same URL
    assert env(container(objects))["JUPYTER_ORCH_DB_URL"] == env(c)["JUPYTER_ORCH_DB_URL"]


def test_the_trial_postgresql() -> None:
    objects = render(VARIANTS["team-postgresql"])
    sts = one(objects, "StatefulSet")
    [claim] = sts["spec"]["volumeClaimTemplates"]
    [pg] = sts["spec"]["template"]["spec"]["containers"]
    assert {m["name"] for m in pg["volumeMounts"]} >= {claim["metadata"]["name"]}
    db = one(objects, "Secret", f"{RELEASE}-db")
    password = secret_value(db, "postgres-password")
    assert env(pg)["POSTGRES_PASSWORD"]["secretKeyRef"] == {
        "name": f"{RELEASE}-db",
        "key": "postgres-password",
    }
    service = one(objects, "Service", f"{RELEASE}-postgresql")
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    assert selects(
        {"matchLabels": service["spec"]["selector"]}, sts["spec"]["template"]["metadata"]["labels"]
    )
    url = f"postgresql://{env(pg)['POSTGRES_USER']}:{password}@{service['metadata']['name']}:5432/{env(pg)['POSTGRES_DB']}"
    assert secret_value(db, "db-url") == url
    assert len(password) >= 24
    assert sts["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    # the orchestrator waits for it; the trial database's egress rule lets it
    [wait] = one(objects, "Deployment")["spec"]["template"]["spec"]["initContainers"]
    assert service["metadata"]["name"] in " ".join(wait["command"])
    assert "initContainers" not in one(render(TEAM), "Deployment")["spec"]["template"]["spec"]
    # it does not exist before the install: the hook runs before upgrades only
    assert one(objects, "Job")["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"


# ------------------------------------------------------------------ network policies


def test_the_network_policy_admits_the_hub_the_users_and_the_workers() -> None:
    objects = render(TEAM)
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    policy = one(objects, "NetworkPolicy", RELEASE)
    assert selects(policy["spec"]["podSelector"], pod_labels)
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    [rule] = policy["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [container(objects)["ports"][0]["containerPort"]]
    peers = [p["podSelector"]["matchLabels"] for p in rule["from"]]
    for component in ("hub", "proxy", "singleuser-server"):  # zero-to-jupyterhub's labels
        assert {"component": component} in peers
    # worker pods, as the provider labels them for this orchestrator (its server_id)
    config = json.loads(one(objects, "ConfigMap")["data"]["jupyter_server_config.json"])
    worker = {
        podspec.MANAGED_BY: "jupyter-orch",
        podspec.COMPONENT: "worker",
        podspec.SERVER_LABEL: config["KubernetesProvider"]["server_id"],
    }
    assert any(selects({"matchLabels": p}, worker) for p in peers)
    # it may reach the hub's API and DNS
    egress = policy["spec"]["egress"]
    assert any(
        r.get("to") == [{"podSelector": {"matchLabels": {"component": "hub"}}}]
        and r["ports"][0]["port"] == 8081
        for r in egress
    )
    assert any({"protocol": "UDP", "port": 53} in r["ports"] and "to" not in r for r in egress)
    # the workers' own policy lets them reach it
    workers = one(objects, "NetworkPolicy", f"{RELEASE}-workers")
    assert selects(workers["spec"]["podSelector"], worker)
    assert worker[podspec.SERVER_LABEL] == "jupyter-orch"  # the release's name by default
    assert any(
        selects(t["podSelector"], pod_labels) for r in workers["spec"]["egress"] for t in r.get("to", [])
    )


def test_the_network_policy_finds_a_hub_in_another_namespace() -> None:
    objects = render(VARIANTS["team-everything"])
    [rule] = one(objects, "NetworkPolicy", RELEASE)["spec"]["ingress"]
    hub_peers = [p for p in rule["from"] if "component" in p["podSelector"]["matchLabels"]]
    assert len(hub_peers) == 3
    assert all(
        p["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "hub-ns"}}
        for p in hub_peers
    )
    workers = one(objects, "NetworkPolicy", f"{RELEASE}-workers")
    assert {"ports": [{"port": 443}]} in workers["spec"]["egress"]
    # the workers of a server_id set in `config` are still the ones let in
    worker = {
        podspec.MANAGED_BY: "jupyter-orch",
        podspec.COMPONENT: "worker",
        podspec.SERVER_LABEL: "gpu-orch",
    }
    assert selects(workers["spec"]["podSelector"], worker)
    assert any(selects(p["podSelector"], worker) for p in rule["from"])


def test_the_trial_database_admits_only_the_orchestrator_and_the_migration() -> None:
    objects = render(VARIANTS["team-postgresql"])
    policy = one(objects, "NetworkPolicy", f"{RELEASE}-postgresql")
    assert selects(
        policy["spec"]["podSelector"], one(objects, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    )
    [rule] = policy["spec"]["ingress"]
    admitted = [
        one(objects, kind)["spec"]["template"]["metadata"]["labels"] for kind in ("Deployment", "Job")
    ]
    assert all(any(selects(p["podSelector"], labels) for p in rule["from"]) for labels in admitted)
    assert len(rule["from"]) == 2


@pytest.mark.parametrize("variant", TEAM_VARIANTS)
def test_every_team_variant_names_its_service_consistently(variant: str) -> None:
    values = VARIANTS[variant]
    objects = render(values)
    hub = values.get("hub", {})
    prefix = hub.get("baseUrl", "/").rstrip("/") + f"/services/{hub.get('serviceName', 'orch')}/"
    c = container(objects)
    assert f"--ServerApp.base_url={prefix}" in c["args"]
    assert env(c)["JUPYTERHUB_SERVICE_PREFIX"] == prefix
    config = json.loads(one(objects, "ConfigMap")["data"]["jupyter_server_config.json"])
    service = one(objects, "Service", RELEASE)
    assert config["KubernetesProvider"]["server_url"] == (
        f"http://{service['metadata']['name']}.{NAMESPACE}.svc:{service['spec']['ports'][0]['port']}{prefix}"
    )


def test_the_notes_say_how_to_join_the_hub() -> None:
    objects = render(TEAM)
    config = json.loads(one(objects, "ConfigMap")["data"]["jupyter_server_config.json"])
    text = notes(TEAM)
    assert f"JUPYTER_ORCH_SERVICE_URL: {config['KubernetesProvider']['server_url']}" in text
    assert f"url: http://{RELEASE}.{NAMESPACE}:8000" in text
    assert "access:services!service=orch" in text
    personal = notes({"serviceAccount": {"name": "orch-users"}})
    assert "serviceAccountName: orch-users" in personal and "JUPYTER_ORCH_SERVICE_URL" not in personal
