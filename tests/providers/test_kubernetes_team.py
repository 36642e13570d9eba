"""The kubernetes provider in team mode: one ``jupyter orch serve`` for several hub users
(``owner_from = identity``, users from ``support/identities.py``), its pods created with the
service's own credentials, over real HTTP against the Kubernetes API emulator and the test
kubelet (tests/support/kube), as in test_kubernetes_provider.py.

Each user's pods are theirs: labelled with the user and the group whose profile they got
(``KubernetesProvider.group_profiles``: image, node selector, tolerations, labels), and
their worker's token is issued for that user, so it runs only that user's tasks: bob's task
never lands on alice's warm pod. A bad profile stops the server, naming the key. The pure
parts (profile checks, the profile rule, the manifests) are tested here too."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from test_kubernetes_provider import KUBE_TOKEN, NS, gpu_counter, provider_config
from traitlets import Unicode
from traitlets.config import Configurable

from jupyter_orch.client import Client
from jupyter_orch.core.queue import PendingTask
from jupyter_orch.core.records import TokenRow
from jupyter_orch.core.resources import Resources
from jupyter_orch.engine.connections import whose_worker
from jupyter_orch.providers.base import ProviderContext
from jupyter_orch.providers.kubernetes import KubernetesProvider, podspec
from jupyter_orch.providers.kubernetes.profiles import parse_profiles, profile_for
from jupyter_orch.providers.kubernetes.records import Limits, PodBook
from jupyter_orch.providers.kubernetes.scaling import Scaler

from support.identities import IDENTITY_ARGS, hub_users
from support.kube import KubeApiServer, kube_api_server, run_kubelet
from support.orchserver import OrchServer

USERS = hub_users(
    # in both groups; the setting lists ml-team first: ml-team's profile is hers
    alice={"groups": ["vision", "ml-team"]},
    bob={},
    **{"ann@example.org": {"groups": []}},
    hubadmin={"admin": True},
)
ML_TOLERATION = {"key": "team", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
PROFILES = {
    "ml-team": {
        "image": "ml-image:1",
        "node_selector": {"pool": "ml"},
        "tolerations": [ML_TOLERATION],
        "labels": {"cost-center": "ml"},
    },
    "vision": {"image": "vision-image:1", "node_selector": {"pool": "vision"}},
}


# ---------------------------------------------------------------------- pure parts
@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (
            {"tolerations": [{"key": "team", "efect": "NoSchedule"}]},
            "KubernetesProvider.group_profiles.ml-team.tolerations[0]: unknown fields ['efect']",
        ),
        (
            {"tolerations": [{"key": "team", "operator": "In"}]},
            "KubernetesProvider.group_profiles.ml-team.tolerations[0].operator: must be Exists or Equal",
        ),
        (
            {"tolerations": {"key": "team"}},
            "KubernetesProvider.group_profiles.ml-team.tolerations: must be a list",
        ),
        (
            {"node_selector": {"pool": "m l"}},
            "KubernetesProvider.group_profiles.ml-team.node_selector.pool: 'm l' is not a valid label value",
        ),
        (
            {"node_selector": {"bad key!": "x"}},
            "KubernetesProvider.group_profiles.ml-team.node_selector has an invalid label key 'bad key!'",
        ),
        (
            {"labels": {"jupyter-orch/owner": "x"}},
            "KubernetesProvider.group_profiles.ml-team.labels.jupyter-orch/owner: may not be set",
        ),
        ({"image": "my image"}, "KubernetesProvider.group_profiles.ml-team.image: must be an image"),
        ({"pods": "everyone"}, "KubernetesProvider.group_profiles.ml-team.pods: must be 'user'"),
        ({"nodeSelector": {}}, "KubernetesProvider.group_profiles.ml-team: unknown keys ['nodeSelector']"),
        ("pool=ml", "KubernetesProvider.group_profiles.ml-team: must be a mapping"),
    ],
)
def test_a_bad_group_profile_is_named_by_its_key(profile: Any, message: str) -> None:
    provider = KubernetesProvider(group_profiles={"ml-team": profile})
    with pytest.raises(ValueError) as err:
        provider.check_settings()
    assert str(err.value).startswith(message), str(err.value)


def test_a_user_in_several_groups_gets_the_first_profile_in_the_settings_order() -> None:
    profiles = parse_profiles(PROFILES)
    chosen = profile_for(["vision", "ml-team"], profiles)
    assert chosen is not None and chosen.group == "ml-team"
    assert profile_for(["vision", "other"], profiles).group == "vision"  # type: ignore[union-attr]
    assert profile_for(["other"], profiles) is None and profile_for([], profiles) is None
    reversed_order = parse_profiles({"vision": PROFILES["vision"], "ml-team": PROFILES["ml-team"]})
    assert profile_for(["ml-team", "vision"], reversed_order).group == "vision"  # type: ignore[union-attr]


def test_worker_tokens_say_whose_worker_it_is_whoever_issued_them() -> None:
    def token(**kw: Any) -> TokenRow:
        return TokenRow(id="t" * 26, name="w", scope="worker", **kw)

    assert whose_worker(token(provider="kubernetes")) == (None, None)  # shared: the service's
    assert whose_worker(token(provider="local")) == (None, None)
    assert whose_worker(token(provider="kubernetes", owner="alice")) == ("alice", None)
    assert whose_worker(token(provider="kubernetes", group="ml-team")) == (None, "ml-team")
    assert whose_worker(token(provider="static", owner="bob")) == ("bob", None)
    assert whose_worker(token(provider="static", owner="bob", group="ml-team")) == (None, "ml-team")


def test_a_team_pod_is_labelled_with_its_user_and_group_and_gets_the_profile() -> None:
    ml = {**PROFILES["ml-team"], "pods": "group", "labels": {"cost-center": "ml", "team": "ml"}}
    profile = parse_profiles({"Data Science!": ml})["Data Science!"]
    settings = podspec.PodSettings(
        namespace="jhub", server_id="srv1", server_url="http://orch:8888", worker_owner="user"
    )
    settings.labels = {"team": "all"}
    resources = Resources.from_dict({"gpus": 1, "gpu_type": "A100", "labels": {"pool": "any"}})
    task = PendingTask("t" * 26, "ann@example.org", 0, 1, resources, None, frozenset({"Data Science!"}))
    shape = podspec.shape_of(task, profile.image, 4 << 30)
    req = podspec.PodRequest(
        "orch-ann-1", task.owner, shape, (task.id,), "orch-ann-1-token", "", (), profile, "group"
    )
    pod = podspec.build_pod(req, settings)
    meta = pod["metadata"]
    assert meta["labels"]["jupyter-orch/owner"] == "ann-example.org"  # a valid label value
    assert meta["labels"]["jupyter-orch/group"] == "Data-Science"
    assert meta["labels"]["cost-center"] == "ml"
    assert meta["labels"]["team"] == "ml"  # the group's label wins over the provider's labels
    assert meta["annotations"]["jupyter-orch/owner"] == "ann@example.org"  # the real names
    assert meta["annotations"]["jupyter-orch/group"] == "Data Science!"
    assert meta["annotations"]["jupyter-orch/runs-tasks-of"] == "group"
    assert pod["spec"]["containers"][0]["image"] == "ml-image:1"
    # the group's node selector wins over the task's label of the same key
    assert pod["spec"]["nodeSelector"] == {"pool": "ml", "nvidia.com/gpu.product": "A100"}
    assert pod["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        ML_TOLERATION,
    ]
    secret = podspec.build_secret("orch-ann-1-token", "s", settings, task.owner, None, profile.group)
    assert secret["metadata"]["labels"]["jupyter-orch/group"] == "Data-Science"
    for doc in (pod, secret):
        for version in ("1.27.0", "1.37.0"):
            kubernetes_validate.validate(doc, version, strict=True)


# ---------------------------------------------------------------------- a team server
def team_server(root: Path, api: KubeApiServer, **provider: Any) -> OrchServer:
    """A team server (not started yet) on ``api``, its pods warm for 600 s."""
    config_dir = root / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    config = {
        # pods stay warm for the whole module: a second task may land on one
        "OrchApp": {"provider": "kubernetes", "worker_idle_timeout": 600, "worker_grace": 5},
        "KubernetesProvider": provider_config(api, **{"group_profiles": PROFILES, **provider}),
    }
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
    return OrchServer(root, workers=0, args=IDENTITY_ARGS, env=USERS)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OrchServer, KubeApiServer]]:
    root = tmp_path_factory.mktemp("kube-team")
    with kube_api_server(token=KUBE_TOKEN) as api:
        api.add_namespace(NS)
        api.add_node("gpu-0", gpus=2)
        taint = {"key": "team", "value": "ml", "effect": "NoSchedule"}
        api.add_node("ml-gpu-0", gpus=2, labels={"pool": "ml"}, taints=[taint])
        with run_kubelet(api, root / "kubelet", node="cpu-0"):
            server = team_server(root / "server", api)
            try:
                server.start()
                yield server, api
            finally:
                server.cleanup()
                (root / "server.log").write_text("\n".join(server.lines))


def run_as(server: OrchServer, user: str, fn: Any, **resources: Any) -> str:
    """Run ``fn`` as ``user``; the name of the worker pod it ran on."""
    client = Client(server.url, f"{user}-token")
    try:
        fut = client.submit(fn, **resources)
        assert fut.result(timeout=120) == resources.get("gpus", 0)
        info = server.api(f"{user}-token").get(f"/tasks/{fut.id}")
        assert info["owner"] == user
        return str(info["attempts"][-1]["worker_id"])
    finally:
        client.close()


def pod(api: KubeApiServer, name: str) -> dict[str, Any]:
    return api.get("pods", NS, name)


def test_each_users_pods_are_theirs_and_run_only_their_tasks(
    team: tuple[OrchServer, KubeApiServer],
) -> None:
    server, api = team
    gpu_count = gpu_counter()
    alices = run_as(server, "alice", gpu_count, gpus=1)
    p = pod(api, alices)
    meta, spec = p["metadata"], p["spec"]
    assert meta["labels"]["jupyter-orch/owner"] == "alice"
    assert meta["labels"]["jupyter-orch/group"] == "ml-team"  # the first profile listed
    assert meta["labels"]["cost-center"] == "ml" and meta["labels"]["team"] == "tests"
    assert meta["annotations"]["jupyter-orch/owner"] == "alice"
    assert meta["annotations"]["jupyter-orch/group"] == "ml-team"
    assert meta["annotations"]["jupyter-orch/runs-tasks-of"] == "user"
    worker = next(c for c in spec["containers"] if c["name"] == "worker")
    assert worker["image"] == "ml-image:1"
    assert spec["nodeSelector"] == {"pool": "ml"}
    assert ML_TOLERATION in spec["tolerations"]
    assert spec["nodeName"] == "ml-gpu-0"  # the tainted pool only the profile tolerates

    # alice's pod is warm and idle; bob's task of the same shape gets a pod of his own
    bobs = run_as(server, "bob", gpu_count, gpus=1)
    assert bobs != alices
    p = pod(api, bobs)
    assert p["metadata"]["labels"]["jupyter-orch/owner"] == "bob"
    assert "jupyter-orch/group" not in p["metadata"]["labels"]
    assert next(c for c in p["spec"]["containers"] if c["name"] == "worker")["image"] == "python:3.11-slim"
    assert "nodeSelector" not in p["spec"] and p["spec"]["nodeName"] == "gpu-0"
    # and alice's next task runs on her warm pod, not on bob's
    assert run_as(server, "alice", gpu_count, gpus=1) == alices

    admin = server.api("hubadmin-token")
    workers = {w["id"]: w for w in admin.get("/workers")["workers"]}
    assert (workers[alices]["owner"], workers[bobs]["owner"]) == ("alice", "bob")
    tokens = {t["name"]: t for t in admin.get("/workers/tokens")["tokens"]}
    assert tokens[alices]["owner"] == "alice" and tokens[alices]["provider"] == "kubernetes"
    assert tokens[bobs]["owner"] == "bob"
    # provider tokens stay admin-only: bob sees none, not even his pod's
    assert server.api("bob-token").get("/workers/tokens")["tokens"] == []


def test_a_user_name_that_is_no_label_value_is_sanitized_and_kept_in_an_annotation(
    team: tuple[OrchServer, KubeApiServer],
) -> None:
    server, api = team
    name = run_as(server, "ann@example.org", lambda: 0)
    meta = pod(api, name)["metadata"]
    assert meta["labels"]["jupyter-orch/owner"] == "ann-example.org"
    assert meta["annotations"]["jupyter-orch/owner"] == "ann@example.org"
    assert "jupyter-orch/group" not in meta["labels"]


def test_a_bad_group_profile_stops_the_server_naming_the_key(tmp_path: Path) -> None:
    with kube_api_server(token=KUBE_TOKEN) as api:
        api.add_namespace(NS)
        bad = {"ml-team": {"tolerations": [{"key": "team", "efect": "NoSchedule"}]}}
        server = team_server(tmp_path / "bad", api, group_profiles=bad)
        try:
            with pytest.raises(RuntimeError, match="did not start") as err:
                server.start()
            assert server.proc is not None and server.proc.wait(30) != 0
        finally:
            server.cleanup()
    assert "KubernetesProvider.group_profiles.ml-team.tolerations[0]: unknown fields ['efect']" in str(
        err.value
    )
    assert not api.objects("pods", NS)


class FakeApi:
    """The two calls a pod's creation makes, kept."""

    def __init__(self) -> None:
        self.pods: list[dict[str, Any]] = []

    def create_secret(self, body: dict[str, Any]) -> dict[str, Any]:
        return body

    def create_pod(self, body: dict[str, Any]) -> dict[str, Any]:
        self.pods.append(body)
        return {**body, "metadata": {**body["metadata"], "uid": "u1"}}

    def set_secret_owner(self, name: str, ref: dict[str, Any]) -> None:
        pass


