"""The kubernetes provider end to end: a real ``jupyter orch serve`` with the provider, the
Kubernetes API emulator over real HTTP, and the test kubelet that runs each pod's
containers as local processes (tests/support/kube). A task creates a pod, the kubelet
runs its init container (the runtime copy) and then the real worker, which registers,
runs the task and returns the result; idle pods go; injected failures reach the user as
one sentence.

The test kubelet has no GPUs and no images: the runtime copy used here copies this
checkout's ``jupyter_orch`` into the pod's volume and adds a stand-in ``pynvml`` that
reports as many GPUs as the pod's ``nvidia.com/gpu`` limit, and a ``sitecustomize`` that
makes the image ``broken:1`` fail at start (a worker that never connects)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.kube import KubeApiServer, Kubelet, kube_api_server, run_kubelet
from support.orchserver import OrchServer

NS = "orch"
KUBE_TOKEN = "kube-api-token"

FAKE_NVML = """
import os, types
_N = int(os.environ.get("FAKE_GPUS") or 0)
class NVMLError(Exception):
    pass
def nvmlInit():
    if not _N:
        raise NVMLError("NVML Shared Library Not Found")
def nvmlShutdown(): pass
def nvmlDeviceGetCount(): return _N
def nvmlDeviceGetHandleByIndex(i): return i
def nvmlDeviceGetUUID(h): return "GPU-fake-%d" % h
def nvmlDeviceGetName(h): return "NVIDIA H100 80GB HBM3"
def nvmlDeviceGetMemoryInfo(h): return types.SimpleNamespace(total=80 << 30, used=1 << 30)
def nvmlDeviceGetUtilizationRates(h): return types.SimpleNamespace(gpu=0, memory=0)
"""
BROKEN_IMAGE = """
import os, sys
if os.environ.get("JUPYTER_ORCH_IMAGE") == "broken:1":
    sys.stderr.write("ImportError: libcudart.so.12: cannot open shared object file\\n")
    sys.stderr.flush()
    os._exit(3)