@pytest.mark.parametrize(
    ("worker_owner", "pods", "issued_for", "runs"),
    [
        ("shared", "user", {}, None),  # a personal server: shared, as before team mode
        ("user", "user", {"owner": "alice"}, "user"),
        ("user", "group", {"group": "ml-team"}, "group"),
    ],
)
def test_a_pods_token_is_issued_for_whose_tasks_it_runs(
    worker_owner: str, pods: str, issued_for: dict[str, str], runs: str | None
) -> None:
    issued: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    async def issue(*args: Any, **kwargs: Any) -> tuple[str, str]:
        issued.append((args, kwargs))
        return "tok1", "secret"

    async def revoke(token_id: str) -> bool:
        return True

    async def nothing(*args: Any) -> None:
        pass

    context = ProviderContext("http://orch:8888", "/tmp", issue, revoke)
    profiles = parse_profiles({"ml-team": {**PROFILES["ml-team"], "pods": pods}})
    settings = podspec.PodSettings(
        namespace=NS,
        server_id="srv1",
        server_url="http://orch:8888",
        worker_owner=worker_owner,
        profiles=profiles,
    )
    api = FakeApi()
    limits = Limits(default_image="python:3.11-slim")
    scaler = Scaler(
        PodBook(context),
        api,
        settings,
        context,
        limits,
        list,
        lambda: None,  # type: ignore[arg-type]
        remove=nothing,
        cleanup=nothing,
        spawn=lambda c: None,
        later=lambda *a: None,
        log=logging.getLogger("t"),
    )
    task = PendingTask(
        "t" * 26, "alice", 0, 1, Resources.from_dict({"gpus": 1}), None, frozenset({"ml-team"})
    )
    asyncio.run(scaler.provision([task]))
    assert issued == [((api.pods[0]["metadata"]["name"], "kubernetes"), issued_for)]
    assert api.pods[0]["metadata"]["annotations"].get("jupyter-orch/runs-tasks-of") == runs
    assert api.pods[0]["metadata"]["labels"]["jupyter-orch/group"] == "ml-team"


def test_team_mode_follows_owner_from() -> None:
    class App(Configurable):
        owner_from = Unicode("identity")

    assert KubernetesProvider().pods_per_user() is False  # no server: personal
    assert KubernetesProvider(worker_owner="user").pods_per_user() is True
    assert KubernetesProvider(parent=App()).pods_per_user() is True
    assert KubernetesProvider(parent=App(), worker_owner="shared").pods_per_user() is False
    assert KubernetesProvider(parent=App(owner_from="server")).pods_per_user() is False