"""
RUNTIME_COPY = textwrap.dedent(
    f"""
    import os, shutil, sys, jupyter_orch
    dest = sys.argv[1]
    shutil.copytree(os.path.dirname(jupyter_orch.__file__), os.path.join(dest, "jupyter_orch"),
                    ignore=shutil.ignore_patterns("__pycache__", "labextension"))
    open(os.path.join(dest, "pynvml.py"), "w").write({FAKE_NVML!r})
    open(os.path.join(dest, "sitecustomize.py"), "w").write({BROKEN_IMAGE!r})
    print("runtime copied to", dest)
    """
)


def provider_config(api: KubeApiServer, **changes: Any) -> dict[str, Any]:
    config = {
        "api_url": api.url,
        "api_token": KUBE_TOKEN,
        "namespace": NS,
        "image": "python:3.11-slim",
        "runtime_image": "jupyter-orch-runtime:test",
        "runtime_command": ["python3", "-c", RUNTIME_COPY, "/opt/jupyter-orch/mnt"],
        "pod_template": {
            "spec": {
                "containers": [
                    {
                        "name": "worker",
                        "env": [
                            {
                                "name": "FAKE_GPUS",
                                "valueFrom": {
                                    "resourceFieldRef": {
                                        "containerName": "worker",
                                        "resource": "limits.nvidia.com/gpu",
                                    }
                                },
                            }
                        ],
                    }
                ]
            }
        },
        "default_memory": "1Gi",
        "unschedulable_timeout": 6,
        "connect_timeout": 60,
        "adopt_grace": 10,
        "capacity_interval": 1,
        "max_gpus_per_user": 2,
        "labels": {"team": "tests"},
    }
    config.update(changes)
    return config


def start_server(
    root: Path, api: KubeApiServer, orch: dict[str, Any] | None = None, **provider: Any
) -> OrchServer:
    config_dir = root / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "OrchApp": {"provider": "kubernetes", "worker_idle_timeout": 3, "worker_grace": 5, **(orch or {})},
        "KubernetesProvider": provider_config(api, **provider),
    }
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
    return OrchServer(root, workers=0).start()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KubeApiServer, Kubelet, Path]]:
    root = tmp_path_factory.mktemp("kube")
    with kube_api_server(token=KUBE_TOKEN) as api:
        api.add_namespace(NS)
        api.add_node("gpu-0", gpus=2, gpu_product="NVIDIA-H100-80GB-HBM3")
        with run_kubelet(api, root / "kubelet", node="cpu-0") as kubelet:
            yield api, kubelet, root


@pytest.fixture(scope="module")
def orch(cluster: tuple[KubeApiServer, Kubelet, Path]) -> Iterator[OrchServer]:
    api, _, root = cluster
    server = start_server(root / "server", api)
    try:
        yield server
    finally:
        server.cleanup()
        (root / "server.log").write_text("\n".join(server.lines))


@pytest.fixture(scope="module")
def client(orch: OrchServer) -> Iterator[Any]:
    c = orch.client()
    yield c
    c.close()


def submit(client: Any, what: Any, *args: Any, **kwargs: Any) -> Any:
    """A task submitted and accepted (committed by the server)."""
    fut = (
        client.submit_shell(what, **kwargs) if isinstance(what, str) else client.submit(what, *args, **kwargs)
    )
    assert fut.accepted(30)
    return fut


@pytest.fixture
def kubelet(cluster: tuple[KubeApiServer, Kubelet, Path]) -> Iterator[Kubelet]:
    yield cluster[1]
    cluster[1].clear_failures()


@pytest.fixture
def api(cluster: tuple[KubeApiServer, Kubelet, Path]) -> KubeApiServer:
    return cluster[0]


def pods(api: KubeApiServer) -> list[dict[str, Any]]:
    return api.objects("pods", NS)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """Until ``check()`` is truthy. The state polled here (the emulator's objects, the
    server's answers) has no event the test could wait on instead."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what} (last: {value!r})")
        time.sleep(0.1)


def task(orch: OrchServer, task_id: str) -> dict[str, Any]:
    return orch.api().get(f"/tasks/{task_id}")


def gpu_counter() -> Callable[[], int]:
    def gpu_count() -> int:  # defined here: pickled by value, not by this module's name
        import pynvml  # the stand-in in the pod's runtime volume

        pynvml.nvmlInit()
        return int(pynvml.nvmlDeviceGetCount())

    return gpu_count


def test_a_gpu_task_gets_a_pod_whose_worker_runs_it_and_the_idle_pod_goes(
    orch: OrchServer, api: KubeApiServer
) -> None:
    client = orch.client()
    gpu_count = gpu_counter()
    fut = client.submit(gpu_count, gpus=1)
    assert fut.result(timeout=120) == 1
    [pod] = [p for p in pods(api) if fut.id in p["metadata"]["annotations"]["jupyter-orch/tasks"]]
    name = pod["metadata"]["name"]
    info = task(orch, fut.id)
    assert info["attempts"][-1]["worker_id"] == name
    worker = next(c for c in pod["spec"]["containers"] if c["name"] == "worker")
    token_env = next(e for e in worker["env"] if e["name"] == "JUPYTER_ORCH_TOKEN")
    assert token_env["valueFrom"]["secretKeyRef"] == {"name": f"{name}-token", "key": "token"}
    assert pod["metadata"]["labels"]["team"] == "tests"
    assert pod["spec"]["initContainers"][0]["image"] == "jupyter-orch-runtime:test"
    secret = api.get("secrets", NS, f"{name}-token")
    assert secret["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]
    # the next task of the same shape starts on the warm pod: no second pod
    again = client.submit(gpu_count, gpus=1)
    assert again.result(timeout=60) == 1
    assert task(orch, again.id)["attempts"][-1]["worker_id"] == name
    # idle for worker_idle_timeout (3 s): the pod and its Secret go, its token is revoked
    wait_for("the idle pod to go", lambda: not any(p["metadata"]["name"] == name for p in pods(api)), 30)
    assert not any(s["metadata"]["name"] == f"{name}-token" for s in api.objects("secrets", NS))
    tokens = orch.api().get("/workers/tokens")["tokens"]
    assert next(t for t in tokens if t["name"] == name)["revoked_at"] is not None
    client.close()


def test_the_cluster_gpus_show_before_any_worker_exists(orch: OrchServer) -> None:
    def nodes() -> list[dict[str, Any]]:
        return orch.api().get("/workers")["provider"]["cluster"]["nodes"]

    table = wait_for("the cluster's nodes", nodes)
    [gpu_node] = table
    assert gpu_node["name"] == "gpu-0" and gpu_node["gpu_type"] == "NVIDIA-H100-80GB-HBM3"
    assert gpu_node["allocatable"] == 2 and gpu_node["free"] == 2 - gpu_node["requested"]
    data = orch.api().get("/workers")["provider"]
    assert data["name"] == "kubernetes" and data["namespace"] == NS
    assert data["cluster"]["gpus"]["NVIDIA-H100-80GB-HBM3"]["allocatable"] == 2
    env = dict(os.environ, JUPYTER_ORCH_URL=orch.url, JUPYTER_ORCH_TOKEN=orch.token, COLUMNS="200")
    cli = subprocess.run(
        [sys.executable, "-m", "jupyter_orch", "workers"], capture_output=True, text=True, env=env, timeout=60
    )
    assert cli.returncode == 0, cli.stderr
    assert "cluster GPUs (nvidia.com/gpu)" in cli.stdout
    assert "gpu-0" in cli.stdout and "NVIDIA-H100-80GB-HBM3" in cli.stdout


def test_an_image_that_cannot_be_pulled_fails_the_task_after_its_tries_naming_it(
    orch: OrchServer, client: Any, kubelet: Kubelet
) -> None:
    kubelet.image_pull_backoff("nope:1")  # every pull: NotFound
    fut = submit(client, "true", image="nope:1")
    orch.wait_task(fut.id, "failed", timeout=60)
    info = task(orch, fut.id)
    assert info["error_kind"] == "image_pull"
    assert re.fullmatch(
        r"image nope:1 could not be pulled after 3 tries over \d+ s \(KubernetesProvider.image_pull_attempts\): "
        r'rpc error: code = NotFound desc = failed to pull and unpack image "nope:1": .*not found',
        info["error"],
    )
    assert kubelet.pulls["nope:1"] >= 3  # the kubelet tried (at least) that often


def test_an_image_pull_that_fails_twice_then_works_runs_the_task(
    orch: OrchServer, client: Any, kubelet: Kubelet
) -> None:
    kubelet.image_pull_fails("flaky:1", times=2)  # a registry's rate limit, twice
    reasons: list[str] = []
    with orch.events(types="task") as events:
        fut = submit(client, "true", image="flaky:1")

        def ended(event: dict[str, Any], _: Any) -> bool:
            if event["type"] != "task" or event["task"]["id"] != fut.id:
                return False
            reasons.append(event["task"].get("reason") or "")
            return event["task"]["state"] in ("succeeded", "failed")

        final = events.wait(ended, timeout=120)["task"]
    assert final["state"] == "succeeded", task(orch, fut.id)
    assert kubelet.pulls["flaky:1"] == 3
    # while the kubelet retried, the task's reason said how the pull went
    pulling = [r for r in reasons if r.startswith("pulling image flaky:1: ")]
    for n in (1, 2):
        assert any(
            r.startswith(f"pulling image flaky:1: try {n} failed (rpc error: ")
            and "429 Too Many Requests" in r
            and r.endswith("; the kubelet retries")
            for r in pulling
        ), reasons


def test_an_image_pull_that_keeps_failing_gives_up_after_image_pull_timeout(
    cluster: tuple[KubeApiServer, Kubelet, Path], tmp_path: Path
) -> None:
    api, kubelet, _ = cluster
    server = start_server(tmp_path / "slow-pulls", api, image_pull_attempts=1000, image_pull_timeout=1)
    try:
        kubelet.image_pull_fails("stuck:1", message="dial tcp 10.0.0.1:443: i/o timeout")
        client = server.client()
        fut = submit(client, "true", image="stuck:1")
        server.wait_task(fut.id, "failed", timeout=60)
        info = task(server, fut.id)
        assert info["error_kind"] == "image_pull"
        assert re.fullmatch(
            r"image stuck:1 could not be pulled after \d+ tr(y|ies) over \d+ s "
            r"\(KubernetesProvider.image_pull_timeout\): dial tcp 10.0.0.1:443: i/o timeout",
            info["error"],
        ), info["error"]
        client.close()
    finally:
        kubelet.clear_failures()
        server.cleanup()


def test_a_task_no_node_can_take_stays_pending_with_the_schedulers_reason_then_fails(
    orch: OrchServer, client: Any, api: KubeApiServer
) -> None:
    fut = submit(client, "true", gpus=2, gpu_type="A100")
    reason = wait_for(
        "the scheduler's reason",
        lambda: (r := task(orch, fut.id).get("reason") or "") and "nodes are available" in r and r,
        30,
    )
    assert reason.startswith("no node can run the worker pod orch-")
    assert "didn't match Pod's node affinity/selector" in reason
    assert task(orch, fut.id)["state"] == "pending"
    orch.wait_task(fut.id, "failed", timeout=30)  # unschedulable_timeout: 6 s
    info = task(orch, fut.id)
    assert info["error_kind"] == "unschedulable" and "nodes are available" in info["error"]
    assert "KubernetesProvider.unschedulable_timeout" in info["error"]
    wait_for("the unschedulable pod to go", lambda: not any(fut.id in json.dumps(p) for p in pods(api)), 30)


def test_a_task_over_the_users_gpu_limit_fails_naming_the_setting(orch: OrchServer, client: Any) -> None:
    fut = submit(client, "true", gpus=3)
    orch.wait_task(fut.id, "failed", timeout=30)
    info = task(orch, fut.id)
    assert info["error_kind"] == "limit" and "KubernetesProvider.max_gpus_per_user" in info["error"]


def test_a_worker_that_never_connects_fails_its_task_with_the_pods_last_log_lines(
    orch: OrchServer, client: Any
) -> None:
    fut = submit(client, "true", image="broken:1")
    orch.wait_task(fut.id, "failed", timeout=60)
    error = task(orch, fut.id)["error"]
    assert "exited with code 3" in error
    assert "last log lines:\n  ImportError: libcudart.so.12" in error


def test_an_oom_killed_pod_fails_its_task_naming_the_memory_limit(
    orch: OrchServer, client: Any, kubelet: Kubelet
) -> None:
    fut = submit(client, "sleep 5", memory="2Gi")  # the test kubelet kills no cgroup: it must end
    orch.wait_task(fut.id, "running", timeout=60)
    pod = task(orch, fut.id)["attempts"][-1]["worker_id"]
    kubelet.oom_kill(prefix=pod)
    orch.wait_task(fut.id, "failed", timeout=30)
    info = task(orch, fut.id)
    assert info["error_kind"] == "oom"
    assert info["error"].startswith("the worker pod was killed for using more than its memory limit (2Gi)")


def test_an_evicted_pod_has_its_task_preempted_and_run_again_on_a_new_pod(
    orch: OrchServer, client: Any, kubelet: Kubelet
) -> None:
    fut = submit(client, "sleep 2")  # no retries: an eviction is the cluster's doing, not a failure
    orch.wait_task(fut.id, "running", timeout=60)
    first = task(orch, fut.id)["attempts"][-1]["worker_id"]
    kubelet.evict(prefix=first)
    orch.wait_task(fut.id, "succeeded", timeout=90)
    attempts = task(orch, fut.id)["attempts"]
    assert [a["state"] for a in attempts] == ["preempted", "succeeded"]
    assert attempts[0]["error"].startswith(f"the worker pod {first} was evicted: ")
    assert attempts[1]["worker_id"] != first


def test_the_pod_watch_resumes_after_drops_and_lists_again_after_410_gone(
    orch: OrchServer, client: Any, api: KubeApiServer
) -> None:
    def watch() -> dict[str, Any]:
        return orch.api().get("/workers")["provider"]["watch"]

    before = watch()
    api.drop_watches(abrupt=True)
    wait_for("the watch to resume", lambda: watch()["resumes"] > before["resumes"], 30)
    api.compact()
    api.drop_watches()
    wait_for("the watch to list again", lambda: watch()["lists"] > before["lists"], 30)
    # the provider still follows its pods: a task runs end to end
    assert submit(client, lambda: 42).result(timeout=120) == 42


def test_pods_left_by_a_crashed_server_are_adopted_or_deleted(
    cluster: tuple[KubeApiServer, Kubelet, Path], tmp_path: Path
) -> None:
    api, _, _ = cluster
    server = start_server(tmp_path / "crashy", api, orch={"worker_idle_timeout": 600}, adopt_grace=3)
    try:
        client = server.client()
        assert client.submit(lambda: "warm").result(timeout=120) == "warm"
        client.close()
        server_id = (server.data_dir / "kubernetes-server-id").read_text().strip()

        def mine() -> list[str]:
            return sorted(
                p["metadata"]["name"]
                for p in pods(api)
                if p["metadata"]["labels"].get("jupyter-orch/server") == server_id
            )

        [kept] = mine()
        server.stop(kill=True)
        # and a pod of this server whose worker is gone (it never reconnects)
        stray = {
            "metadata": {"name": "orch-stray-1", "labels": {"jupyter-orch/server": server_id}},
            "spec": {
                "containers": [{"name": "worker", "image": "python:3.11-slim", "command": ["sleep", "30"]}]
            },
        }
        api.create("pods", NS, stray)
        server.start()
        workers = server.wait_workers(1, timeout=60)
        assert [w["name"] for w in workers.values() if w["state"] == "connected"] == [kept]
        wait_for("the stray pod to go", lambda: mine() == [kept], 30)  # adopt_grace: 3 s
        client = server.client()
        fut = client.submit(lambda: "again")
        assert fut.result(timeout=60) == "again"
        assert task(server, fut.id)["attempts"][-1]["worker_id"] == kept  # on the adopted pod
        assert mine() == [kept]
        client.close()
    finally:
        server.cleanup()
